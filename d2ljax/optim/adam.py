"""Adam (book §12.10) from scratch, as an optax transformation.

Adam combines momentum's leaky average of gradients with RMSProp's leaky average of squared
gradients, and corrects both for starting at zero (§12.10.1, eqs. 12.10.1-12.10.3)::

    v_t = beta1 * v_{t-1} + (1 - beta1) * g_t
    s_t = beta2 * s_{t-1} + (1 - beta2) * g_t ** 2
    v_hat = v_t / (1 - beta1 ** t)        s_hat = s_t / (1 - beta2 ** t)
    x_t = x_{t-1} - lr * v_hat / (sqrt(s_hat) + eps)

with ``t`` counting from 1. Without the bias correction the first steps would be far too small
(``v_1 = 0.1 g_1``); with it, the first step has size about ``lr`` in every coordinate.

Versus ``optax.adam(learning_rate, b1=beta1, b2=beta2, eps=eps)``: the same formulas, ``eps``
outside the square root and ``eps_root=0``; they agree step for step (tested). Only the default
``eps`` differs: 1e-8 in optax, the book's 1e-6 here.

:func:`adam_like` is the shared skeleton; Yogi (§12.10.3, :mod:`d2ljax.optim.yogi`) changes only
how ``s`` is updated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from d2ljax.optim import _util

__all__ = ["AdamState", "adam", "adam_like"]


class AdamState(NamedTuple):
    """``count``: updates done so far (``t - 1``); ``v``: first moment; ``s``: second moment."""

    count: jax.Array
    v: optax.Updates
    s: optax.Updates


def adam_like(
    learning_rate: float | optax.Schedule,
    beta1: float,
    beta2: float,
    eps: float,
    second_moment: Callable[[jax.Array, jax.Array], jax.Array],
    initial_accumulator_value: float = 0.0,
) -> optax.GradientTransformation:
    """Adam's skeleton with a pluggable second-moment update ``s_t = second_moment(g_t, s_{t-1})``.

    Both moments start at ``initial_accumulator_value`` (0 in the book).
    """

    def init_fn(params):
        # Two separate trees: sharing one would make a donating jit donate each buffer twice.
        v = _util.zeros_like(params, initial_accumulator_value)
        s = _util.zeros_like(params, initial_accumulator_value)
        return AdamState(count=_util.zero_count(), v=v, s=s)

    def update_fn(grads, state, params=None):
        del params
        lr = _util.rate_at(learning_rate, state.count)
        t = _util.increment(state.count)
        v = _util.tree_map(lambda g, v: (1 - beta1) * g + beta1 * v, grads, state.v)
        s = _util.tree_map(second_moment, grads, state.s)
        correction1 = 1 - beta1**t
        correction2 = 1 - beta2**t

        def direction(v, s):
            v_hat = v / correction1.astype(v.dtype)
            s_hat = s / correction2.astype(s.dtype)
            return v_hat / (jnp.sqrt(s_hat) + eps)

        updates = _util.scale(_util.tree_map(direction, v, s), lr)
        return updates, AdamState(count=t, v=v, s=s)

    return optax.GradientTransformation(init_fn, update_fn)


def adam(
    learning_rate: float | optax.Schedule,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-6,
) -> optax.GradientTransformation:
    """Adam with bias correction (module docstring); the book's ``eps`` is 1e-6.

    Args:
      learning_rate: a constant, or an optax schedule evaluated at the number of updates done.
      beta1, beta2: decays of the first and second moment (optax's ``b1``, ``b2``).
      eps: added to ``sqrt(s_hat)`` (outside the square root).
    """

    def second_moment(g, s):
        return (1 - beta2) * (g * g) + beta2 * s

    return adam_like(learning_rate, beta1, beta2, eps, second_moment)
