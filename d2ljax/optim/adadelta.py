"""Adadelta (book §12.9) from scratch, as an optax transformation.

Adadelta is RMSProp without a learning rate: the step is the gradient rescaled by the ratio of
two leaky averages, one of the squared *updates* and one of the squared gradients (§12.9.1)::

    s_t      = rho * s_{t-1} + (1 - rho) * g_t ** 2
    g'_t     = sqrt(delta_{t-1} + eps) / sqrt(s_t + eps) * g_t
    x_t      = x_{t-1} - g'_t
    delta_t  = rho * delta_{t-1} + (1 - rho) * g'_t ** 2

The ratio has the units of ``x`` (a "units correction" in Zeiler's paper), and ``eps`` inside the
numerator is what lets the first steps move at all: with ``delta_0 = 0`` they have size about
``sqrt(eps)``.

The learning rate. The book's Adadelta has none; ``make_optimizer`` calls every optimizer as
``factory(learning_rate, **kwargs)``, so :func:`adadelta` takes a ``learning_rate`` that
multiplies ``g'`` in the parameter step only (``delta`` still accumulates the unscaled ``g'``),
exactly as ``optax.adadelta`` does. Its default 1.0 is the book's algorithm.

Versus optax: ``optax.adadelta(learning_rate=1.0, rho=rho, eps=eps)`` agrees step for step
(tested). Beware ``optax.adadelta()`` with its default ``learning_rate=None``: optax then chains
an identity instead of a ``-1`` scaling, so its "updates" are ``+g'`` and ``apply_updates``
climbs the loss. Only the default ``eps`` differs otherwise: 1e-6 in optax, the book's 1e-5 here.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from d2ljax.optim import _util

__all__ = ["AdadeltaState", "adadelta"]


class AdadeltaState(NamedTuple):
    """``count``: updates done so far; ``mean_sq``: leaky average of squared gradients (``s``);
    ``mean_sq_delta``: leaky average of squared rescaled gradients (``delta``)."""

    count: jax.Array
    mean_sq: optax.Updates
    mean_sq_delta: optax.Updates


def adadelta(
    learning_rate: float | optax.Schedule = 1.0, rho: float = 0.9, eps: float = 1e-5
) -> optax.GradientTransformation:
    """Adadelta: ``updates = -learning_rate * g'`` with ``g'`` as in the module docstring.

    Args:
      learning_rate: 1.0 (the default) is the book's Adadelta, which has no learning rate; any
        other constant or schedule scales the parameter step (not ``delta``), as in optax.
      rho: decay of both leaky averages.
      eps: added inside both square roots (the book's 1e-5).
    """

    def init_fn(params):
        # Two separate trees: sharing one would make a donating jit donate each buffer twice.
        return AdadeltaState(
            count=_util.zero_count(),
            mean_sq=_util.zeros_like(params),
            mean_sq_delta=_util.zeros_like(params),
        )

    def update_fn(grads, state, params=None):
        del params
        lr = _util.rate_at(learning_rate, state.count)
        mean_sq = _util.tree_map(lambda g, s: (1 - rho) * (g * g) + rho * s, grads, state.mean_sq)
        rescaled = _util.tree_map(
            lambda g, s, d: jnp.sqrt(d + eps) / jnp.sqrt(s + eps) * g,
            grads,
            mean_sq,
            state.mean_sq_delta,
        )
        mean_sq_delta = _util.tree_map(
            lambda r, d: (1 - rho) * (r * r) + rho * d, rescaled, state.mean_sq_delta
        )
        updates = _util.scale(rescaled, lr)
        new_state = AdadeltaState(
            count=_util.increment(state.count), mean_sq=mean_sq, mean_sq_delta=mean_sq_delta
        )
        return updates, new_state

    return optax.GradientTransformation(init_fn, update_fn)
