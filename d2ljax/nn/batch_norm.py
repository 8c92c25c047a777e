"""Batch normalization from scratch (§8.5.3), and the layer that wraps it.

- :func:`batch_norm` -- the pure function: normalize with the batch's statistics in training mode
  (and return updated moving averages), with the moving averages in evaluation mode.
- :class:`BatchNormScratch` -- an NNX layer holding ``gamma``/``beta`` (``nnx.Param``) and the
  moving statistics (``nnx.BatchStat``), switched by ``model.train()`` / ``model.eval()`` like
  ``nnx.BatchNorm``.

Conventions, chosen so that the scratch version equals ``nnx.BatchNorm`` numerically:

- Inputs are channels-last: ``[B, D]`` after a dense layer (statistics per feature over the
  batch) or ``[B, H, W, C]`` after a convolution (per channel, over batch *and* positions). The
  book's PyTorch code is channels-first and asserts 2-D or 4-D input; here any input with at least
  two axes works and the last axis is always the feature axis, so ``gamma``/``beta`` have shape
  ``[C]`` and the book's ``num_dims`` argument is not needed.
- ``momentum`` is Flax's: ``moving = momentum * moving + (1 - momentum) * batch_stat``. The
  default ``0.9`` is the same average as PyTorch's ``nn.BatchNorm`` default ``momentum=0.1``,
  which weights the *new* statistic. (``nnx.BatchNorm`` itself defaults to ``0.99``; the models in
  :mod:`d2ljax.models` pass ``momentum=0.9`` to match the book's PyTorch layers.)
- The variance is the biased one, ``mean((x - mean)^2)``, both for normalizing and for the moving
  average, as in the book's scratch code and in Flax. (PyTorch's library layer uses the unbiased
  variance for its running average only.)
- ``eps`` is added to the variance under the square root; ``1e-5`` is the default of the book,
  PyTorch and Flax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["BatchNormScratch", "batch_norm"]


def batch_norm(
    X: jax.Array,
    gamma: jax.Array,
    beta: jax.Array,
    moving_mean: jax.Array,
    moving_var: jax.Array,
    *,
    eps: float = 1e-5,
    momentum: float = 0.9,
    training: bool,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Batch norm of channels-last ``X`` (§8.5.3); returns ``(Y, moving_mean, moving_var)``.

    In training mode ``X`` is standardized with the mean and biased variance of the batch, taken
    over every axis but the last (``[B, D]``: over the batch; ``[B, H, W, C]``: over batch, height
    and width), and the moving averages are updated as
    ``momentum * moving + (1 - momentum) * batch_stat`` (Flax's convention; see the module doc).
    In evaluation mode the moving averages standardize ``X`` and come back unchanged. Either way
    the result is ``gamma * X_hat + beta``.

    The returned moving statistics carry no gradient (the book's ``.data``): they are state, not
    parameters. ``training`` is a Python bool, fixed at trace time.

    Args:
      X: ``[B, D]`` or ``[B, H, W, C]`` (any rank >= 2, features last).
      gamma, beta: scale and shift, shape ``[C]``.
      moving_mean, moving_var: the running statistics, shape ``[C]``.
      eps: added to the variance before the square root.
      momentum: weight of the old moving average in the update.
      training: use (and fold in) the batch statistics, or use the moving ones.
    """
    if X.ndim < 2:
        raise ValueError(
            f"batch_norm expects [B, D] or [B, H, W, C] input (features last), got shape {X.shape}"
        )
    if not training:
        X_hat = (X - moving_mean) / jnp.sqrt(moving_var + eps)
        return gamma * X_hat + beta, moving_mean, moving_var
    axes = tuple(range(X.ndim - 1))
    mean = jnp.mean(X, axis=axes)
    var = jnp.mean((X - mean) ** 2, axis=axes)
    X_hat = (X - mean) / jnp.sqrt(var + eps)
    new_mean = jax.lax.stop_gradient(momentum * moving_mean + (1.0 - momentum) * mean)
    new_var = jax.lax.stop_gradient(momentum * moving_var + (1.0 - momentum) * var)
    return gamma * X_hat + beta, new_mean, new_var


class BatchNormScratch(nnx.Module):
    """Batch normalization layer from scratch (§8.5.3), a drop-in twin of ``nnx.BatchNorm``.

    ``gamma`` (ones) and ``beta`` (zeros) are ``nnx.Param``; ``moving_mean`` (zeros) and
    ``moving_var`` (ones) are ``nnx.BatchStat``, so ``nnx.split(model, nnx.Param, ...)`` puts them
    in the non-parameter state and a training step carries their updates. As in ``nnx.BatchNorm``,
    ``use_running_average`` is a plain attribute: ``model.train()`` sets it ``False`` (normalize
    with batch statistics, update the moving ones), ``model.eval()`` sets it ``True``; a new layer
    starts in training mode.

    Args:
      num_features: size of the last (feature/channel) axis of the input.
      eps: added to the variance.
      momentum: Flax convention (``0.9`` equals PyTorch's default ``0.1``).
      use_running_average: initial mode.
      rngs: unused (the initial values are constants); accepted so the signature matches
        ``nnx.BatchNorm``.
    """

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float = 0.9,
        use_running_average: bool = False,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.use_running_average = use_running_average
        self.gamma = nnx.Param(jnp.ones((num_features,), jnp.float32))
        self.beta = nnx.Param(jnp.zeros((num_features,), jnp.float32))
        self.moving_mean = nnx.BatchStat(jnp.zeros((num_features,), jnp.float32))
        self.moving_var = nnx.BatchStat(jnp.ones((num_features,), jnp.float32))

    def __call__(self, x: jax.Array, use_running_average: bool | None = None) -> jax.Array:
        """Normalize ``x`` (features last); ``use_running_average`` overrides the layer's mode."""
        if x.shape[-1] != self.num_features:
            raise ValueError(
                f"BatchNormScratch({self.num_features}) got input with {x.shape[-1]} features "
                f"(shape {x.shape}); the feature axis is the last one"
            )
        if use_running_average is None:
            use_running_average = self.use_running_average
        y, mean, var = batch_norm(
            x,
            self.gamma[...],
            self.beta[...],
            self.moving_mean[...],
            self.moving_var[...],
            eps=self.eps,
            momentum=self.momentum,
            training=not use_running_average,
        )
        if not use_running_average:
            self.moving_mean[...] = mean
            self.moving_var[...] = var
        return y

    def set_view(self, use_running_average: bool | None = None):
        """Hook for ``nnx.view(model, use_running_average=...)``."""
        if use_running_average is not None:
            self.use_running_average = use_running_average
