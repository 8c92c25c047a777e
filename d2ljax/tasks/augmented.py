"""Data augmentation inside the compiled training step (book §14.1), for any Task.

:class:`AugmentedTask` wraps a task whose state has ``rng`` and ``step`` (a
:class:`~d2ljax.train.TrainState`, so every :class:`~d2ljax.tasks.SupervisedTask`): before each
training step it replaces the batch by ``augment(key, batch)``, with ``key`` a function of the
run's key and the step number only, so a resumed run augments exactly as an uninterrupted one.
Evaluation batches are never augmented. The task knows no dataset: ``augment`` is any traceable
``(key, batch) -> batch`` (e.g. :func:`d2ljax.data.augment.make_augment`'s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from d2ljax.train.task import Task

#: Folded into the run's key before the step number, so augmentation keys never equal the keys
#: the model's dropout streams get (``fold_in(rng, step)`` and its sub-keys).
AUGMENT_STREAM = 0x61756721


def augment_key(rng: jax.Array, step) -> jax.Array:
    """The augmentation key of training step ``step`` of a run whose key is ``rng``."""
    return jax.random.fold_in(jax.random.fold_in(rng, AUGMENT_STREAM), step)


class AugmentedTask(Task):
    """``task`` with ``augment(augment_key(state.rng, state.step), batch)`` applied to every
    training batch; ``eval_step``, ``init``, ``summarize``, ``epoch_metrics`` and ``model`` are
    ``task``'s. Two AugmentedTasks share compiled steps when their inner tasks do and their
    ``augment`` s are equal (the ops of :mod:`d2ljax.data.augment` compare by value)."""

    def __init__(self, task: Task, augment: Callable[[jax.Array, dict], dict]):
        self.task = task
        self.augment = augment

    def init(self, rng: jax.Array, spec: Any = None):
        return self.task.init(rng, spec)

    def train_step(self, state, batch):
        batch = self.augment(augment_key(state.rng, state.step), batch)
        return self.task.train_step(state, batch)

    def eval_step(self, state, batch):
        return self.task.eval_step(state, batch)

    @property
    def has_eval(self) -> bool:
        return self.task.has_eval

    def summarize(self, sums):
        return self.task.summarize(sums)

    def epoch_metrics(self, state, data):
        return self.task.epoch_metrics(state, data)

    def model(self, state):
        return self.task.model(state)

    def program_key(self):
        return (AugmentedTask, self.task.program_key(), self.augment)
