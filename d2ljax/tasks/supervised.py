"""Supervised learning (book chapters 3-16): one model, one optimizer, a loss of ``(model, batch)``.

The state is a :class:`~d2ljax.train.TrainState`; the steps are
:func:`d2ljax.train.steps.train_step` and :func:`~d2ljax.train.steps.eval_step` (dropout reseeded
from the state's key and step, batch-norm statistics updated in train mode, mixed precision with
float32 master parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from d2ljax.train.losses import LossFn, get_loss
from d2ljax.train.state import TrainState
from d2ljax.train.steps import compute_dtype, eval_step, train_step
from d2ljax.train.task import Task


def init_train_state(model, optimizer, rng: jax.Array) -> TrainState:
    """One model and its optimizer as a :class:`TrainState`. ``model`` is a module, or a factory
    ``rngs -> module`` called with parameter key ``fold_in(rng, 1)`` and a dropout key folded from
    it, so that one seed gives one initialisation whichever Task builds it."""
    if not isinstance(model, nnx.Module):
        key = jax.random.fold_in(rng, 1)
        model = model(nnx.Rngs(params=key, dropout=jax.random.fold_in(key, 1)))
    return TrainState.create(model, optimizer, rng=rng)


class SupervisedTask(Task):
    """Train ``model`` with ``optimizer`` on ``loss`` (a registered name or ``fn(model, batch) ->
    (loss, metric_sums)``, see :mod:`d2ljax.train.losses`).

    ``model`` is an NNX module (training starts from its current parameters) or a function
    ``rngs -> module`` (each ``init`` builds a fresh one from the run's key: a tuner's trials).
    ``precision``: ``"float32"`` or ``"bfloat16"`` (bf16 compute, float32 master parameters, and
    every floating output the loss sees cast to float32).

    Two SupervisedTasks with the same loss and precision share compiled steps: what else a step
    depends on (the architecture, the optimizer's recipe) is part of the state's structure.
    """

    def __init__(
        self,
        model: nnx.Module | Callable[[nnx.Rngs], nnx.Module],
        optimizer,
        loss: str | LossFn = "classification",
        *,
        precision: str = "float32",
    ):
        self._model = model
        self.optimizer = optimizer
        self.loss_fn = get_loss(loss)
        compute_dtype(precision)  # an unknown precision fails here
        self.precision = precision

    def init(self, rng: jax.Array, spec: Any = None) -> TrainState:
        return init_train_state(self._model, self.optimizer, rng)

    def train_step(self, state, batch):
        return train_step(state, batch, self.loss_fn, self.precision)

    def eval_step(self, state, batch):
        return eval_step(state, batch, self.loss_fn, self.precision)

    def program_key(self):
        return (SupervisedTask, self.loss_fn, self.precision)
