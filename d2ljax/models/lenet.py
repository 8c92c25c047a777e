"""LeNet-5 (§7.6), the first convolutional network of the course, concise and from scratch.

- :class:`LeNet` -- the book's network for ``[B, 28, 28, 1]`` Fashion-MNIST images::

      conv 6@5x5 pad 2 -> sigmoid -> avgpool 2/2 -> conv 16@5x5 -> sigmoid -> avgpool 2/2
      -> flatten (400) -> dense 120 -> sigmoid -> dense 84 -> sigmoid -> dense num_classes

  with Xavier-uniform weights and zero biases (the book's ``init_cnn``); 61,706 parameters.
- :class:`LeNetScratch` -- the same network on the scratch :func:`~d2ljax.nn.conv.conv2d` and
  :func:`~d2ljax.nn.conv.avg_pool2d`, with the same parameter tree, so weights copy across with
  ``nnx.update(scratch, nnx.state(lenet, nnx.Param))``.
- :func:`~d2ljax.models.summary.layer_shapes` (re-exported here) -- each layer's output shape,
  as the book prints them, through :meth:`LeNet.named_layers`.

How the convolutions are computed is an implementation choice, ``conv_impl``: it changes neither
the network, nor its parameters (``nnx.Conv``'s ``kernel [5, 5, in, out]`` and ``bias [out]``
whatever computes them), nor its outputs and gradients (tested equal, jit and no jit):

- ``"auto"`` (default) -- ``"blocked"`` when JAX's default backend is the CPU, else ``"xla"``.
- ``"blocked"`` -- ``__call__`` runs the whole network at once in the blocked, batch-minor CPU
  layout of :mod:`d2ljax.nn.blocked` (:func:`forward_in_blocked_cpu_layout`): the fastest on a
  CPU. Layer by layer (:meth:`LeNet.named_layers`, NHWC) its convolutions compute with
  ``"toeplitz"``.
- ``"toeplitz"`` -- :func:`~d2ljax.nn.conv.conv2d_toeplitz`, dense products with the kernel laid
  out as a banded matrix, layer by layer in NHWC (XLA's convolution is slow on a CPU for these
  thin layers).
- ``"xla"`` -- ``nnx.Conv`` (``lax.conv_general_dilated``), the usual choice on GPU/TPU, and the
  one to use for forward-mode differentiation (``"toeplitz"`` has a custom VJP).
- ``"scratch"`` -- the scratch im2col :func:`~d2ljax.nn.conv.conv2d`.

``pool_impl`` likewise: ``"nnx"`` (``nnx.avg_pool``, default), ``"reshape"`` (a reshape and a
mean over each 2x2 block), ``"scratch"`` (:func:`~d2ljax.nn.conv.avg_pool2d`).

Training-step times of every choice, and the command that measures them
(``python benchmarks/lenet_step.py``), are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.models.summary import layer_shapes
from d2ljax.nn.blocked import block_avg_pool2, block_conv, reblock, to_blocks
from d2ljax.nn.conv import avg_pool2d, conv2d, conv2d_toeplitz

__all__ = ["LeNet", "LeNetScratch", "forward_in_blocked_cpu_layout", "layer_shapes"]

INPUT_SHAPE = (28, 28, 1)
CONV_IMPLS = ("auto", "blocked", "toeplitz", "xla", "scratch")
POOL_IMPLS = ("nnx", "reshape", "scratch")

xavier_uniform = nnx.initializers.xavier_uniform()


@register("lenet", description="§7.6 LeNet-5: sigmoid, average pooling, Xavier init")
class LeNet(nnx.Module):
    """LeNet-5 as in the book (§7.6), for ``[B, 28, 28, 1]`` float images; returns logits.

    Args:
      num_classes: outputs of the last dense layer.
      conv_impl: how the convolutions are computed (same network, parameters and outputs; see
        the module docstring): ``"auto"`` (default: ``"blocked"`` on CPU, else ``"xla"``),
        ``"blocked"``, ``"toeplitz"``, ``"xla"`` (``nnx.Conv``) or ``"scratch"``.
      pool_impl: ``"nnx"`` (default), ``"reshape"`` or ``"scratch"`` (``"blocked"`` pools
        inside its blocks and ignores it).
      rngs: parameter stream.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        conv_impl: str = "auto",
        pool_impl: str = "nnx",
        rngs: nnx.Rngs,
    ):
        if pool_impl not in POOL_IMPLS:
            raise ValueError(f"pool_impl must be one of {POOL_IMPLS}, got {pool_impl!r}")
        self.conv_impl = resolve_conv_impl(conv_impl)
        self.pool_impl = pool_impl
        self.conv1 = conv5x5(1, 6, 2, self.conv_impl, rngs)
        self.conv2 = conv5x5(6, 16, 0, self.conv_impl, rngs)
        self.dense1 = nnx.Linear(16 * 5 * 5, 120, kernel_init=xavier_uniform, rngs=rngs)
        self.dense2 = nnx.Linear(120, 84, kernel_init=xavier_uniform, rngs=rngs)
        self.dense3 = nnx.Linear(84, num_classes, kernel_init=xavier_uniform, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        """The book's network, layer by layer; ``conv_impl="blocked"`` computes the same network
        in the blocked CPU layout instead (:func:`forward_in_blocked_cpu_layout`)."""
        self.check_input(x_BHWC)
        if self.conv_impl == "blocked":
            return forward_in_blocked_cpu_layout(self, x_BHWC)
        h = jax.nn.sigmoid(self.conv1(x_BHWC))  # conv 6@5x5, padding 2
        h = self.pool(h)  # average pooling 2x2, stride 2
        h = jax.nn.sigmoid(self.conv2(h))  # conv 16@5x5
        h = self.pool(h)
        h = h.reshape(h.shape[0], -1)  # flatten
        h = jax.nn.sigmoid(self.dense1(h))  # dense 120
        h = jax.nn.sigmoid(self.dense2(h))  # dense 84
        return self.dense3(h)  # dense num_classes

    def pool(self, x_BHWC: jax.Array) -> jax.Array:
        """2x2 average pooling, stride 2, computed by ``pool_impl``."""
        if self.pool_impl == "nnx":
            return nnx.avg_pool(x_BHWC, (2, 2), (2, 2))
        if self.pool_impl == "scratch":
            return avg_pool2d(x_BHWC, 2)
        B, H, W, C = x_BHWC.shape
        return x_BHWC.reshape(B, H // 2, 2, W // 2, 2, C).mean(axis=(2, 4))

    def named_layers(self) -> list[tuple[str, Callable[[jax.Array], jax.Array]]]:
        """The network of :meth:`__call__` as ``(name, layer)`` pairs in order, activations and
        pooling included (what :func:`layer_shapes` prints)."""

        def flatten(x):
            return x.reshape(x.shape[0], -1)

        return [
            ("conv1", self.conv1),
            ("sigmoid1", jax.nn.sigmoid),
            ("pool1", self.pool),
            ("conv2", self.conv2),
            ("sigmoid2", jax.nn.sigmoid),
            ("pool2", self.pool),
            ("flatten", flatten),
            ("dense1", self.dense1),
            ("sigmoid3", jax.nn.sigmoid),
            ("dense2", self.dense2),
            ("sigmoid4", jax.nn.sigmoid),
            ("dense3", self.dense3),
        ]

    def check_input(self, x_BHWC: jax.Array) -> None:
        """Raise a ``ValueError`` unless ``x_BHWC`` is ``[B, 28, 28, 1]``."""
        shape = tuple(jnp.shape(x_BHWC))
        if len(shape) != 4 or shape[1:] != INPUT_SHAPE:
            raise ValueError(
                f"{type(self).__name__} expects images of shape [B, 28, 28, 1] (NHWC, e.g. "
                f"Fashion-MNIST scaled to float), got {list(shape)}"
            )


@register("lenet_scratch", description="§7.6 LeNet-5 on the scratch conv2d and avg_pool2d")
class LeNetScratch(LeNet):
    """:class:`LeNet` computed with the scratch im2col :func:`~d2ljax.nn.conv.conv2d` and
    :func:`~d2ljax.nn.conv.avg_pool2d`; same parameter tree and initialization as
    :class:`LeNet`.

    Args:
      num_classes: outputs of the last dense layer.
      rngs: parameter stream.
    """

    def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs):
        super().__init__(num_classes, conv_impl="scratch", pool_impl="scratch", rngs=rngs)


# ---------------------------------------------------------------- how the convolutions are computed


def forward_in_blocked_cpu_layout(model: LeNet, x_BHWC: jax.Array) -> jax.Array:
    """:class:`LeNet`'s forward pass in the blocked, batch-minor CPU layout of
    :mod:`d2ljax.nn.blocked`: the same network, the same parameters, the same logits (and
    gradients) as :meth:`LeNet.__call__` layer by layer, computed faster on a CPU.

    Activations are ``[(2, 2, C), Hb, Wb, B]`` (2x2 pixel blocks, batch last); the pooling
    happens inside the blocks, and the dense layers multiply from the left (batch last).
    """
    h = to_blocks(x_BHWC, 2, padding=2)  # [(2, 2, 1), 16, 16, B]
    h = block_conv(h, model.conv1.kernel[...], model.conv1.bias[...], 2)  # [(2, 2, 6), 14, 14, B]
    h = block_avg_pool2(jax.nn.sigmoid(h), 2)  # [6, 14, 14, B]
    h = reblock(h, 2)  # [(2, 2, 6), 7, 7, B]: 14x14 in 2x2 blocks
    h = block_conv(h, model.conv2.kernel[...], model.conv2.bias[...], 2)  # [(2, 2, 16), 5, 5, B]
    h = block_avg_pool2(jax.nn.sigmoid(h), 2)  # [16, 5, 5, B]
    # Flattened (c, h, w) here; dense1's rows are in the NHWC flatten order (h, w, c). The
    # kernel is laid out [120, 400] so that XLA:CPU computes its input gradient with Eigen
    # while the weight gradient runs in YNNPACK, and the two overlap (with [400, 120] both run
    # in YNNPACK one after the other; the figures are in benchmarks/RESULTS.md).
    w1 = model.dense1.kernel[...].reshape(5, 5, 16, -1).transpose(3, 2, 0, 1).reshape(-1, 400)
    h = jax.nn.sigmoid(w1 @ h.reshape(400, -1) + model.dense1.bias[...][:, None])
    h = jax.nn.sigmoid(model.dense2.kernel[...].T @ h + model.dense2.bias[...][:, None])
    return (model.dense3.kernel[...].T @ h + model.dense3.bias[...][:, None]).T


class ConvLayer(nnx.Module):
    """A stride-1 2-D convolution with ``nnx.Conv``'s parameters, computed by ``impl``
    (``"toeplitz"`` or ``"scratch"``; see the module docstring).

    Args:
      in_features, out_features: channels.
      kernel_size: square kernel side.
      padding: zero padding on every side.
      impl: ``"toeplitz"`` or ``"scratch"``.
      rngs: the kernel is Xavier-uniform from ``rngs.params()``; the bias starts at zero.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int,
        *,
        padding: int = 0,
        impl: str = "toeplitz",
        rngs: nnx.Rngs,
    ):
        if impl not in ("toeplitz", "scratch"):
            raise ValueError(f"ConvLayer impl must be 'toeplitz' or 'scratch', got {impl!r}")
        shape = (kernel_size, kernel_size, in_features, out_features)
        self.kernel = nnx.Param(xavier_uniform(rngs.params(), shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros((out_features,), jnp.float32))
        self.padding = padding
        self.impl = impl

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        conv = conv2d_toeplitz if self.impl == "toeplitz" else conv2d
        return conv(x_BHWC, self.kernel[...], self.bias[...], padding=self.padding)


def resolve_conv_impl(impl: str) -> str:
    """``"auto"`` -> ``"blocked"`` on the CPU backend, ``"xla"`` elsewhere; checks the name."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "blocked" if jax.default_backend() == "cpu" else "xla"
    return impl


def conv5x5(in_features, out_features, padding, impl, rngs):
    """A 5x5 stride-1 convolution with ``nnx.Conv``'s parameters, computed by ``impl``
    (``"blocked"`` layers compute with ``"toeplitz"`` when called on their own)."""
    impl = resolve_conv_impl(impl)
    if impl == "blocked":
        impl = "toeplitz"
    if impl == "xla":
        return nnx.Conv(
            in_features,
            out_features,
            (5, 5),
            padding=padding,
            kernel_init=xavier_uniform,
            rngs=rngs,
        )
    return ConvLayer(in_features, out_features, 5, padding=padding, impl=impl, rngs=rngs)
