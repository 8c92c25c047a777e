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

The convolutions hold ``nnx.Conv``'s parameters (``kernel [5, 5, in, out]``, ``bias [out]``)
whatever computes them. ``conv_impl`` picks the computation; all give the same numbers:

- ``"auto"`` (default) -- ``"blocked"`` when JAX's default backend is the CPU, else ``"xla"``.
- ``"blocked"`` -- the whole network in the batch-minor blocked layout of
  :mod:`d2ljax.nn.blocked` (blocks of 2x2 pixels; pooling inside blocks):
  the fastest on CPU, a training step about 30 % faster than ``"toeplitz"``. Only ``__call__``
  uses it; :meth:`LeNet.named_layers` (layer by layer, NHWC) computes with ``"toeplitz"``.
- ``"toeplitz"`` -- :func:`~d2ljax.nn.conv.conv2d_toeplitz`, dense products with the
  kernel laid out as a banded matrix, layer by layer in NHWC: XLA's convolution is slow on CPU
  for these thin layers (measured: a training step about 2.4x faster than ``"xla"``; see the
  numbers in :class:`LeNet`'s docstring).
- ``"xla"`` -- ``nnx.Conv`` (``lax.conv_general_dilated``), the usual choice on GPU/TPU, and the
  one to use for forward-mode differentiation (``"toeplitz"`` has a custom VJP).
- ``"scratch"`` -- the scratch im2col :func:`~d2ljax.nn.conv.conv2d`.

``pool_impl`` likewise: ``"nnx"`` (``nnx.avg_pool``, default), ``"reshape"`` (a reshape and a
mean over each 2x2 block; as fast), ``"scratch"`` (:func:`~d2ljax.nn.conv.avg_pool2d`).
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

__all__ = ["LeNet", "LeNetScratch", "layer_shapes"]

INPUT_SHAPE = (28, 28, 1)
CONV_IMPLS = ("auto", "blocked", "toeplitz", "xla", "scratch")
POOL_IMPLS = ("nnx", "reshape", "scratch")

xavier_uniform = nnx.initializers.xavier_uniform()


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


def _avg_pool_2x2(x_BHWC: jax.Array, impl: str) -> jax.Array:
    if impl == "nnx":
        return nnx.avg_pool(x_BHWC, (2, 2), (2, 2))
    if impl == "scratch":
        return avg_pool2d(x_BHWC, 2)
    B, H, W, C = x_BHWC.shape
    return x_BHWC.reshape(B, H // 2, 2, W // 2, 2, C).mean(axis=(2, 4))


@register("lenet", description="§7.6 LeNet-5: sigmoid, average pooling, Xavier init")
class LeNet(nnx.Module):
    """LeNet-5 as in the book (§7.6), for ``[B, 28, 28, 1]`` float images; returns logits.

    Args:
      num_classes: outputs of the last dense layer.
      conv_impl: ``"auto"`` (default: ``"blocked"`` on CPU, else ``"xla"``), ``"blocked"``,
        ``"toeplitz"``, ``"xla"`` (``nnx.Conv``) or ``"scratch"``.
      pool_impl: ``"nnx"`` (default), ``"reshape"`` or ``"scratch"`` (``"blocked"`` pools
        inside its blocks and ignores it).
      rngs: parameter stream.

    Training-step time (forward, backward, SGD update; ``make_steps`` + ``TrainState``, batch 128,
    2-core AMD EPYC CPU with other jobs running; fastest of 15 interleaved runs of 20 steps, one
    call per step; the ``blocked`` row from ``benchmarks/lenet_step.py --steps-per-call 1``, which
    in ``fit``'s scanned calls of 16 steps is 3.6-3.9 ms):

    ======================================== ========== ==================
    conv / pool                               ms/step    epoch (469 steps)
    ======================================== ========== ==================
    ``blocked`` (:mod:`d2ljax.nn.blocked`)    4.0-4.5    1.9-2.1 s
    ``toeplitz`` / ``nnx`` or ``reshape``     5.5-6.0    2.6-2.8 s
    ``xla`` (``nnx.Conv``) / either           13.4-13.8  6.3-6.5 s
    ``scratch`` (patches + einsum) / ``nnx``  10.5-12.5  4.9-5.9 s
    ``scratch`` / ``scratch``                 19-29      9-14 s
    ``lax.conv_general_dilated_patches`` +
    matmul / reshape (not offered)            ~46        ~22 s
    ======================================== ========== ==================
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

    def check_input(self, x_BHWC: jax.Array) -> None:
        """Raise a ``ValueError`` unless ``x_BHWC`` is ``[B, 28, 28, 1]``."""
        shape = tuple(jnp.shape(x_BHWC))
        if len(shape) != 4 or shape[1:] != INPUT_SHAPE:
            raise ValueError(
                f"{type(self).__name__} expects images of shape [B, 28, 28, 1] (NHWC, e.g. "
                f"Fashion-MNIST scaled to float), got {list(shape)}"
            )

    def named_layers(self) -> list[tuple[str, Callable[[jax.Array], jax.Array]]]:
        """The network as ``(name, layer)`` pairs in order, activations and pooling included."""

        def pool(x):
            return _avg_pool_2x2(x, self.pool_impl)

        def flatten(x):
            return x.reshape(x.shape[0], -1)

        return [
            ("conv1", self.conv1),
            ("sigmoid1", jax.nn.sigmoid),
            ("pool1", pool),
            ("conv2", self.conv2),
            ("sigmoid2", jax.nn.sigmoid),
            ("pool2", pool),
            ("flatten", flatten),
            ("dense1", self.dense1),
            ("sigmoid3", jax.nn.sigmoid),
            ("dense2", self.dense2),
            ("sigmoid4", jax.nn.sigmoid),
            ("dense3", self.dense3),
        ]

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        self.check_input(x_BHWC)
        if self.conv_impl == "blocked":
            return self._blocked(x_BHWC)
        h = x_BHWC
        for _, layer in self.named_layers():
            h = layer(h)
        return h

    def _blocked(self, x_BHWC: jax.Array) -> jax.Array:
        """The same network in the blocked, batch-minor layout of :mod:`d2ljax.nn.blocked`."""
        h = to_blocks(x_BHWC, 2, padding=2)  # [(2, 2, 1), 16, 16, B]
        h = block_conv(h, self.conv1.kernel[...], self.conv1.bias[...], 2)  # [(2, 2, 6), 14, 14, B]
        h = block_avg_pool2(jax.nn.sigmoid(h), 2)  # [6, 14, 14, B]
        h = reblock(h, 2)  # [(2, 2, 6), 7, 7, B]: 14x14 in 2x2 blocks
        h = block_conv(h, self.conv2.kernel[...], self.conv2.bias[...], 2)  # [(2, 2, 16), 5, 5, B]
        h = block_avg_pool2(jax.nn.sigmoid(h), 2)  # [16, 5, 5, B]
        # Flattened (c, h, w) here; dense1's rows are in the NHWC flatten order (h, w, c). The
        # kernel is laid out [120, 400] so that XLA:CPU computes its input gradient with Eigen
        # while the weight gradient runs in YNNPACK: the two overlap (0.13-0.3 ms/step faster
        # than the [400, 120] layout, where both run in YNNPACK one after the other).
        w1 = self.dense1.kernel[...].reshape(5, 5, 16, -1).transpose(3, 2, 0, 1).reshape(-1, 400)
        h = jax.nn.sigmoid(w1 @ h.reshape(400, -1) + self.dense1.bias[...][:, None])
        h = jax.nn.sigmoid(self.dense2.kernel[...].T @ h + self.dense2.bias[...][:, None])
        return (self.dense3.kernel[...].T @ h + self.dense3.bias[...][:, None]).T


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
