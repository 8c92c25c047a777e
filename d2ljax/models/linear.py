"""Linear regression (chapter 3), from scratch and concise.

- :class:`LinearRegressionScratch` -- §3.4 (explicit ``w``, ``b``), and with ``lambd > 0`` also
  §3.7.4's ``WeightDecayScratch``: its :meth:`~LinearRegressionScratch.regularization` adds
  ``lambd * ||w||^2 / 2`` to the loss.
- :class:`LinearRegression` -- §3.5 concise version on ``nnx.Linear``; with ``weight_decay`` it is
  §3.7.5's ``WeightDecay`` model (the book puts the decay in the optimizer; here it is the same
  penalty added to the loss, which for SGD is the same update).

Inputs are ``[B, d]`` features, outputs ``[B, 1]`` predictions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.nn import functional as F

__all__ = ["LinearRegression", "LinearRegressionScratch"]


@register(
    "linear_regression_scratch",
    description="§3.4 linear regression from scratch (w ~ N(0, sigma^2), b = 0); "
    "lambd > 0 gives §3.7 weight decay",
)
class LinearRegressionScratch(nnx.Module):
    """Linear regression from scratch (§3.4), with optional weight decay (§3.7.4).

    Args:
      num_inputs: number of features ``d``.
      sigma: standard deviation of the normal init of ``w``.
      lambd: weight-decay strength; the penalty applies to ``w`` only, not to ``b``.
      rngs: draws ``w`` from ``rngs.params()``.
    """

    def __init__(self, num_inputs: int, sigma: float = 0.01, lambd: float = 0.0, *, rngs: nnx.Rngs):
        self.num_inputs = num_inputs
        self.lambd = lambd
        self.w = nnx.Param(sigma * jax.random.normal(rngs.params(), (num_inputs, 1), jnp.float32))
        self.b = nnx.Param(jnp.zeros((1,), jnp.float32))

    def __call__(self, X_BD: jax.Array) -> jax.Array:
        return F.linreg(X_BD, self.w[...], self.b[...])

    def regularization(self) -> jax.Array:
        """``lambd * sum(w^2) / 2`` -- the §3.7 L2 penalty, zero when ``lambd == 0``."""
        return self.lambd * F.l2_penalty(self.w[...])


@register("linear_regression", description="§3.5 concise linear regression (nnx.Linear)")
class LinearRegression(nnx.Module):
    """Concise linear regression (§3.5): one ``nnx.Linear`` with the book's init.

    The weight is drawn from ``N(0, 0.01^2)`` and the bias is zero, as in the book's
    ``LazyLinear(1)`` initialized with ``normal_(0, 0.01)``.

    Args:
      num_inputs: number of features ``d``.
      weight_decay: optional L2 strength (§3.7.5) on the weight only, returned by
        :meth:`regularization`.
      rngs: parameter stream.
    """

    def __init__(self, num_inputs: int, weight_decay: float = 0.0, *, rngs: nnx.Rngs):
        self.weight_decay = weight_decay
        self.net = nnx.Linear(
            num_inputs,
            1,
            kernel_init=nnx.initializers.normal(stddev=0.01),
            bias_init=nnx.initializers.zeros_init(),
            rngs=rngs,
        )

    def __call__(self, X_BD: jax.Array) -> jax.Array:
        return self.net(X_BD)

    def regularization(self) -> jax.Array:
        """``weight_decay * sum(kernel^2) / 2`` (zero by default)."""
        return self.weight_decay * jnp.sum(self.net.kernel[...] ** 2) / 2
