"""Adagrad (book §12.7) from scratch, as an optax transformation.

Adagrad gives every coordinate its own learning rate, which shrinks with the sum of the squared
gradients that coordinate has seen (§12.7.3, eq. 12.7.5)::

    s_t = s_{t-1} + g_t ** 2
    x_t = x_{t-1} - lr * g_t / sqrt(s_t + eps)

Frequently large gradients get small steps and rare (sparse) features keep large ones, like a
diagonal preconditioner estimated on the fly. Because ``s`` only grows, the effective rate decays
like ``1 / sqrt(t)``: fine for convex problems, often too fast for deep networks (RMSProp, §12.8,
fixes exactly this).

Versus ``optax.adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7)``: optax computes
``g * rsqrt(s + eps)`` -- ``eps`` inside the square root, as the book -- but starts ``s`` at 0.1
and its default ``eps`` is 1e-7. With ``initial_accumulator_value=0`` and the same ``eps`` the
two agree step for step (tested; optax also returns 0 where ``s == 0``, which here can only
happen with a zero gradient, whose update is 0 anyway). This function defaults to the book
(``s_0 = 0``, ``eps = 1e-6``) and offers ``initial_accumulator_value`` to reproduce optax's.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from d2ljax.optim import _util

__all__ = ["AdagradState", "adagrad"]


class AdagradState(NamedTuple):
    """``count``: updates done so far; ``sum_sq``: the running sum of squared gradients."""

    count: jax.Array
    sum_sq: optax.Updates


def adagrad(
    learning_rate: float | optax.Schedule,
    eps: float = 1e-6,
    *,
    initial_accumulator_value: float = 0.0,
) -> optax.GradientTransformation:
    """Adagrad: ``s += g**2``; ``updates = -learning_rate * g / sqrt(s + eps)``.

    Args:
      learning_rate: a constant, or an optax schedule evaluated at the number of updates done.
      eps: added to ``s`` inside the square root (the book's 1e-6).
      initial_accumulator_value: the starting ``s`` (0 in the book, 0.1 in ``optax.adagrad``).
    """

    def init_fn(params):
        return AdagradState(
            count=_util.zero_count(),
            sum_sq=_util.zeros_like(params, initial_accumulator_value),
        )

    def update_fn(grads, state, params=None):
        del params
        lr = _util.rate_at(learning_rate, state.count)
        sum_sq = _util.tree_map(lambda g, s: s + g * g, grads, state.sum_sq)
        scaled = _util.tree_map(lambda g, s: g / jnp.sqrt(s + eps), grads, sum_sq)
        updates = _util.scale(scaled, lr)
        return updates, AdagradState(count=_util.increment(state.count), sum_sq=sum_sq)

    return optax.GradientTransformation(init_fn, update_fn)
