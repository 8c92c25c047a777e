"""Designing convolution network architectures: AnyNet and RegNetX (§8.8), trained at 96x96.

- :class:`AnyNet` -- stem ``Conv(stem_channels, 3x3, stride 2, pad 1) -> BN -> relu``; one stage
  per ``(depth, num_channels, groups, bot_mul)`` in ``arch``, each ``depth``
  :class:`~d2ljax.models.resnet.ResNeXtBlock` s of which the first uses ``use_1x1conv=True,
  strides=2`` (so every stage halves height and width); head: global average pooling and
  ``Dense(num_classes)``.
- :class:`RegNetX32` -- the book's 32-layer RegNetX: stem 32 channels, stages of depth 4 and 6 with
  32 and 80 channels, group width 16 (``groups=16`` is channels per group, as in the book's
  ``ResNeXtBlock``), no bottleneck (``bot_mul=1``).

At 96x96 the maps are 48 (stem), 24, 12, then 80 features. All convolutions are padded, so any
input size works. Batch norm is ``nnx.BatchNorm(momentum=0.9, epsilon=1e-5)``; weights follow the
book's ``init_cnn`` (Xavier-uniform kernels; biases start at zero here).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.models.resnet import ResNeXtBlock

__all__ = ["REGNETX32_ARCH", "AnyNet", "RegNetX32"]

_KERNEL_INIT = nnx.initializers.xavier_uniform()  # the book's d2l.init_cnn

# (depth, num_channels, groups, bot_mul) per stage.
REGNETX32_ARCH: tuple[tuple[int, int, int, float], ...] = ((4, 32, 16, 1), (6, 80, 16, 1))


class AnyNet(nnx.Module):
    """The AnyNet design space (§8.8.1): stem, stages of ResNeXt blocks, head.

    Args:
      arch: ``(depth, num_channels, groups, bot_mul)`` per stage; ``groups`` is the group width.
      stem_channels: output channels of the stem.
      num_classes: number of output logits.
      in_channels: input channels (1 for Fashion-MNIST).
      rngs: ``params`` stream for the weights.
    """

    def __init__(
        self,
        arch: Sequence[tuple[int, int, int, float]],
        stem_channels: int,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        rngs: nnx.Rngs,
    ):
        self.arch = tuple((int(d), int(c), int(g), float(b)) for d, c, g, b in arch)
        self.stem_conv = nnx.Conv(
            in_channels,
            stem_channels,
            (3, 3),
            strides=2,
            padding=1,
            kernel_init=_KERNEL_INIT,
            rngs=rngs,
        )
        self.stem_bn = nnx.BatchNorm(stem_channels, momentum=0.9, epsilon=1e-5, rngs=rngs)
        c = stem_channels
        stages = []
        for depth, num_channels, groups, bot_mul in self.arch:
            blocks = []
            for i in range(depth):
                blocks.append(
                    ResNeXtBlock(
                        num_channels,
                        groups,
                        bot_mul,
                        use_1x1conv=i == 0,
                        strides=2 if i == 0 else 1,
                        in_channels=c,
                        rngs=rngs,
                    )
                )
                c = num_channels
            stages.append(nnx.List(blocks))
        self.stages = nnx.List(stages)
        self.fc = nnx.Linear(c, num_classes, kernel_init=_KERNEL_INIT, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h = nnx.relu(self.stem_bn(self.stem_conv(x_BHWC)))
        for stage in self.stages:
            for block in stage:
                h = block(h)
        return self.fc(jnp.mean(h, axis=(1, 2)))


@register("regnetx32", description="§8.8 RegNetX-32 (input 96x96)")
class RegNetX32(AnyNet):
    """The 32-layer RegNetX of §8.8.3, :class:`AnyNet` with :data:`REGNETX32_ARCH` and a 32-channel
    stem; 179,290 parameters with 1 input channel and 10 classes (any input size; the book trains
    at 96x96)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *, rngs: nnx.Rngs):
        super().__init__(REGNETX32_ARCH, 32, num_classes, in_channels, rngs=rngs)
