"""Momentum (book §12.6) from scratch, as an optax transformation.

Gradient descent on an ill-conditioned problem must pick a learning rate small enough for the
steepest direction, and then crawls along the flat ones. Momentum replaces the gradient by a
*leaky average* of past gradients (§12.6.1, eq. 12.6.2)::

    v_t = beta * v_{t-1} + g_t
    x_t = x_{t-1} - lr * v_t

Directions in which the gradients agree accumulate speed (up to ``1 / (1 - beta)`` times the
gradient), directions in which they flip sign cancel out.

``optax.sgd(lr, momentum=beta)`` is the same algorithm: its ``optax.trace`` keeps
``v = g + beta * v`` and the update is ``-lr * v``, so the two agree step for step (this is
tested). It is *not* the "EMA" form ``v = beta * v + (1 - beta) * g`` that some libraries use;
that form equals this one with the learning rate multiplied by ``1 - beta``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from d2ljax.optim import _util

__all__ = ["MomentumState", "momentum"]


class MomentumState(NamedTuple):
    """``count``: updates done so far (for a schedule); ``velocity``: the leaky gradient sum."""

    count: jax.Array
    velocity: optax.Updates


def momentum(
    learning_rate: float | optax.Schedule, beta: float = 0.9
) -> optax.GradientTransformation:
    """SGD with momentum: ``v = beta * v + g``; ``updates = -learning_rate * v``.

    Args:
      learning_rate: a constant, or an optax schedule evaluated at the number of updates done.
      beta: the momentum (0 gives plain SGD). The book uses 0.5 and 0.9 on its examples.
    """

    def init_fn(params):
        return MomentumState(count=_util.zero_count(), velocity=_util.zeros_like(params))

    def update_fn(grads, state, params=None):
        del params
        lr = _util.rate_at(learning_rate, state.count)
        velocity = _util.tree_map(lambda g, v: beta * v + g, grads, state.velocity)
        updates = _util.scale(velocity, lr)
        return updates, MomentumState(count=_util.increment(state.count), velocity=velocity)

    return optax.GradientTransformation(init_fn, update_fn)
