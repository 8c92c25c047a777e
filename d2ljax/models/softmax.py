"""Softmax regression (chapter 4), from scratch and concise.

- :class:`SoftmaxRegressionScratch` -- §4.4: explicit ``W``, ``b``; pair it with
  :func:`scratch_loss` (the book's hand-written softmax then ``-log p[y]``; the training core's
  ``"classification_scratch"`` loss does the same).
- :class:`SoftmaxRegression` -- §4.5 concise version on ``nnx.Linear``, trained with the stable
  ``optax.softmax_cross_entropy_with_integer_labels`` (the ``"classification"`` loss).

Both flatten ``[B, 28, 28, 1]`` images to ``[B, 784]`` and return logits ``[B, num_outputs]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.nn import functional as F
from d2ljax.nn.functional import flatten

__all__ = ["SoftmaxRegression", "SoftmaxRegressionScratch", "scratch_loss"]


def scratch_loss(logits_BC: jax.Array, y_B: jax.Array) -> jax.Array:
    """Mean cross-entropy the §4.4 way: :func:`~d2ljax.nn.functional.softmax`, then
    :func:`~d2ljax.nn.functional.cross_entropy_from_probs` (``inf`` if a probability underflows)."""
    return jnp.mean(F.cross_entropy_from_probs(F.softmax(logits_BC), y_B))


@register(
    "softmax_regression_scratch",
    description="§4.4 softmax regression from scratch (W ~ N(0, sigma^2), b = 0)",
)
class SoftmaxRegressionScratch(nnx.Module):
    """Softmax regression from scratch (§4.4): logits ``X W + b``.

    The model returns logits, not probabilities, so one model serves both losses; the book's
    softmax-then-log loss is :func:`scratch_loss` (also available as ``model.loss``).

    Args:
      num_inputs: flattened input size (784 for Fashion-MNIST).
      num_outputs: number of classes.
      sigma: standard deviation of the normal init of ``W``.
      rngs: draws ``W`` from ``rngs.params()``.
    """

    loss = staticmethod(scratch_loss)

    def __init__(
        self,
        num_inputs: int = 784,
        num_outputs: int = 10,
        sigma: float = 0.01,
        *,
        rngs: nnx.Rngs,
    ):
        self.W = nnx.Param(
            sigma * jax.random.normal(rngs.params(), (num_inputs, num_outputs), jnp.float32)
        )
        self.b = nnx.Param(jnp.zeros((num_outputs,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        X_BD = flatten(x)
        logits_BC = jnp.matmul(X_BD, self.W[...]) + self.b[...]
        return logits_BC


@register("softmax_regression", description="§4.5 concise softmax regression (nnx.Linear)")
class SoftmaxRegression(nnx.Module):
    """Concise softmax regression (§4.5): flatten, then one ``nnx.Linear`` (Flax default init).

    Args:
      num_outputs: number of classes.
      num_inputs: flattened input size (784 for Fashion-MNIST); NNX layers need it up front where
        the book's ``LazyLinear`` infers it.
      rngs: parameter stream.
    """

    def __init__(self, num_outputs: int = 10, num_inputs: int = 784, *, rngs: nnx.Rngs):
        self.net = nnx.Linear(num_inputs, num_outputs, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.net(flatten(x))
