"""The Task: what is trained and how one step goes; :func:`~d2ljax.train.fit` does the rest.

A Task bundles what is specific to a kind of training (supervised learning, a GAN's two players,
an RL agent whose step rolls out its environment, a GP's marginal likelihood, ...):

* ``init(rng, spec) -> state``: the training state, a pytree of arrays with ``arrays()`` (what a
  checkpoint holds, a dict) and ``replace_arrays(arrays)`` (see :class:`TaskState`); ``spec`` is
  the shapes and dtypes of one training batch (``jax.ShapeDtypeStruct`` leaves, None for a task
  that reads no data).
* ``train_step(state, batch) -> (state, metric_sums)`` and ``eval_step(state, batch) ->
  metric_sums``: pure functions, traced once and compiled by ``fit`` (state donated). Metric sums
  are dicts of scalars that ``fit`` adds up over an epoch on the device. A batch may carry a
  ``"mask"`` (``[B]``, 0 on the padding rows ``fit`` adds to the last batch of an epoch): a
  step weights its examples by it.
* ``summarize(sums) -> {name: float}``: the epoch's reported values, on the host (default:
  :func:`~d2ljax.train.summarize`, sums divided by their ``"count"``).
* ``epoch_metrics(state, data) -> {name: float}`` (optional): metrics that need all of an
  epoch's predictions at once (mAP, Hit@k), computed on the host after the eval pass; ``data``
  is the validation data. Default: none.
* ``model(state)``: the trained module(s) a user gets back (default: ``state.model()``).
* ``program_key()``: a hashable value that says which tasks share compiled steps (default: the
  task itself, so one task object reuses its programs across ``fit`` calls). Two tasks with equal
  keys must trace the same steps from states of the same structure.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from d2ljax.train.steps import summarize


class Task:
    """Base class of the Tasks ``fit`` trains (see the module docstring)."""

    def init(self, rng: jax.Array, spec: Any) -> Any:
        raise NotImplementedError

    def train_step(self, state, batch):
        raise NotImplementedError

    def eval_step(self, state, batch) -> dict:
        raise NotImplementedError(f"{type(self).__name__} has no eval_step")

    def summarize(self, sums) -> dict[str, float]:
        return summarize(sums)

    def epoch_metrics(self, state, data) -> dict[str, float]:
        return {}

    def model(self, state):
        return state.model()

    def program_key(self) -> Any:
        return self

    @property
    def has_eval(self) -> bool:
        return type(self).eval_step is not Task.eval_step


class TaskState:
    """Mixin for a task's state dataclass (a ``flax.struct.PyTreeNode``): ``arrays()`` is the dict
    of its pytree fields (what a checkpoint holds) and ``replace_arrays`` puts such a dict back."""

    def arrays(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.metadata.get("pytree_node", True)
        }

    def replace_arrays(self, arrays: dict[str, Any]):
        return self.replace(**arrays)
