"""Networks using blocks: VGG (§8.2).

A VGG block is ``num_convs`` times ``Conv(out_channels, 3x3, pad 1) -> relu``, then
``MaxPool(2x2, stride 2)``. A VGG network is a stack of blocks given by ``arch`` (pairs
``(num_convs, out_channels)``), then the same head as AlexNet: ``flatten -> Dense(4096) -> relu
-> Dropout(0.5) -> Dense(4096) -> relu -> Dropout(0.5) -> Dense(num_classes)``.

- :data:`VGG11_ARCH` -- VGG-11, ``((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))``.
- :data:`SMALL_VGG_ARCH` -- what the book trains on Fashion-MNIST: the same blocks with a quarter
  of the channels, ``((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))`` (the dense layers keep
  4096 units).

Each block halves height and width (224 -> 7 after five blocks), so the first dense layer takes
``out_channels * 7 * 7`` inputs at 224x224; the book's ``LazyLinear`` infers that, here
``input_size`` computes it. With ``k`` blocks the input must be at least ``2**k`` pixels (32 for
the five blocks above).

Weights follow the book's ``init_cnn`` (Xavier-uniform kernels; biases start at zero here).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx

from d2ljax.models.registry import register

__all__ = [
    "SMALL_VGG_ARCH",
    "VGG",
    "VGG11",
    "VGG11_ARCH",
    "VGGBlock",
    "small_vgg",
    "vgg_block",
    "vgg_feature_size",
]

_KERNEL_INIT = nnx.initializers.xavier_uniform()  # the book's d2l.init_cnn

VGG11_ARCH: tuple[tuple[int, int], ...] = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
SMALL_VGG_ARCH: tuple[tuple[int, int], ...] = tuple((n, c // 4) for n, c in VGG11_ARCH)


class VGGBlock(nnx.Module):
    """``num_convs`` x (3x3 pad-1 conv -> relu), then 2x2 stride-2 max pooling (§8.2.1)."""

    def __init__(self, num_convs: int, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        if num_convs < 1:
            raise ValueError(f"a VGG block needs at least one convolution, got {num_convs}")
        self.out_channels = out_channels
        self.convs = nnx.List(
            [
                nnx.Conv(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    (3, 3),
                    padding=1,
                    kernel_init=_KERNEL_INIT,
                    rngs=rngs,
                )
                for i in range(num_convs)
            ]
        )

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        for conv in self.convs:
            x_BHWC = nnx.relu(conv(x_BHWC))
        return nnx.max_pool(x_BHWC, (2, 2), strides=(2, 2))


def vgg_block(num_convs: int, out_channels: int, *, in_channels: int, rngs: nnx.Rngs) -> VGGBlock:
    """The book's ``vgg_block(num_convs, out_channels)``; NNX needs ``in_channels`` too."""
    return VGGBlock(num_convs, in_channels, out_channels, rngs=rngs)


def vgg_feature_size(input_size: int | tuple[int, int], num_blocks: int = 5) -> tuple[int, int]:
    """Height and width after ``num_blocks`` VGG blocks (each halves, rounding down)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    smallest = 2**num_blocks
    if min(h, w) < smallest:
        raise ValueError(
            f"a VGG with {num_blocks} blocks needs input images of at least {smallest}x{smallest}"
            f" pixels, got {h}x{w}; the book resizes Fashion-MNIST to 224x224"
        )
    return h // smallest, w // smallest


class VGG(nnx.Module):
    """VGG (§8.2.2): blocks from ``arch``, then the AlexNet-style dense head.

    Parameter counts at 224x224x1 with 10 classes: 128,806,154 for :data:`VGG11_ARCH`
    (:class:`VGG11`), 43,093,322 for :data:`SMALL_VGG_ARCH` (:func:`small_vgg`, the book's
    training model).

    Args:
      arch: ``(num_convs, out_channels)`` per block.
      num_classes: number of output logits.
      in_channels: input channels (1 for Fashion-MNIST).
      input_size: image side (or ``(H, W)``) that sizes the first dense layer; at least
        ``2 ** len(arch)``.
      dropout: dropout rate after each hidden dense layer.
      rngs: ``params`` stream for the weights, ``dropout`` stream for the masks.
    """

    def __init__(
        self,
        arch: Sequence[tuple[int, int]] = VGG11_ARCH,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int | tuple[int, int] = 224,
        dropout: float = 0.5,
        *,
        rngs: nnx.Rngs,
    ):
        arch = tuple((int(n), int(c)) for n, c in arch)
        if not arch:
            raise ValueError("arch must list at least one (num_convs, out_channels) block")
        h, w = vgg_feature_size(input_size, len(arch))
        self.arch = arch
        self.feature_hw = (h, w)
        blocks = []
        for num_convs, out_channels in arch:
            blocks.append(VGGBlock(num_convs, in_channels, out_channels, rngs=rngs))
            in_channels = out_channels
        self.blocks = nnx.List(blocks)

        def dense(din, dout):
            return nnx.Linear(din, dout, kernel_init=_KERNEL_INIT, rngs=rngs)

        self.fc1 = dense(in_channels * h * w, 4096)
        self.dropout1 = nnx.Dropout(dropout, rngs=rngs)
        self.fc2 = dense(4096, 4096)
        self.dropout2 = nnx.Dropout(dropout, rngs=rngs)
        self.fc3 = dense(4096, num_classes)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h_BHWC = x_BHWC
        for block in self.blocks:
            h_BHWC = block(h_BHWC)
        if h_BHWC.shape[1:3] != self.feature_hw:
            raise ValueError(
                f"VGG was built for {self.feature_hw} feature maps (input_size), but input "
                f"{x_BHWC.shape} gives {h_BHWC.shape[1:3]}; build it with the input's size"
            )
        h_BD = h_BHWC.reshape(h_BHWC.shape[0], -1)
        h_BD = self.dropout1(nnx.relu(self.fc1(h_BD)))
        h_BD = self.dropout2(nnx.relu(self.fc2(h_BD)))
        return self.fc3(h_BD)


@register("vgg11", description="§8.2 VGG-11 (input 224x224)")
class VGG11(VGG):
    """VGG-11 (§8.2.2), :class:`VGG` with :data:`VGG11_ARCH`; 128,806,154 parameters at
    224x224x1 with 10 classes."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int | tuple[int, int] = 224,
        dropout: float = 0.5,
        *,
        rngs: nnx.Rngs,
    ):
        super().__init__(VGG11_ARCH, num_classes, in_channels, input_size, dropout, rngs=rngs)


@register("vgg", description="§8.2.3 VGG-11 with 1/4 of the channels, as the book trains it")
def small_vgg(
    arch: Sequence[tuple[int, int]] = SMALL_VGG_ARCH,
    num_classes: int = 10,
    in_channels: int = 1,
    input_size: int | tuple[int, int] = 224,
    dropout: float = 0.5,
    *,
    rngs: nnx.Rngs,
) -> VGG:
    """The VGG the book trains on Fashion-MNIST (§8.2.3): VGG-11's blocks with channels divided by
    4 (:data:`SMALL_VGG_ARCH`); 43,093,322 parameters at 224x224x1 with 10 classes."""
    return VGG(arch, num_classes, in_channels, input_size, dropout, rngs=rngs)
