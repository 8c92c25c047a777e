"""Minibatch stochastic gradient descent from scratch (§3.4.3, §12.4) as an optax transformation.

The book's ``SGD`` does ``param -= lr * grad`` in place. In optax an optimizer is a pair of pure
functions, ``init(params) -> state`` and ``update(grads, state, params) -> (updates, state)``; the
caller applies ``optax.apply_updates(params, updates)``. For SGD the update is ``-lr * grad`` and
the state is empty, unless the learning rate is a schedule -- then the state counts the steps.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["SGDState", "sgd"]


class SGDState(NamedTuple):
    """Optimizer state when the learning rate is a schedule: the number of updates done so far."""

    count: jax.Array


def _increment(count: jax.Array) -> jax.Array:
    # Saturate instead of wrapping around to a negative step after 2**31 - 1 updates.
    max_int32 = jnp.iinfo(jnp.int32).max
    return jnp.where(count < max_int32, count + 1, max_int32)


def sgd(learning_rate: float | optax.Schedule) -> optax.GradientTransformation:
    """Plain SGD: ``updates = -learning_rate * grads`` (step size from a schedule at each step).

    Args:
      learning_rate: a constant, or an ``optax`` schedule ``step -> learning rate`` evaluated at the
        number of updates already applied (0 for the first), as ``optax.sgd`` does.

    Returns:
      An ``optax.GradientTransformation`` whose state is ``optax.EmptyState()`` for a constant rate
      and :class:`SGDState` for a schedule.
    """
    scheduled = callable(learning_rate)

    def init_fn(params):
        del params
        if scheduled:
            return SGDState(count=jnp.zeros((), jnp.int32))
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        if scheduled:
            lr = learning_rate(state.count)
            state = SGDState(count=_increment(state.count))
        else:
            lr = learning_rate

        def step(g):
            if g is None:
                return None
            return (-lr * g).astype(jnp.asarray(g).dtype)

        updates = jax.tree.map(step, updates, is_leaf=lambda g: g is None)
        return updates, state

    return optax.GradientTransformation(init_fn, update_fn)
