"""Optimizers and learning-rate schedules from a config (optax under the hood).

``make_optimizer(name, learning_rate, ...)`` returns one optax chain:
``clip_by_global_norm`` (if ``grad_clip``) -> decoupled weight decay on weights (if
``weight_decay``; the book decays weights, not biases) -> the optimizer with its schedule.

The learning rate lives in the optimizer *state* (``optax.inject_hyperparams``): a run with another
rate runs the same compiled step (:func:`set_learning_rate` changes it in a state). The chain is
returned as an :class:`Optimizer`, which compares equal to any optimizer built from the same
recipe with another constant rate, so a compiled step is reused across such runs (a tuner's trials).
The from-scratch versions the course writes live in :mod:`d2ljax.optim` and are selected with the
``scratch_`` prefix (e.g. ``scratch_sgd``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import optax

from d2ljax.registry import Registry


def _scratch_optimizers() -> None:
    from d2ljax import optim

    for name in optim.__all__:  # the optimizers, not their state classes or the schedules
        if name.islower() and "schedule" not in name:
            OPTIMIZERS.register(f"scratch_{name}", getattr(optim, name))


#: Optimizer factories ``f(learning_rate, **kwargs)`` by name; ``scratch_<name>``: the course's
#: from-scratch versions (:mod:`d2ljax.optim`).
OPTIMIZERS: Registry[Callable[..., optax.GradientTransformation]] = Registry(
    "optimizer",
    error=ValueError,
    message="unknown {kind} {name!r}; known: {known}.{hint}",
    loader=_scratch_optimizers,
)
for _name, _factory in {
    "sgd": optax.sgd,
    "momentum": lambda learning_rate, momentum=0.9, nesterov=False: optax.sgd(
        learning_rate, momentum, nesterov
    ),
    "adagrad": optax.adagrad,
    "rmsprop": optax.rmsprop,
    "adadelta": optax.adadelta,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "yogi": optax.yogi,
}.items():
    OPTIMIZERS.register(_name, _factory)

_SCHEDULES = Registry(
    "schedule", error=ValueError, message="unknown {kind} {name!r}; known: {known}.{hint}"
)
for _name in ("cosine", "exponential", "piecewise", "linear"):
    _SCHEDULES.register(_name, _name)


def register_optimizer(name: str, factory: Callable[..., optax.GradientTransformation]) -> None:
    OPTIMIZERS.register(name, factory, overwrite=True)


def _steps(value, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{what} must be a whole number of steps, got {value!r}")
    if value < low:
        raise ValueError(f"{what} must be >= {low}, got {value!r}")
    return int(value)


def _length(kw: dict, total_steps: int | None, low: int) -> tuple[int | None, str]:
    """``decay_steps`` (given, or the run's ``total_steps``; None when neither is known) and
    how to name it in an error."""
    if "decay_steps" in kw:
        return _steps(kw.pop("decay_steps"), "decay_steps", low), "decay_steps"
    if total_steps is None:
        return None, ""
    return _steps(total_steps, "the run's number of steps", 1), (
        "decay_steps (not given: the run's number of steps)"
    )


def _required(kw: dict, key: str, name: str):
    if key not in kw:
        raise ValueError(f"the {name} schedule needs {key}")
    return kw.pop(key)


def make_schedule(
    learning_rate: float, schedule: dict | None, total_steps: int | None
) -> float | optax.Schedule:
    """A constant rate, or an optax schedule from ``{"name": ..., **kwargs}``.

    Names: ``cosine`` (``warmup_steps``, ``final_lr``), ``exponential`` (``decay_rate``,
    ``transition_steps``), ``piecewise`` (``boundaries_and_scales``: the book's multi-factor),
    ``linear`` (``final_lr``). ``decay_steps`` defaults to the run's total number of steps,
    ``total_steps``; None (not known yet): the schedule's own arguments are checked and a
    stand-in length is used. Bad arguments raise a ValueError that names them.
    """
    if not schedule:
        return learning_rate
    kw = dict(schedule)
    name = _SCHEDULES.get(kw.pop("name", None))
    if name == "cosine":
        warmup = _steps(kw.pop("warmup_steps", 0), "warmup_steps", 0)
        decay, what = _length(kw, total_steps, 1)
        if decay is None:
            decay = warmup + 1
        elif decay <= warmup:
            raise ValueError(
                f"cosine schedule: {what} ({decay}) must exceed warmup_steps ({warmup}): the "
                "warm-up is part of the schedule"
            )
        return optax.warmup_cosine_decay_schedule(
            init_value=kw.pop("init_lr", 0.0),
            peak_value=learning_rate,
            warmup_steps=warmup,
            decay_steps=decay,
            end_value=kw.pop("final_lr", 0.0),
            **kw,
        )
    if name == "exponential":
        steps = _steps(kw.pop("transition_steps", 1), "transition_steps", 1)
        return optax.exponential_decay(
            learning_rate, steps, _required(kw, "decay_rate", name), **kw
        )
    if name == "piecewise":
        table = _required(kw, "boundaries_and_scales", name)
        if not isinstance(table, dict):
            raise ValueError(f"boundaries_and_scales must map steps to scales, got {table!r}")
        bs = {int(k): float(v) for k, v in table.items()}
        return optax.piecewise_constant_schedule(learning_rate, bs, **kw)
    if name == "linear":
        decay, _ = _length(kw, total_steps, 1)
        return optax.linear_schedule(
            learning_rate, kw.pop("final_lr", 0.0), 1 if decay is None else decay, **kw
        )
    raise _SCHEDULES.unknown(name)


def _decay_mask(params):
    return jax.tree.map(lambda p: p.ndim > 1, params)


class Optimizer:
    """An optax transformation (``init``/``update``) with a hashable ``recipe``: two optimizers
    are equal when their recipes are, i.e. when they differ at most in values kept in the
    optimizer state (the constant learning rate). ``tx`` is the underlying optax chain."""

    def __init__(self, tx: optax.GradientTransformation, recipe: tuple):
        self.tx, self.recipe = tx, recipe

    def init(self, params):
        return self.tx.init(params)

    def update(self, updates, state, params=None, **extra_args):
        return self.tx.update(updates, state, params, **extra_args)

    def __eq__(self, other):
        return isinstance(other, Optimizer) and self.recipe == other.recipe

    def __hash__(self):
        return hash(self.recipe)

    def __repr__(self):
        return f"Optimizer{self.recipe}"


def _frozen(value: Any):
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


_INJECTED = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)


def _hyperparams(opt_state) -> dict | None:
    """The ``hyperparams`` dict of the injected optimizer inside ``opt_state``."""
    found = []

    def visit(node):
        if isinstance(node, _INJECTED):
            found.append(node.hyperparams)
        elif isinstance(node, tuple | list):
            for child in node:
                visit(child)

    visit(opt_state)
    return found[0] if found else None


def learning_rate(opt_state) -> jax.Array | None:
    """The learning rate an :func:`make_optimizer` state will use next (None if not injected)."""
    hp = _hyperparams(opt_state)
    return None if hp is None else hp.get("learning_rate")


def set_learning_rate(opt_state, value: float):
    """A copy of ``opt_state`` whose (constant) learning rate is ``value``; same structure, so the
    compiled step that takes it is reused."""
    hp = _hyperparams(opt_state)
    if hp is None or "learning_rate" not in hp:
        raise ValueError("this optimizer state has no injected learning rate")

    def replace(node):
        if isinstance(node, _INJECTED):
            old = node.hyperparams["learning_rate"]
            new = jax.device_put(jax.numpy.asarray(value, old.dtype), old.sharding)
            return node._replace(hyperparams={**node.hyperparams, "learning_rate": new})
        if isinstance(node, tuple) and not hasattr(node, "_fields"):
            return tuple(replace(c) for c in node)
        if isinstance(node, list):
            return [replace(c) for c in node]
        return node

    return replace(opt_state)


def make_optimizer(
    name: str = "sgd",
    learning_rate: float = 0.1,
    *,
    weight_decay: float = 0.0,
    grad_clip: float | None = None,
    schedule: dict | None = None,
    total_steps: int | None = 1,
    **kwargs,
) -> optax.GradientTransformation:
    """Build the optax chain a config names (see the module docstring); ``total_steps`` is the
    run's length, the default length of a schedule (None: not known, see :func:`make_schedule`)."""
    factory = OPTIMIZERS.get(name)
    lr = make_schedule(learning_rate, schedule, total_steps)
    parts = []
    if grad_clip:
        parts.append(optax.clip_by_global_norm(grad_clip))
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay, mask=_decay_mask))
    parts.append(optax.inject_hyperparams(functools.partial(factory, **kwargs))(learning_rate=lr))
    # A schedule closes over the rate (it is compiled in); a constant rate is state.
    recipe = (name, weight_decay, grad_clip, _frozen(schedule), _frozen(kwargs), total_steps)
    if schedule:
        recipe += (learning_rate,)
    elif callable(learning_rate):
        recipe += (learning_rate,)
    return Optimizer(optax.chain(*parts) if len(parts) > 1 else parts[0], recipe)
