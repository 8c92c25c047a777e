"""Yogi (book §12.10.3) from scratch, as an optax transformation.

Adam's second moment can be written ``s_t = s_{t-1} + (1 - beta2) * (g_t**2 - s_{t-1})``: when
the gradients are large and sparse, ``s`` can forget the past fast and then the steps blow up.
Yogi keeps the size of each change at ``(1 - beta2) * g_t**2`` and only takes the sign of the
difference (eq. 12.10.4)::

    s_t = s_{t-1} + (1 - beta2) * g_t ** 2 * sign(g_t ** 2 - s_{t-1})

so ``s`` moves toward ``g**2`` additively, never by a multiplicative jump. Everything else
(first moment, bias correction, the step) is Adam's; the book uses ``eps = 1e-3``.

Versus ``optax.yogi(learning_rate, b1, b2, eps)``: the same update (optax writes
``s - (1 - b2) * sign(s - g**2) * g**2``, the same numbers), but optax starts *both* moments at
``initial_accumulator_value=1e-6`` (not 0, and ``optax.yogi`` does not expose it; its
``scale_by_yogi`` does). This function starts at 0 like the book; pass
``initial_accumulator_value=1e-6`` to reproduce ``optax.yogi`` exactly. Both equivalences are
tested step for step. (Starting at 1e-6 changes the first steps slightly: the bias correction
then divides a non-zero start value as well.)
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from d2ljax.optim.adam import AdamState, adam_like

__all__ = ["YogiState", "yogi"]

YogiState = AdamState  # same fields: count, v, s


def yogi(
    learning_rate: float | optax.Schedule,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-3,
    *,
    initial_accumulator_value: float = 0.0,
) -> optax.GradientTransformation:
    """Yogi: Adam with the additive second-moment update of the module docstring.

    Args:
      learning_rate: a constant, or an optax schedule evaluated at the number of updates done.
      beta1, beta2: decays of the first and second moment.
      eps: added to ``sqrt(s_hat)`` (the book's and optax's 1e-3).
      initial_accumulator_value: start of both moments (0 in the book, 1e-6 in ``optax.yogi``).
    """

    def second_moment(g, s):
        g2 = g * g
        return s + (1 - beta2) * jnp.sign(g2 - s) * g2

    return adam_like(learning_rate, beta1, beta2, eps, second_moment, initial_accumulator_value)
