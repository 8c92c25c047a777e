"""Pure training and evaluation steps.

``train_step(state, batch) -> (state, metrics)`` and ``eval_step(state, batch) -> metrics`` take and
return pytrees only; :func:`make_steps` compiles them once with ``jax.jit``, donating the state (and
the running metric sums) so XLA updates the buffers in place. Metrics stay on the device: the loop
adds them up inside the compiled step and reads them once per log interval.
"""

from __future__ import annotations

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


def _reseed(model: nnx.Module, streams: tuple[str, ...], key: jax.Array) -> None:
    if streams:
        nnx.reseed(model, **{s: jax.random.fold_in(key, i) for i, s in enumerate(streams)})


def _regularization(model: nnx.Module) -> jax.Array:
    reg = getattr(model, "regularization", None)
    return reg() if callable(reg) else jnp.zeros((), jnp.float32)


def train_step(state: TrainState, batch: dict, loss_fn: LossFn) -> tuple[TrainState, Metrics]:
    """One optimizer step on ``batch``. Pure: returns the new state and the batch's metric sums.

    The model's RNG streams (dropout) are reseeded from ``fold_in(state.rng, state.step)``, so a
    step's randomness depends only on the seed and the step number: resuming reproduces it.
    """
    model_state = state.model_state
    if state.rng_streams:
        model = nnx.merge(state.graphdef, state.params, model_state, copy=True)
        _reseed(model, state.rng_streams, jax.random.fold_in(state.rng, state.step))
        _, _, model_state = nnx.split(model, nnx.Param, ...)

    # model_state is an argument (not a closure) so NNX may update it inside the grad trace.
    def loss_of(params, model_state):
        model = nnx.merge(state.graphdef, params, model_state, copy=True)
        loss, metrics = loss_fn(model, batch)
        loss = loss + _regularization(model)
        _, _, updated_model_state = nnx.split(model, nnx.Param, ...)
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


def eval_step(state: TrainState, batch: dict, loss_fn: LossFn) -> Metrics:
    """Metric sums of the eval-mode model (dropout off, batch norm on its moving statistics)."""
    model = nnx.merge(state.eval_graphdef, state.params, state.model_state, copy=True)
    _, metrics = loss_fn(model, batch)
    return metrics


def _add(total: Metrics | None, metrics: Metrics) -> Metrics:
    if total is None:
        return metrics
    return jax.tree.map(jnp.add, total, metrics)


class Steps(NamedTuple):
    """Compiled steps. ``train(state, totals, batch)`` and ``eval(state, totals, batch)`` add the
    batch's metrics to ``totals`` (donated); ``totals=None`` starts a new sum."""

    train: Callable
    eval: Callable
    train_step: Callable
    eval_step: Callable


def make_steps(loss_fn: str | LossFn = "classification") -> Steps:
    """Compile the train and eval steps for a loss function (a registered name or a callable)."""
    loss_fn = get_loss(loss_fn)

    def train_acc(state, totals, batch):
        state, metrics = train_step(state, batch, loss_fn)
        return state, _add(totals, metrics)

    def eval_acc(state, totals, batch):
        return _add(totals, eval_step(state, batch, loss_fn))

    return Steps(
        train=jax.jit(train_acc, donate_argnums=(0, 1)),
        eval=jax.jit(eval_acc, donate_argnums=(1,)),
        train_step=jax.jit(lambda s, b: train_step(s, b, loss_fn), donate_argnums=(0,)),
        eval_step=jax.jit(lambda s, b: eval_step(s, b, loss_fn)),
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
