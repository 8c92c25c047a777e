"""Network in network (§8.3), as the book trains it on Fashion-MNIST resized to 224x224.

A NiN block is ``Conv(c, k, stride, pad) -> relu -> Conv(c, 1x1) -> relu -> Conv(c, 1x1) ->
relu``: the two 1x1 convolutions act as a per-pixel MLP across channels. The network has no dense
layers; its last block emits ``num_classes`` channels and global average pooling turns them into
logits:

``nin_block(96, 11, 4, 0) -> MaxPool(3, 2) -> nin_block(256, 5, 1, 2) -> MaxPool(3, 2) ->
nin_block(384, 3, 1, 1) -> MaxPool(3, 2) -> Dropout(0.5) -> nin_block(num_classes, 3, 1, 1) ->
global average pool``

At 224x224 the maps are 54, 26, 26, 12, 12, 5, 5, 1. The parameter count does not depend on the
input size, but the unpadded stride-4 11x11 convolution and three 3x3 stride-2 poolings need an
input of at least 67x67 (:data:`NIN_MIN_INPUT_SIZE`).

As in the book, the last block ends in a relu, so the logits are non-negative. Weights follow
the book's ``init_cnn`` (Xavier-uniform kernels; biases start at zero here).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

__all__ = ["NIN_MIN_INPUT_SIZE", "NiN", "NiNBlock", "nin_block"]

_KERNEL_INIT = nnx.initializers.xavier_uniform()  # the book's d2l.init_cnn

NIN_MIN_INPUT_SIZE = 67


class NiNBlock(nnx.Module):
    """``Conv(kernel_size, strides, padding) -> relu`` then two ``1x1 conv -> relu`` (§8.3.1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        strides: int,
        padding: int,
        *,
        rngs: nnx.Rngs,
    ):
        def conv(cin, k, s, p):
            return nnx.Conv(
                cin,
                out_channels,
                (k, k),
                strides=s,
                padding=p,
                kernel_init=_KERNEL_INIT,
                rngs=rngs,
            )

        self.out_channels = out_channels
        self.conv1 = conv(in_channels, kernel_size, strides, padding)
        self.conv2 = conv(out_channels, 1, 1, 0)
        self.conv3 = conv(out_channels, 1, 1, 0)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h = nnx.relu(self.conv1(x_BHWC))
        h = nnx.relu(self.conv2(h))
        return nnx.relu(self.conv3(h))


def nin_block(
    out_channels: int,
    kernel_size: int,
    strides: int,
    padding: int,
    *,
    in_channels: int,
    rngs: nnx.Rngs,
) -> NiNBlock:
    """The book's ``nin_block(out_channels, kernel_size, strides, padding)``; NNX needs
    ``in_channels`` too."""
    return NiNBlock(in_channels, out_channels, kernel_size, strides, padding, rngs=rngs)


@register("nin", description="§8.3 Network in Network (input 224x224)")
class NiN(nnx.Module):
    """NiN (§8.3.2); 1,992,166 parameters with 1 input channel and 10 classes (at any input size
    of at least 67x67; the book trains at 224x224).

    Args:
      num_classes: number of output logits (the channels of the last block).
      in_channels: input channels (1 for Fashion-MNIST).
      dropout: dropout rate before the last block.
      rngs: ``params`` stream for the weights, ``dropout`` stream for the mask.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        dropout: float = 0.5,
        *,
        rngs: nnx.Rngs,
    ):
        self.block1 = NiNBlock(in_channels, 96, 11, 4, 0, rngs=rngs)
        self.block2 = NiNBlock(96, 256, 5, 1, 2, rngs=rngs)
        self.block3 = NiNBlock(256, 384, 3, 1, 1, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.block4 = NiNBlock(384, num_classes, 3, 1, 1, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        if min(x_BHWC.shape[1:3]) < NIN_MIN_INPUT_SIZE:
            raise ValueError(
                f"NiN needs input images of at least {NIN_MIN_INPUT_SIZE}x{NIN_MIN_INPUT_SIZE} "
                f"pixels, got {x_BHWC.shape[1]}x{x_BHWC.shape[2]}; the book resizes "
                "Fashion-MNIST to 224x224"
            )
        pool = dict(window_shape=(3, 3), strides=(2, 2))
        h = nnx.max_pool(self.block1(x_BHWC), **pool)
        h = nnx.max_pool(self.block2(h), **pool)
        h = nnx.max_pool(self.block3(h), **pool)
        h = self.block4(self.dropout(h))
        return jnp.mean(h, axis=(1, 2))
