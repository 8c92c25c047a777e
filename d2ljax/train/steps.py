"""Pure training and evaluation steps.

``train_step(state, batch) -> (state, metrics)`` and ``eval_step(state, batch) -> metrics`` take and
return pytrees only; :func:`make_steps` compiles them once with ``jax.jit``, donating the state (and
the running metric sums) so XLA updates the buffers in place. Metrics stay on the device: the loop
adds them up inside the compiled step and reads them once per log interval.

Mixed precision (``precision="bfloat16"``, book §13 / the JAX way): the step casts the float32
*master* parameters and the floating inputs to bfloat16 for the forward and backward pass; the
model's outputs are cast back to float32 before the loss, the gradients arrive in float32 (the cast
is differentiable) and the optimizer state and the update stay float32.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from d2ljax.train.losses import LossFn, get_loss
from d2ljax.train.state import TrainState

Metrics = dict[str, jax.Array]

PRECISIONS = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(precision: str | None):
    """The compute dtype of a ``precision`` setting (None or "float32": no casting)."""
    if precision in (None, "float32", "fp32", "f32"):
        return None
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {sorted(PRECISIONS)}")
    return PRECISIONS[precision]


def _cast_floats(tree, dtype):
    def cast(x):
        if isinstance(x, jax.Array | jnp.ndarray) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)


class _Float32Outputs:
    """The model as the loss function sees it under mixed precision: same attributes, but every
    floating output of a call -- of the model, of any of its methods, of any submodule -- is
    float32, so the loss (softmax, log, sums) runs in float32."""

    def __init__(self, model):
        self._model = model

    def __call__(self, *args, **kwargs):
        return _cast_floats(self._model(*args, **kwargs), jnp.float32)

    def __getattr__(self, name):
        attr = getattr(self._model, name)
        if isinstance(attr, nnx.Module):
            return _Float32Outputs(attr)
        if inspect.ismethod(attr):
            return lambda *a, **k: _cast_floats(attr(*a, **k), jnp.float32)
        return attr


def _masked_batch_norms(model: nnx.Module, mask_B: jax.Array) -> None:
    """Make every ``nnx.BatchNorm`` of ``model`` (a copy merged inside the trace) compute its
    batch statistics over the rows where ``mask_B`` is 1, so the zero rows that pad an epoch's
    last batch change neither the normalisation nor the moving statistics."""
    for _, module in nnx.iter_graph(model):
        if isinstance(module, nnx.BatchNorm):
            base = type(module)

            def call(self, x, use_running_average=None, *, mask=None, _base=base):
                if mask is None:
                    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
                    mask = jnp.broadcast_to(mask_B.reshape(shape) > 0, x.shape)
                return _base.__call__(self, x, use_running_average, mask=mask)

            module.__class__ = type(base.__name__, (base,), {"__call__": call})


def _reseed(model: nnx.Module, streams: tuple[str, ...], key: jax.Array) -> None:
    if streams:
        nnx.reseed(model, **{s: jax.random.fold_in(key, i) for i, s in enumerate(streams)})


def _regularization(model: nnx.Module) -> jax.Array:
    reg = getattr(model, "regularization", None)
    return reg() if callable(reg) else jnp.zeros((), jnp.float32)


def train_step(
    state: TrainState, batch: dict, loss_fn: LossFn, precision: str | None = None
) -> tuple[TrainState, Metrics]:
    """One optimizer step on ``batch``. Pure: returns the new state and the batch's metric sums.

    The model's RNG streams (dropout) are reseeded from ``fold_in(state.rng, state.step)``, so a
    step's randomness depends only on the seed and the step number: resuming reproduces it.
    ``precision="bfloat16"``: bf16 compute, float32 master parameters, optimizer and loss.
    """
    dtype = compute_dtype(precision)
    if dtype is not None:
        batch = _cast_floats(batch, dtype)
    model_state = state.model_state
    if state.rng_streams:
        model = nnx.merge(state.graphdef, state.params, model_state, copy=True)
        _reseed(model, state.rng_streams, jax.random.fold_in(state.rng, state.step))
        _, _, model_state = nnx.split(model, nnx.Param, ...)

    # model_state is an argument (not a closure) so NNX may update it inside the grad trace.
    def loss_of(params, model_state):
        if dtype is not None:
            params = _cast_floats(params, dtype)
        model = nnx.merge(state.graphdef, params, model_state, copy=True)
        if "mask" in batch:
            _masked_batch_norms(model, batch["mask"])
        seen = model if dtype is None else _Float32Outputs(model)
        loss, metrics = loss_fn(seen, batch)
        loss = loss.astype(jnp.float32) + _regularization(model).astype(jnp.float32)
        _, _, updated_model_state = nnx.split(model, nnx.Param, ...)
        if dtype is not None:  # batch-norm statistics keep their (float32) dtype
            updated_model_state = jax.tree.map(
                lambda new, old: new.astype(old.dtype)
                if jnp.issubdtype(old.dtype, jnp.floating)
                else new,
                updated_model_state,
                model_state,
            )
        return loss, (metrics, updated_model_state)

    (_, (metrics, model_state)), grads = jax.value_and_grad(loss_of, has_aux=True)(
        state.params, model_state
    )
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(
        step=state.step + 1, params=params, model_state=model_state, opt_state=opt_state
    )
    return new_state, metrics


def eval_step(
    state: TrainState, batch: dict, loss_fn: LossFn, precision: str | None = None
) -> Metrics:
    """Metric sums of the eval-mode model (dropout off, batch norm on its moving statistics)."""
    dtype = compute_dtype(precision)
    params = state.params
    if dtype is not None:
        batch, params = _cast_floats(batch, dtype), _cast_floats(params, dtype)
    model = nnx.merge(state.eval_graphdef, params, state.model_state, copy=True)
    _, metrics = loss_fn(model if dtype is None else _Float32Outputs(model), batch)
    return metrics


def _add(total: Metrics | None, metrics: Metrics) -> Metrics:
    if total is None:
        return metrics
    return jax.tree.map(jnp.add, total, metrics)


class CompiledSteps(NamedTuple):
    """:func:`train_step` and :func:`eval_step` compiled for one loss, in two forms:

    - ``train_one(state, batch) -> (state, metrics)`` and ``eval_one(state, batch) -> metrics``:
      one step and that batch's metric sums;
    - ``train_accumulate(state, totals, batch) -> (state, totals)`` and
      ``eval_accumulate(state, totals, batch) -> totals``: one step whose metric sums are added
      to ``totals`` (donated; ``None`` starts a new sum), so an epoch's sums stay on the device.
    """

    train_one: Callable
    eval_one: Callable
    train_accumulate: Callable
    eval_accumulate: Callable


def make_steps(
    loss_fn: str | LossFn = "classification",
    *,
    precision: str | None = None,
    state_sharding=None,
    metrics_sharding=None,
) -> CompiledSteps:
    """Compile the train and eval steps for a loss function (a registered name or a callable).

    ``state_sharding`` (a pytree of shardings shaped like the state, or one sharding) pins the new
    state to the same layout as the old one (e.g. FSDP-sharded parameters), so the step compiles
    once; ``metrics_sharding`` does the same for the metric sums (replicated on a mesh).
    """
    loss_fn = get_loss(loss_fn)
    compute_dtype(precision)  # an unknown precision fails here, before any tracing

    def pin(tree, sharding):
        if sharding is None:
            return tree
        if isinstance(sharding, jax.sharding.Sharding):
            sharding = jax.tree.map(lambda _: sharding, tree)
        return jax.lax.with_sharding_constraint(tree, sharding)

    def train_acc(state, totals, batch):
        state, metrics = train_step(state, batch, loss_fn, precision)
        return pin(state, state_sharding), pin(_add(totals, metrics), metrics_sharding)

    def eval_acc(state, totals, batch):
        return pin(_add(totals, eval_step(state, batch, loss_fn, precision)), metrics_sharding)

    def one_train(s, b):
        s, metrics = train_step(s, b, loss_fn, precision)
        return pin(s, state_sharding), metrics

    return CompiledSteps(
        train_one=jax.jit(one_train, donate_argnums=(0,)),
        eval_one=jax.jit(lambda s, b: eval_step(s, b, loss_fn, precision)),
        train_accumulate=jax.jit(train_acc, donate_argnums=(0, 1)),
        eval_accumulate=jax.jit(eval_acc, donate_argnums=(1,)),
    )


def scan_steps(
    steps: CompiledSteps, take: Callable[[dict, jax.Array], dict], batch_sharding=None
) -> tuple[Callable, Callable]:
    """Many steps per call, over a dataset that is already on the device(s).

    Returns ``train_many(state, totals, data, idx) -> (state, totals)`` and ``eval_many(state,
    totals, data, idx) -> totals``: one ``lax.scan`` over the rows of ``idx`` (``[steps,
    batch]`` example indices), each step gathering its batch with ``take(data, idx_row)``
    (e.g. :meth:`d2ljax.data.ArrayLoader.take`) and running ``steps.train_accumulate`` /
    ``steps.eval_accumulate``.
    The results equal the one-step-per-call loop's; the host dispatches once per chunk instead
    of twice per step (gather, then step), which on a CPU leaves both cores to the computation.
    ``batch_sharding`` pins each gathered batch to the mesh's batch layout.
    """

    def batch(data, idx):
        b = take(data, idx)
        if batch_sharding is not None:
            b = jax.lax.with_sharding_constraint(b, jax.tree.map(lambda _: batch_sharding, b))
        return b

    def train_many(state, totals, data, idx):
        def body(carry, row):
            return steps.train_accumulate(*carry, batch(data, row)), None

        return jax.lax.scan(body, (state, totals), idx)[0]

    def eval_many(state, totals, data, idx):
        def body(totals, row):
            return steps.eval_accumulate(state, totals, batch(data, row)), None

        return jax.lax.scan(body, totals, idx)[0]

    return (
        jax.jit(train_many, donate_argnums=(0, 1)),
        jax.jit(eval_many, donate_argnums=(1,)),
    )


def summarize(totals: Metrics | None) -> dict[str, float]:
    """Host-side epoch averages from metric sums (one device-to-host transfer)."""
    if totals is None:
        return {}
    totals = jax.device_get(totals)
    count = float(totals.get("count", 1.0)) or 1.0
    out = {k: float(v) / count for k, v in totals.items() if k != "count"}
    if "perplexity" in out:  # summed per-token negative log-likelihood -> exp(mean)
        out["perplexity"] = math.exp(min(out["perplexity"], 700.0))
    return out
