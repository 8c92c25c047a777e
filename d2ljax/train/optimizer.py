"""Optimizers and learning-rate schedules from a config (optax under the hood).

``make_optimizer(name, learning_rate, ...)`` returns one optax chain:
``clip_by_global_norm`` (if ``grad_clip``) -> decoupled weight decay on weights (if
``weight_decay``; the book decays weights, not biases) -> the optimizer with its schedule.
The from-scratch versions the course writes live in :mod:`d2ljax.optim` and are selected with the
``scratch_`` prefix (e.g. ``scratch_sgd``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import jax
import optax

_OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": lambda learning_rate, momentum=0.9, **kw: optax.sgd(learning_rate, momentum, **kw),
    "adagrad": optax.adagrad,
    "rmsprop": optax.rmsprop,
    "adadelta": optax.adadelta,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "yogi": optax.yogi,
}


def register_optimizer(name: str, factory: Callable[..., optax.GradientTransformation]) -> None:
    _OPTIMIZERS[name] = factory


def _unknown(kind: str, name: str, known) -> ValueError:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(known))}.{hint}")


def make_schedule(
    learning_rate: float, schedule: dict | None, total_steps: int
) -> float | optax.Schedule:
    """A constant rate, or an optax schedule from ``{"name": ..., **kwargs}``.

    Names: ``cosine`` (``warmup_steps``, ``final_lr``), ``exponential`` (``decay_rate``,
    ``transition_steps``), ``piecewise`` (``boundaries_and_scales``: the book's multi-factor),
    ``linear`` (``final_lr``). ``decay_steps`` defaults to the run's total number of steps.
    """
    if not schedule:
        return learning_rate
    kw = dict(schedule)
    name = kw.pop("name")
    if name == "cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=kw.pop("init_lr", 0.0),
            peak_value=learning_rate,
            warmup_steps=kw.pop("warmup_steps", 0),
            decay_steps=kw.pop("decay_steps", total_steps),
            end_value=kw.pop("final_lr", 0.0),
            **kw,
        )
    if name == "exponential":
        return optax.exponential_decay(
            learning_rate, kw.pop("transition_steps", 1), kw.pop("decay_rate"), **kw
        )
    if name == "piecewise":
        bs = {int(k): float(v) for k, v in kw.pop("boundaries_and_scales").items()}
        return optax.piecewise_constant_schedule(learning_rate, bs, **kw)
    if name == "linear":
        return optax.linear_schedule(
            learning_rate, kw.pop("final_lr", 0.0), kw.pop("decay_steps", total_steps), **kw
        )
    raise _unknown("schedule", name, ["cosine", "exponential", "piecewise", "linear"])


def _decay_mask(params):
    return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(
    name: str = "sgd",
    learning_rate: float = 0.1,
    *,
    weight_decay: float = 0.0,
    grad_clip: float | None = None,
    schedule: dict | None = None,
    total_steps: int = 1,
    **kwargs,
) -> optax.GradientTransformation:
    """Build the optax chain a config names (see the module docstring)."""
    if name.startswith("scratch_"):
        from d2ljax import optim

        factory = getattr(optim, name.removeprefix("scratch_"), None)
        if factory is None:
            raise _unknown("optimizer", name, [f"scratch_{n}" for n in optim.__all__])
    elif name in _OPTIMIZERS:
        factory = _OPTIMIZERS[name]
    else:
        raise _unknown("optimizer", name, _OPTIMIZERS)
    lr = make_schedule(learning_rate, schedule, total_steps)
    parts = []
    if grad_clip:
        parts.append(optax.clip_by_global_norm(grad_clip))
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay, mask=_decay_mask))
    parts.append(factory(lr, **kwargs))
    return optax.chain(*parts) if len(parts) > 1 else parts[0]
