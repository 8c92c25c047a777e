"""Helpers shared by the scratch optimizers: step counting, learning rates, pytree maps."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax


def zero_count() -> jax.Array:
    """The step counter of a fresh optimizer state."""
    return jnp.zeros((), jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the largest int32 instead of wrapping around."""
    max_int32 = jnp.iinfo(jnp.int32).max
    return jnp.where(count < max_int32, count + 1, max_int32)


def rate_at(learning_rate: float | optax.Schedule, count: jax.Array):
    """The learning rate of the step after ``count`` updates (a constant, or a schedule's value)."""
    return learning_rate(count) if callable(learning_rate) else learning_rate


def tree_map(fn: Callable, tree, *rest):
    """``jax.tree.map`` over the leaves of ``tree`` that keeps ``None`` leaves (masked gradients)
    as ``None`` instead of calling ``fn`` on them."""
    return jax.tree.map(
        lambda x, *r: None if x is None else fn(x, *r), tree, *rest, is_leaf=lambda x: x is None
    )


def zeros_like(params, value: float = 0.0):
    """A pytree shaped like ``params`` filled with ``value`` (an optimizer's accumulators)."""
    return tree_map(lambda p: jnp.full_like(p, value), params)


def scale(updates, lr):
    """``-lr * u`` for every leaf, keeping each leaf's dtype (so bfloat16 stays bfloat16)."""
    return tree_map(lambda u: (-lr * u).astype(jnp.asarray(u).dtype), updates)
