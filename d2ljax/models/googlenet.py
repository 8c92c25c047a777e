"""Multi-branch networks: GoogLeNet / Inception v1 (§8.4), trained by the book at 96x96.

An Inception block runs four branches on the same input and concatenates them along channels:

1. ``Conv(c1, 1x1) -> relu``
2. ``Conv(c2[0], 1x1) -> relu -> Conv(c2[1], 3x3, pad 1) -> relu``
3. ``Conv(c3[0], 1x1) -> relu -> Conv(c3[1], 5x5, pad 2) -> relu``
4. ``MaxPool(3x3, stride 1, pad 1) -> Conv(c4, 1x1) -> relu``

so it keeps height and width and emits ``c1 + c2[1] + c3[1] + c4`` channels. GoogLeNet stacks
five modules ``b1``..``b5`` and a dense layer:

- b1: ``Conv(64, 7x7, stride 2, pad 3) -> relu -> MaxPool(3, 2, pad 1)``
- b2: ``Conv(64, 1x1) -> relu -> Conv(192, 3x3, pad 1) -> relu -> MaxPool(3, 2, pad 1)``
- b3: two Inception blocks (-> 256 -> 480 channels), ``MaxPool(3, 2, pad 1)``
- b4: five Inception blocks (-> 512, 512, 512, 528, 832), ``MaxPool(3, 2, pad 1)``
- b5: two Inception blocks (-> 832, 1024), global average pooling
- ``Dense(num_classes)``

At 96x96 the maps are 24 (after b1), 12, 6, 3, then 1024 features. Every convolution and pooling
is padded, so any input size works. Weights follow the book's ``init_cnn`` (Xavier-uniform
kernels; biases start at zero here). Max pooling pads with ``-inf``, as PyTorch's does.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

__all__ = ["GOOGLENET_B3", "GOOGLENET_B4", "GOOGLENET_B5", "GoogLeNet", "Inception"]

_KERNEL_INIT = nnx.initializers.xavier_uniform()  # the book's d2l.init_cnn

# (c1, (c2_reduce, c2), (c3_reduce, c3), c4) of each Inception block, as in the book.
GOOGLENET_B3 = ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64))
GOOGLENET_B4 = (
    (192, (96, 208), (16, 48), 64),
    (160, (112, 224), (24, 64), 64),
    (128, (128, 256), (24, 64), 64),
    (112, (144, 288), (32, 64), 64),
    (256, (160, 320), (32, 128), 128),
)
GOOGLENET_B5 = ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128))


def _conv(cin: int, cout: int, k: int, rngs: nnx.Rngs, strides: int = 1, padding: int = 0):
    return nnx.Conv(
        cin, cout, (k, k), strides=strides, padding=padding, kernel_init=_KERNEL_INIT, rngs=rngs
    )


def _max_pool_3x3(x_BHWC: jax.Array, strides: int) -> jax.Array:
    return nnx.max_pool(x_BHWC, (3, 3), strides=(strides, strides), padding=((1, 1), (1, 1)))


class Inception(nnx.Module):
    """The Inception block (§8.4.1) with branch widths ``c1``, ``c2``, ``c3``, ``c4``.

    ``Inception(c1, c2, c3, c4)`` in the book; NNX needs ``in_channels`` too. Output channels:
    ``out_channels = c1 + c2[1] + c3[1] + c4``, in that order (branch 1 first).
    """

    def __init__(
        self,
        c1: int,
        c2: Sequence[int],
        c3: Sequence[int],
        c4: int,
        *,
        in_channels: int,
        rngs: nnx.Rngs,
    ):
        self.out_channels = c1 + c2[1] + c3[1] + c4
        self.b1_1 = _conv(in_channels, c1, 1, rngs)
        self.b2_1 = _conv(in_channels, c2[0], 1, rngs)
        self.b2_2 = _conv(c2[0], c2[1], 3, rngs, padding=1)
        self.b3_1 = _conv(in_channels, c3[0], 1, rngs)
        self.b3_2 = _conv(c3[0], c3[1], 5, rngs, padding=2)
        self.b4_2 = _conv(in_channels, c4, 1, rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        b1 = nnx.relu(self.b1_1(x_BHWC))
        b2 = nnx.relu(self.b2_2(nnx.relu(self.b2_1(x_BHWC))))
        b3 = nnx.relu(self.b3_2(nnx.relu(self.b3_1(x_BHWC))))
        b4 = nnx.relu(self.b4_2(_max_pool_3x3(x_BHWC, 1)))
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


def _inceptions(specs, in_channels: int, rngs: nnx.Rngs) -> tuple[nnx.List, int]:
    blocks = []
    for c1, c2, c3, c4 in specs:
        blocks.append(Inception(c1, c2, c3, c4, in_channels=in_channels, rngs=rngs))
        in_channels = blocks[-1].out_channels
    return nnx.List(blocks), in_channels


@register("googlenet", description="§8.4 GoogLeNet (input 96x96)")
class GoogLeNet(nnx.Module):
    """GoogLeNet (§8.4.2); 5,977,530 parameters with 1 input channel and 10 classes (any input
    size; the book trains at 96x96).

    Args:
      num_classes: number of output logits.
      in_channels: input channels (1 for Fashion-MNIST).
      rngs: ``params`` stream for the weights.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *, rngs: nnx.Rngs):
        self.b1_conv = _conv(in_channels, 64, 7, rngs, strides=2, padding=3)
        self.b2_conv1 = _conv(64, 64, 1, rngs)
        self.b2_conv2 = _conv(64, 192, 3, rngs, padding=1)
        self.b3, c = _inceptions(GOOGLENET_B3, 192, rngs)
        self.b4, c = _inceptions(GOOGLENET_B4, c, rngs)
        self.b5, c = _inceptions(GOOGLENET_B5, c, rngs)
        self.fc = nnx.Linear(c, num_classes, kernel_init=_KERNEL_INIT, rngs=rngs)

    def features(self, x_BHWC: jax.Array) -> jax.Array:
        """Modules b1..b5: ``[B, H, W, C] -> [B, 1024]`` (after global average pooling)."""
        h = _max_pool_3x3(nnx.relu(self.b1_conv(x_BHWC)), 2)
        h = nnx.relu(self.b2_conv2(nnx.relu(self.b2_conv1(h))))
        h = _max_pool_3x3(h, 2)
        for blocks in (self.b3, self.b4):
            for block in blocks:
                h = block(h)
            h = _max_pool_3x3(h, 2)
        for block in self.b5:
            h = block(h)
        return jnp.mean(h, axis=(1, 2))

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        return self.fc(self.features(x_BHWC))
