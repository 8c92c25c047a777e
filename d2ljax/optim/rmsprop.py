"""RMSProp (book §12.8) from scratch, as an optax transformation.

Adagrad's sum of squared gradients never forgets, so its steps shrink forever. RMSProp replaces
the sum by a leaky average (§12.8.1, eq. 12.8.1)::

    s_t = gamma * s_{t-1} + (1 - gamma) * g_t ** 2
    x_t = x_{t-1} - lr * g_t / sqrt(s_t + eps)

so the per-coordinate scale tracks the *recent* gradient magnitude (a window of roughly
``1 / (1 - gamma)`` steps) and the learning rate stays under the user's control, e.g. through a
schedule.

Versus ``optax.rmsprop(learning_rate, decay=gamma, eps=eps)``: the same update with the defaults
``initial_scale=0``, ``eps_in_sqrt=True`` (``eps`` inside the square root, as in the book),
``centered=False``, no momentum and no bias correction; they agree step for step (tested). Only
the default ``eps`` differs: 1e-8 in optax, the book's 1e-6 here.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from d2ljax.optim import _util

__all__ = ["RMSPropState", "rmsprop"]


class RMSPropState(NamedTuple):
    """``count``: updates done so far; ``mean_sq``: the leaky average of squared gradients."""

    count: jax.Array
    mean_sq: optax.Updates


def rmsprop(
    learning_rate: float | optax.Schedule, gamma: float = 0.9, eps: float = 1e-6
) -> optax.GradientTransformation:
    """RMSProp: ``s = gamma * s + (1 - gamma) * g**2``; ``updates = -lr * g / sqrt(s + eps)``.

    Args:
      learning_rate: a constant, or an optax schedule evaluated at the number of updates done.
      gamma: the decay of the leaky average (optax calls it ``decay``).
      eps: added to ``s`` inside the square root.
    """

    def init_fn(params):
        return RMSPropState(count=_util.zero_count(), mean_sq=_util.zeros_like(params))

    def update_fn(grads, state, params=None):
        del params
        lr = _util.rate_at(learning_rate, state.count)
        mean_sq = _util.tree_map(
            lambda g, s: (1 - gamma) * (g * g) + gamma * s, grads, state.mean_sq
        )
        scaled = _util.tree_map(lambda g, s: g / jnp.sqrt(s + eps), grads, mean_sq)
        updates = _util.scale(scaled, lr)
        return updates, RMSPropState(count=_util.increment(state.count), mean_sq=mean_sq)

    return optax.GradientTransformation(init_fn, update_fn)
