"""Learning-rate schedules (book §12.11) as plain functions ``step -> learning rate``.

Each function returns a schedule: a pure, ``jnp``-traceable function of the step count (an int
or an int array, also inside ``jit``), which is exactly what optax calls a schedule, so it can be
passed as the ``learning_rate`` of any optax or scratch optimizer. The book's schedulers are
stateful objects called once per epoch; here ``step`` is whatever the caller counts. Optimizers
count updates: to change the rate once per epoch as the book does, evaluate the schedule at
``step // steps_per_epoch``, or give its arguments (milestones, ``max_update``...) in steps.

Correspondence with optax (tested to float32 precision):

* ``factor_schedule(base_lr, factor, stop_factor_lr)`` ==
  ``optax.exponential_decay(base_lr, transition_steps=1, decay_rate=factor,
  end_value=stop_factor_lr)`` for ``factor < 1``.
* ``multi_factor_schedule(base_lr, milestones, factor)`` ==
  ``optax.piecewise_constant_schedule(base_lr, {m: factor for m in milestones})``
  (the rate drops *at* each milestone, as PyTorch's ``MultiStepLR`` that the book uses).
* ``cosine_schedule(base_lr, max_update, final_lr, warmup_steps, warmup_begin_lr)`` ==
  ``optax.warmup_cosine_decay_schedule(init_value=warmup_begin_lr, peak_value=base_lr,
  warmup_steps=warmup_steps, decay_steps=max_update, end_value=final_lr)``; optax's
  ``decay_steps`` counts the warm-up too, like the book's ``max_update``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import optax

__all__ = ["cosine_schedule", "factor_schedule", "multi_factor_schedule"]


def factor_schedule(
    base_lr: float, factor: float = 1.0, stop_factor_lr: float = 1e-7
) -> optax.Schedule:
    """Multiplicative decay (§12.11.3.1): ``max(stop_factor_lr, base_lr * factor ** step)``.

    The book's ``FactorScheduler`` multiplies its rate *before* returning it, so its t-th call
    (t from 0) gives ``base_lr * factor ** (t + 1)``; this schedule gives the rate to use for
    step ``step``, starting at ``base_lr`` as optax's schedules do.
    """

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        return jnp.maximum(stop_factor_lr, base_lr * jnp.power(factor, step))

    return schedule


def multi_factor_schedule(
    base_lr: float, milestones: Sequence[int], factor: float = 0.5
) -> optax.Schedule:
    """Piecewise constant (§12.11.3.2): ``base_lr * factor ** (number of milestones <= step)``.

    The book uses ``milestones=[15, 30], factor=0.5``: the rate halves at step 15 and again at 30.
    """
    milestones_M = jnp.asarray(sorted(milestones), jnp.int32)

    def schedule(step):
        step = jnp.asarray(step)
        passed = jnp.sum(step[..., None] >= milestones_M, axis=-1)
        return base_lr * jnp.power(jnp.float32(factor), passed)

    return schedule


def cosine_schedule(
    base_lr: float,
    max_update: int,
    final_lr: float = 0.0,
    warmup_steps: int = 0,
    warmup_begin_lr: float = 0.0,
) -> optax.Schedule:
    """Cosine decay with an optional linear warm-up (§12.11.3.3 and §12.11.3.4).

    * ``step < warmup_steps``: linear from ``warmup_begin_lr`` to ``base_lr``;
    * ``warmup_steps <= step <= max_update``: ``final_lr + (base_lr - final_lr) *
      (1 + cos(pi * (step - warmup_steps) / (max_update - warmup_steps))) / 2``;
    * afterwards: ``final_lr``.

    Args:
      base_lr: the peak rate (reached at the end of the warm-up).
      max_update: the step at which the decay ends, warm-up included.
      final_lr: the rate from ``max_update`` on.
      warmup_steps: length of the linear warm-up (0: none).
      warmup_begin_lr: the rate at step 0 when there is a warm-up.
    """
    if warmup_steps < 0 or max_update < warmup_steps:
        raise ValueError(
            f"need 0 <= warmup_steps <= max_update, got {warmup_steps} and {max_update}"
        )
    decay_steps = max(max_update - warmup_steps, 1)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        if warmup_steps > 0:
            warm = warmup_begin_lr + (base_lr - warmup_begin_lr) * step / warmup_steps
        else:
            warm = base_lr
        progress = jnp.clip(step - warmup_steps, 0, decay_steps) / decay_steps
        cosine = final_lr + (base_lr - final_lr) * (1 + jnp.cos(jnp.pi * progress)) / 2
        return jnp.where(step < warmup_steps, warm, cosine)

    return schedule
