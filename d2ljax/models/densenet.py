"""Densely connected networks: DenseNet (§8.7), trained by the book at 96x96.

- :func:`conv_block` -- ``BN -> relu -> Conv(num_channels, 3x3, pad 1)`` (pre-activation order).
- :class:`DenseBlock` -- ``num_convs`` conv blocks, each one's output concatenated to its input
  along channels, so ``in_channels + num_convs * num_channels`` channels come out.
- :func:`transition_block` -- ``BN -> relu -> Conv(num_channels, 1x1) -> AvgPool(2x2, stride
  2)``: shrinks channels (the network halves them) and halves height and width.
- :class:`DenseNet` -- stem ``Conv(64, 7x7, stride 2, pad 3) -> BN -> relu -> MaxPool(3, 2, pad
  1)``, dense blocks (``arch``, growth rate 32) with a transition block between consecutive ones,
  then ``BN -> relu -> global average pool -> Dense(num_classes)``. With the defaults the channels
  go 64 -> 192 -> 96 -> 224 -> 112 -> 240 -> 120 -> 248.

Batch norm is ``nnx.BatchNorm(momentum=0.9, epsilon=1e-5)`` (PyTorch's defaults in Flax's
momentum convention). Weights follow the book's ``init_cnn`` (Xavier-uniform kernels; biases
start at zero here). The unpadded transition poolings need the map to be at least 2x2 before
each: with the default three transitions the input must be at least 29x29
(:func:`densenet_min_input_size`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

__all__ = [
    "ConvBlock",
    "DenseBlock",
    "DenseNet",
    "TransitionBlock",
    "conv_block",
    "densenet_min_input_size",
    "transition_block",
]

_KERNEL_INIT = nnx.initializers.xavier_uniform()  # the book's d2l.init_cnn


def _bn(c: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(c, momentum=0.9, epsilon=1e-5, rngs=rngs)


class ConvBlock(nnx.Module):
    """``BN -> relu -> Conv(out_channels, 3x3, pad 1)`` (§8.7.2)."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.bn = _bn(in_channels, rngs)
        self.conv = nnx.Conv(
            in_channels, out_channels, (3, 3), padding=1, kernel_init=_KERNEL_INIT, rngs=rngs
        )

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        return self.conv(nnx.relu(self.bn(x_BHWC)))


def conv_block(num_channels: int, *, in_channels: int, rngs: nnx.Rngs) -> ConvBlock:
    """The book's ``conv_block(num_channels)``; NNX needs ``in_channels`` too."""
    return ConvBlock(in_channels, num_channels, rngs=rngs)


class DenseBlock(nnx.Module):
    """``num_convs`` :class:`ConvBlock` s with dense connections (§8.7.2).

    ``DenseBlock(num_convs, num_channels)`` in the book; ``in_channels`` is the input's channel
    count. Block ``i`` sees ``in_channels + i * num_channels`` channels; the output has
    ``out_channels = in_channels + num_convs * num_channels`` (the input first).
    """

    def __init__(self, num_convs: int, num_channels: int, *, in_channels: int, rngs: nnx.Rngs):
        self.out_channels = in_channels + num_convs * num_channels
        self.blocks = nnx.List(
            [
                ConvBlock(in_channels + i * num_channels, num_channels, rngs=rngs)
                for i in range(num_convs)
            ]
        )

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        for block in self.blocks:
            x_BHWC = jnp.concatenate([x_BHWC, block(x_BHWC)], axis=-1)
        return x_BHWC


class TransitionBlock(nnx.Module):
    """``BN -> relu -> Conv(out_channels, 1x1) -> AvgPool(2x2, stride 2)`` (§8.7.3)."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.bn = _bn(in_channels, rngs)
        self.conv = nnx.Conv(in_channels, out_channels, (1, 1), kernel_init=_KERNEL_INIT, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        if min(x_BHWC.shape[1:3]) < 2:
            raise ValueError(
                f"a DenseNet transition block needs at least a 2x2 map, got {x_BHWC.shape}; "
                "use larger input images (the default DenseNet needs "
                f"{densenet_min_input_size()} pixels a side or more)"
            )
        h = self.conv(nnx.relu(self.bn(x_BHWC)))
        return nnx.avg_pool(h, (2, 2), strides=(2, 2))


def transition_block(num_channels: int, *, in_channels: int, rngs: nnx.Rngs) -> TransitionBlock:
    """The book's ``transition_block(num_channels)``; NNX needs ``in_channels`` too."""
    return TransitionBlock(in_channels, num_channels, rngs=rngs)


def densenet_min_input_size(num_transitions: int = 3) -> int:
    """Smallest input side for which the stem and ``num_transitions`` transition blocks leave at
    least a 1x1 map (29 for the default DenseNet)."""
    # The stem maps n to ceil(ceil(n / 2) / 2); each transition needs >= 2 and halves (floor).
    need = 2**num_transitions  # side needed after the stem
    return 4 * (need - 1) + 1


@register("densenet", description="§8.7 DenseNet (input 96x96)")
class DenseNet(nnx.Module):
    """DenseNet (§8.7.4); 758,226 parameters with the defaults, 1 input channel and 10 classes
    (any input size of at least 29x29; the book trains at 96x96).

    Args:
      num_channels: channels of the stem.
      growth_rate: channels each conv block adds.
      arch: number of conv blocks in each dense block.
      num_classes: number of output logits.
      in_channels: input channels (1 for Fashion-MNIST).
      rngs: ``params`` stream for the weights.
    """

    def __init__(
        self,
        num_channels: int = 64,
        growth_rate: int = 32,
        arch: Sequence[int] = (4, 4, 4, 4),
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        rngs: nnx.Rngs,
    ):
        self.arch = tuple(int(n) for n in arch)
        self.stem_conv = nnx.Conv(
            in_channels,
            num_channels,
            (7, 7),
            strides=2,
            padding=3,
            kernel_init=_KERNEL_INIT,
            rngs=rngs,
        )
        self.stem_bn = _bn(num_channels, rngs)
        blocks = []
        for i, num_convs in enumerate(self.arch):
            dense = DenseBlock(num_convs, growth_rate, in_channels=num_channels, rngs=rngs)
            blocks.append(dense)
            num_channels = dense.out_channels
            if i != len(self.arch) - 1:
                blocks.append(TransitionBlock(num_channels, num_channels // 2, rngs=rngs))
                num_channels //= 2
        self.blocks = nnx.List(blocks)
        self.final_bn = _bn(num_channels, rngs)
        self.fc = nnx.Linear(num_channels, num_classes, kernel_init=_KERNEL_INIT, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h = nnx.relu(self.stem_bn(self.stem_conv(x_BHWC)))
        h = nnx.max_pool(h, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for block in self.blocks:
            h = block(h)
        h = nnx.relu(self.final_bn(h))
        return self.fc(jnp.mean(h, axis=(1, 2)))
