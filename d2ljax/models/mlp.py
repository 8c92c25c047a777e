"""Multilayer perceptrons (chapter 5), from scratch and concise, plus the §5.4 stability demos.

- :class:`MLPScratch` -- §5.2.1: explicit ``W1, b1, W2, b2`` drawn from ``N(0, 0.01^2)``, scratch
  ReLU.
- :class:`MLP` -- §5.2.2: ``nnx.Linear`` + ``nnx.relu`` with Flax's default init.
- :class:`DropoutMLPScratch` -- §5.6.2: two hidden layers, the scratch
  :class:`~d2ljax.nn.layers.Dropout` after each (the book uses library linear layers here too).
- :class:`DropoutMLP` -- §5.6.3: the same with ``nnx.Dropout``.
- :func:`deep_mlp`, :func:`layer_gradient_norms`, :func:`matrix_product_explosion` -- §5.4
  vanishing and exploding gradients.

Classifiers flatten ``[B, 28, 28, 1]`` images to ``[B, 784]`` and return logits ``[B, C]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.nn import functional as F
from d2ljax.nn.functional import flatten
from d2ljax.nn.layers import Dropout

__all__ = [
    "MLP",
    "DeepMLP",
    "DropoutMLP",
    "DropoutMLPScratch",
    "MLPScratch",
    "deep_mlp",
    "layer_gradient_norms",
    "matrix_product_explosion",
]


@register("mlp_scratch", description="§5.2.1 MLP from scratch: one hidden ReLU layer")
class MLPScratch(nnx.Module):
    """MLP from scratch (§5.2.1): ``relu(X W1 + b1) W2 + b2``.

    Args:
      num_inputs: flattened input size.
      num_outputs: number of classes.
      num_hiddens: hidden width.
      sigma: standard deviation of the normal init of the weights (biases start at zero).
      rngs: draws the weights from ``rngs.params()``.
    """

    def __init__(
        self,
        num_inputs: int = 784,
        num_outputs: int = 10,
        num_hiddens: int = 256,
        sigma: float = 0.01,
        *,
        rngs: nnx.Rngs,
    ):
        def normal(shape):
            return sigma * jax.random.normal(rngs.params(), shape, jnp.float32)

        self.W1 = nnx.Param(normal((num_inputs, num_hiddens)))
        self.b1 = nnx.Param(jnp.zeros((num_hiddens,), jnp.float32))
        self.W2 = nnx.Param(normal((num_hiddens, num_outputs)))
        self.b2 = nnx.Param(jnp.zeros((num_outputs,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        X_BD = flatten(x)
        H_BH = F.relu(jnp.matmul(X_BD, self.W1[...]) + self.b1[...])
        return jnp.matmul(H_BH, self.W2[...]) + self.b2[...]


@register("mlp", description="§5.2.2 concise MLP (nnx.Linear + nnx.relu)")
class MLP(nnx.Module):
    """Concise MLP (§5.2.2): flatten, ``Linear -> relu -> Linear`` with Flax's default init.

    Args:
      num_outputs: number of classes.
      num_hiddens: hidden width.
      num_inputs: flattened input size (``LazyLinear`` in the book infers it).
      rngs: parameter stream.
    """

    def __init__(
        self,
        num_outputs: int = 10,
        num_hiddens: int = 256,
        num_inputs: int = 784,
        *,
        rngs: nnx.Rngs,
    ):
        self.hidden = nnx.Linear(num_inputs, num_hiddens, rngs=rngs)
        self.output = nnx.Linear(num_hiddens, num_outputs, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.output(nnx.relu(self.hidden(flatten(x))))


@register(
    "dropout_mlp_scratch",
    description="§5.6.2 two-hidden-layer MLP with dropout from scratch",
)
class DropoutMLPScratch(nnx.Module):
    """MLP with dropout from scratch (§5.6.2).

    ``Linear -> relu -> Dropout(dropout_1) -> Linear -> relu -> Dropout(dropout_2) -> Linear``,
    where the dropout layers are the scratch :class:`~d2ljax.nn.layers.Dropout` (each with its own
    fork of the ``dropout`` rng stream) and, as in the book, the linear layers are the library's.
    ``model.eval()`` turns dropout off, ``model.train()`` back on.

    Args:
      num_outputs: number of classes.
      num_hiddens_1, num_hiddens_2: hidden widths.
      dropout_1, dropout_2: dropout rates after the first and second hidden layers.
      num_inputs: flattened input size.
      rngs: ``params`` stream for the weights, ``dropout`` stream for the masks.
    """

    def __init__(
        self,
        num_outputs: int = 10,
        num_hiddens_1: int = 256,
        num_hiddens_2: int = 256,
        dropout_1: float = 0.5,
        dropout_2: float = 0.5,
        num_inputs: int = 784,
        *,
        rngs: nnx.Rngs,
    ):
        self.linear1 = nnx.Linear(num_inputs, num_hiddens_1, rngs=rngs)
        self.dropout1 = Dropout(dropout_1, rngs=rngs)
        self.linear2 = nnx.Linear(num_hiddens_1, num_hiddens_2, rngs=rngs)
        self.dropout2 = Dropout(dropout_2, rngs=rngs)
        self.linear3 = nnx.Linear(num_hiddens_2, num_outputs, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        H1_BH = self.dropout1(F.relu(self.linear1(flatten(x))))
        H2_BH = self.dropout2(F.relu(self.linear2(H1_BH)))
        return self.linear3(H2_BH)


@register("dropout_mlp", description="§5.6.3 concise two-hidden-layer MLP with nnx.Dropout")
class DropoutMLP(nnx.Module):
    """Concise MLP with dropout (§5.6.3), same layout as :class:`DropoutMLPScratch` but with
    ``nnx.relu`` and ``nnx.Dropout``.

    Args:
      num_outputs: number of classes.
      num_hiddens_1, num_hiddens_2: hidden widths.
      dropout_1, dropout_2: dropout rates after the first and second hidden layers.
      num_inputs: flattened input size.
      rngs: ``params`` stream for the weights, ``dropout`` stream for the masks.
    """

    def __init__(
        self,
        num_outputs: int = 10,
        num_hiddens_1: int = 256,
        num_hiddens_2: int = 256,
        dropout_1: float = 0.5,
        dropout_2: float = 0.5,
        num_inputs: int = 784,
        *,
        rngs: nnx.Rngs,
    ):
        self.linear1 = nnx.Linear(num_inputs, num_hiddens_1, rngs=rngs)
        self.dropout1 = nnx.Dropout(dropout_1, rngs=rngs)
        self.linear2 = nnx.Linear(num_hiddens_1, num_hiddens_2, rngs=rngs)
        self.dropout2 = nnx.Dropout(dropout_2, rngs=rngs)
        self.linear3 = nnx.Linear(num_hiddens_2, num_outputs, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        H1_BH = self.dropout1(nnx.relu(self.linear1(flatten(x))))
        H2_BH = self.dropout2(nnx.relu(self.linear2(H1_BH)))
        return self.linear3(H2_BH)


# --------------------------------------------------------------------------------------------
# §5.4 numerical stability: vanishing and exploding gradients.
# --------------------------------------------------------------------------------------------

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": F.relu,
    "identity": lambda x: x,
}


def _kernel_init(init: str | float, fan_in: int, fan_out: int) -> Callable:
    """``normal`` is ``N(0, 1)`` (§5.4.1); ``xavier`` is ``N(0, 2 / (fan_in + fan_out))``
    (§5.4.2.2); ``he`` is ``N(0, 2 / fan_in)``; a float is the standard deviation itself."""
    if isinstance(init, int | float) and not isinstance(init, bool):
        std = float(init)
    elif init == "normal":
        std = 1.0
    elif init == "xavier":
        std = (2.0 / (fan_in + fan_out)) ** 0.5
    elif init == "he":
        std = (2.0 / fan_in) ** 0.5
    else:
        raise ValueError(f"unknown init {init!r}; use 'normal', 'xavier', 'he' or a float std")
    return nnx.initializers.normal(stddev=std)


class DeepMLP(nnx.Module):
    """``depth`` square bias-free layers ``h <- activation(h W_l)`` for the §5.4 experiments."""

    def __init__(
        self,
        depth: int,
        width: int,
        activation: str = "sigmoid",
        init: str | float = "normal",
        *,
        rngs: nnx.Rngs,
    ):
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)}"
            )
        self.activation = activation
        self.layers = nnx.List(
            [
                nnx.Linear(
                    width,
                    width,
                    use_bias=False,
                    kernel_init=_kernel_init(init, width, width),
                    rngs=rngs,
                )
                for _ in range(depth)
            ]
        )

    def __call__(self, h_BW: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for layer in self.layers:
            h_BW = act(layer(h_BW))
        return h_BW


def deep_mlp(
    depth: int,
    width: int,
    activation: str = "sigmoid",
    init: str | float = "normal",
    *,
    rngs: nnx.Rngs,
) -> DeepMLP:
    """A deep, narrow MLP (:class:`DeepMLP`) whose init and activation §5.4 varies."""
    return DeepMLP(depth, width, activation, init, rngs=rngs)


def layer_gradient_norms(
    depth: int = 10,
    width: int = 64,
    activation: str = "sigmoid",
    init: str | float = "normal",
    *,
    batch_size: int = 32,
    seed: int = 0,
) -> list[float]:
    """Frobenius norm of the loss gradient w.r.t. each layer's weight, first layer first (§5.4).

    The loss is the mean over the batch of the sum of the last layer's outputs, on standard normal
    inputs. With ``sigmoid`` the norms shrink toward the first layer (vanishing gradients: each
    layer multiplies the backward signal by ``sigmoid' <= 1/4``; under ``xavier`` by about 1e6 over
    10 layers, under ``normal`` the larger weights partly compensate). With ``relu`` and
    ``init="normal"`` they are huge (exploding, ~1e8 at width 64); ``he`` keeps them of similar
    size across layers.
    """
    key_params, key_x = jax.random.split(jax.random.key(seed))
    model = deep_mlp(depth, width, activation, init, rngs=nnx.Rngs(params=key_params))
    x_BW = jax.random.normal(key_x, (batch_size, width), jnp.float32)
    graphdef, params = nnx.split(model, nnx.Param)

    def loss_of(params):
        out_BW = nnx.merge(graphdef, params)(x_BW)
        return jnp.mean(jnp.sum(out_BW, axis=-1))

    grads = jax.jit(jax.grad(loss_of))(params)
    return [float(jnp.linalg.norm(grads["layers"][i]["kernel"][...])) for i in range(depth)]


def matrix_product_explosion(n: int = 100, seed: int = 0, size: int = 4) -> float:
    """Frobenius norm of the product of ``n + 1`` random ``N(0, 1)`` ``size x size`` matrices.

    §5.4.1.2: the book multiplies a Gaussian 4x4 matrix by 100 more and gets entries around
    ``1e25``; each product grows by a roughly constant factor, so the norm grows exponentially in
    ``n``. The product is renormalized after every step (tracking the log of the norm) so it
    cannot overflow float32; the result is a Python float.
    """
    keys = jax.random.split(jax.random.key(seed), n + 1)
    M = jax.random.normal(keys[0], (size, size), jnp.float32)

    def step(carry, key):
        M, log_scale = carry
        M = M @ jax.random.normal(key, (size, size), jnp.float32)
        s = jnp.linalg.norm(M)
        return (M / s, log_scale + jnp.log(s)), None

    s0 = jnp.linalg.norm(M)
    (_, log_norm), _ = jax.lax.scan(step, (M / s0, jnp.log(s0)), keys[1:])
    return math.exp(float(log_norm))
