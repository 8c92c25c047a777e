"""Residual networks: ResNet and ResNeXt (§8.6), trained by the book at 96x96.

- :class:`Residual` -- the residual block: ``Conv(3x3, pad 1, stride) -> BN -> relu ->
  Conv(3x3, pad 1) -> BN``, plus the input (through a ``1x1, stride`` convolution when
  ``use_1x1conv``), then relu.
- :class:`ResNet` -- stem ``Conv(64, 7x7, stride 2, pad 3) -> BN -> relu -> MaxPool(3, 2, pad 1)``;
  one stage per ``(num_residuals, num_channels)`` in ``arch`` (the first block of every stage but
  the first halves height and width and changes channels through a 1x1 convolution); then global
  average pooling and ``Dense(num_classes)``. :class:`ResNet18` is
  ``arch=((2, 64), (2, 128), (2, 256), (2, 512))``.
- :class:`ResNeXtBlock` -- the bottleneck block with a grouped 3x3 convolution (§8.6.5), and
  :class:`ResNeXt`, a small network made of them (not in the book, which defines the block here
  and builds networks from it in §8.8's :class:`~d2ljax.models.regnet.AnyNet`).

Batch norm is ``nnx.BatchNorm(momentum=0.9, epsilon=1e-5)`` (PyTorch's defaults in Flax's
momentum convention); convolutions keep their biases, as in the book. Weights follow the book's
``init_cnn`` (Xavier-uniform kernels; biases start at zero here). All convolutions and poolings
are padded, so any input size works.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

__all__ = [
    "RESNET18_ARCH",
    "RESNEXT_ARCH",
    "ResNeXt",
    "ResNeXtBlock",
    "ResNet",
    "ResNet18",
    "ResNet18Small",
    "Residual",
]

_KERNEL_INIT = nnx.initializers.xavier_uniform()  # the book's d2l.init_cnn

RESNET18_ARCH: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (2, 256), (2, 512))
RESNEXT_ARCH: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (2, 256), (2, 512))


def _conv(
    cin: int,
    cout: int,
    k: int,
    rngs: nnx.Rngs,
    strides: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> nnx.Conv:
    return nnx.Conv(
        cin,
        cout,
        (k, k),
        strides=strides,
        padding=padding,
        feature_group_count=groups,
        kernel_init=_KERNEL_INIT,
        rngs=rngs,
    )


def _bn(c: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(c, momentum=0.9, epsilon=1e-5, rngs=rngs)


class Residual(nnx.Module):
    """The residual block of ResNet (§8.6.2).

    ``Residual(num_channels, use_1x1conv, strides)`` as in the book; ``in_channels`` (default
    ``num_channels``) is the input's channel count, which NNX needs up front. Without the 1x1
    convolution the input is added unchanged, so it must already have ``num_channels`` channels
    and ``strides`` must be 1. Output: ``[B, ceil(H / strides), ceil(W / strides),
    num_channels]``.
    """

    def __init__(
        self,
        num_channels: int,
        use_1x1conv: bool = False,
        strides: int = 1,
        *,
        in_channels: int | None = None,
        rngs: nnx.Rngs,
    ):
        in_channels = num_channels if in_channels is None else in_channels
        if not use_1x1conv and (in_channels != num_channels or strides != 1):
            raise ValueError(
                f"Residual({num_channels}, strides={strides}) on {in_channels} input channels "
                "needs use_1x1conv=True to reshape the shortcut"
            )
        self.conv1 = _conv(in_channels, num_channels, 3, rngs, strides=strides, padding=1)
        self.conv2 = _conv(num_channels, num_channels, 3, rngs, padding=1)
        self.conv3 = (
            _conv(in_channels, num_channels, 1, rngs, strides=strides)
            if use_1x1conv
            else nnx.data(None)
        )
        self.bn1 = _bn(num_channels, rngs)
        self.bn2 = _bn(num_channels, rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        y = nnx.relu(self.bn1(self.conv1(x_BHWC)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x_BHWC = self.conv3(x_BHWC)
        return nnx.relu(y + x_BHWC)


class ResNeXtBlock(nnx.Module):
    """The ResNeXt block (§8.6.5): a bottleneck residual block with a grouped 3x3 convolution.

    ``Conv(b, 1x1) -> BN -> relu -> Conv(b, 3x3, pad 1, stride, grouped) -> BN -> relu ->
    Conv(num_channels, 1x1) -> BN``, plus the input (through ``Conv(num_channels, 1x1, stride) ->
    BN`` when ``use_1x1conv``), then relu; ``b = round(num_channels * bot_mul)``.

    As in the book's code, the grouped convolution gets ``b // groups`` groups, i.e. ``groups`` is
    the number of channels *per group* (the "group width" of §8.8; ``ResNeXtBlock(32, 16, 1)`` has
    two groups of 16). ``b`` must be divisible by ``groups``. ``in_channels`` defaults to
    ``num_channels``.
    """

    def __init__(
        self,
        num_channels: int,
        groups: int,
        bot_mul: float,
        use_1x1conv: bool = False,
        strides: int = 1,
        *,
        in_channels: int | None = None,
        rngs: nnx.Rngs,
    ):
        in_channels = num_channels if in_channels is None else in_channels
        bot_channels = int(round(num_channels * bot_mul))
        if groups < 1 or bot_channels < groups or bot_channels % groups:
            raise ValueError(
                f"ResNeXtBlock: the {bot_channels} bottleneck channels (num_channels * bot_mul) "
                f"must be a positive multiple of the group width groups={groups}"
            )
        if not use_1x1conv and (in_channels != num_channels or strides != 1):
            raise ValueError(
                f"ResNeXtBlock({num_channels}, strides={strides}) on {in_channels} input "
                "channels needs use_1x1conv=True to reshape the shortcut"
            )
        self.bot_channels = bot_channels
        self.num_groups = bot_channels // groups
        self.conv1 = _conv(in_channels, bot_channels, 1, rngs)
        self.conv2 = _conv(
            bot_channels,
            bot_channels,
            3,
            rngs,
            strides=strides,
            padding=1,
            groups=self.num_groups,
        )
        self.conv3 = _conv(bot_channels, num_channels, 1, rngs)
        self.bn1 = _bn(bot_channels, rngs)
        self.bn2 = _bn(bot_channels, rngs)
        self.bn3 = _bn(num_channels, rngs)
        if use_1x1conv:
            self.conv4 = _conv(in_channels, num_channels, 1, rngs, strides=strides)
            self.bn4 = _bn(num_channels, rngs)
        else:
            self.conv4 = nnx.data(None)
            self.bn4 = nnx.data(None)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        y = nnx.relu(self.bn1(self.conv1(x_BHWC)))
        y = nnx.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.conv4 is not None:
            x_BHWC = self.bn4(self.conv4(x_BHWC))
        return nnx.relu(y + x_BHWC)


class _Stem(nnx.Module):
    """ResNet's b1: ``Conv(64, 7x7, stride 2, pad 3) -> BN -> relu -> MaxPool(3, 2, pad 1)``."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.conv = _conv(in_channels, out_channels, 7, rngs, strides=2, padding=3)
        self.bn = _bn(out_channels, rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h = nnx.relu(self.bn(self.conv(x_BHWC)))
        return nnx.max_pool(h, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


def _run_stages(stages: nnx.List, h_BHWC: jax.Array) -> jax.Array:
    for stage in stages:
        for block in stage:
            h_BHWC = block(h_BHWC)
    return h_BHWC


def _build_stages(arch, make_block) -> tuple[nnx.List, int]:
    """The stages of a ResNet-style body after the 64-channel stem: ``make_block(num_channels,
    downsample, in_channels)`` per block, where the first block of every later stage halves the
    resolution with a 1x1-conv shortcut. Returns the stages and the last channel count."""
    c = 64
    stages = []
    for i, (num_blocks, num_channels) in enumerate(arch):
        blocks = []
        for j in range(num_blocks):
            blocks.append(make_block(num_channels, j == 0 and i > 0, c))
            c = num_channels
        stages.append(nnx.List(blocks))
    return nnx.List(stages), c


class ResNet(nnx.Module):
    """ResNet (§8.6.3): the stem, one stage per ``(num_residuals, num_channels)`` in ``arch``,
    global average pooling and a dense layer.

    The first block of the first stage keeps the stem's 64 channels and size (so ``arch[0]``'s
    channels must be 64, as in the book); the first block of every later stage is
    ``Residual(num_channels, use_1x1conv=True, strides=2)``.

    Args:
      arch: ``(num_residuals, num_channels)`` per stage.
      num_classes: number of output logits.
      in_channels: input channels (1 for Fashion-MNIST).
      rngs: ``params`` stream for the weights.
    """

    def __init__(
        self,
        arch: Sequence[tuple[int, int]],
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        rngs: nnx.Rngs,
    ):
        self.arch = tuple((int(n), int(c)) for n, c in arch)
        self.stem = _Stem(in_channels, 64, rngs=rngs)

        def block(num_channels, downsample, c):
            if downsample:
                return Residual(num_channels, use_1x1conv=True, strides=2, in_channels=c, rngs=rngs)
            return Residual(num_channels, in_channels=c, rngs=rngs)

        self.stages, c = _build_stages(self.arch, block)
        self.fc = nnx.Linear(c, num_classes, kernel_init=_KERNEL_INIT, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h = _run_stages(self.stages, self.stem(x_BHWC))
        return self.fc(jnp.mean(h, axis=(1, 2)))


@register("resnet18", description="§8.6 ResNet-18 (input 96x96)")
class ResNet18(ResNet):
    """ResNet-18 (§8.6.3), :class:`ResNet` with :data:`RESNET18_ARCH`; 11,178,378 parameters with
    1 input channel and 10 classes (any input size; the book trains at 96x96)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *, rngs: nnx.Rngs):
        super().__init__(RESNET18_ARCH, num_classes, in_channels, rngs=rngs)


@register("resnext", description="§8.6.5 small ResNeXt: ResNet-18 layout with ResNeXt blocks")
class ResNeXt(nnx.Module):
    """A small ResNeXt: ResNet-18's layout with :class:`ResNeXtBlock` s (§8.6.5, not trained in
    the book); 943,242 parameters with the defaults, 1 input channel and 10 classes.

    The stem and stages follow :class:`ResNet`; every block is
    ``ResNeXtBlock(num_channels, groups, bot_mul)``, the first of each later stage with
    ``use_1x1conv=True, strides=2``. Defaults: four stages of two blocks with 64, 128, 256 and
    512 channels, bottleneck ``bot_mul=0.5`` and group width ``groups=16`` (so 2, 4, 8 and 16
    groups), sized to run quickly on a CPU.

    Args:
      arch: ``(num_blocks, num_channels)`` per stage; the first stage must have 64 channels.
      groups: channels per group of the grouped convolutions (the book's ``groups``).
      bot_mul: bottleneck channels as a fraction of ``num_channels``.
      num_classes: number of output logits.
      in_channels: input channels (1 for Fashion-MNIST).
      rngs: ``params`` stream for the weights.
    """

    def __init__(
        self,
        arch: Sequence[tuple[int, int]] = RESNEXT_ARCH,
        groups: int = 16,
        bot_mul: float = 0.5,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        rngs: nnx.Rngs,
    ):
        self.arch = tuple((int(n), int(c)) for n, c in arch)
        self.stem = _Stem(in_channels, 64, rngs=rngs)

        def block(num_channels, downsample, c):
            return ResNeXtBlock(
                num_channels,
                groups,
                bot_mul,
                use_1x1conv=downsample,
                strides=2 if downsample else 1,
                in_channels=c,
                rngs=rngs,
            )

        self.stages, c = _build_stages(self.arch, block)
        self.fc = nnx.Linear(c, num_classes, kernel_init=_KERNEL_INIT, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h = _run_stages(self.stages, self.stem(x_BHWC))
        return self.fc(jnp.mean(h, axis=(1, 2)))


class _SmallStem(nnx.Module):
    """The 32x32 stem of the book's §13.6 ResNet-18: ``Conv(64, 3x3, pad 1) -> BN -> relu``."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.conv = _conv(in_channels, out_channels, 3, rngs, padding=1)
        self.bn = _bn(out_channels, rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        return nnx.relu(self.bn(self.conv(x_BHWC)))


@register("resnet18_small", description="§13.6/§14.1 ResNet-18 for 32x32 images (3x3 stem)")
class ResNet18Small(nnx.Module):
    """The "slightly modified ResNet-18" the book trains on CIFAR-10 (``d2l.resnet18(num_classes,
    in_channels)`` of §13.6, used by §14.1 and §14.13): :class:`ResNet18` with a ``Conv(64, 3x3,
    stride 1, pad 1) -> BN -> relu`` stem and no max-pooling, so 32x32 inputs reach the last
    stage at 4x4. 11,176,970 parameters with 3 input channels and 10 classes. ``width`` (the
    book: 64) is the first stage's channels, doubled at every later stage; narrower networks
    train quickly on a CPU."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, width: int = 64, *, rngs: nnx.Rngs
    ):
        self.stem = _SmallStem(in_channels, width, rngs=rngs)
        stages, c = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            n = width * mult
            first = (
                Residual(n, use_1x1conv=True, strides=2, in_channels=c, rngs=rngs)
                if i > 0
                else Residual(n, in_channels=c, rngs=rngs)
            )
            stages.append(nnx.List([first, Residual(n, rngs=rngs)]))
            c = n
        self.stages = nnx.List(stages)
        self.fc = nnx.Linear(c, num_classes, kernel_init=_KERNEL_INIT, rngs=rngs)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h = _run_stages(self.stages, self.stem(x_BHWC))
        return self.fc(jnp.mean(h, axis=(1, 2)))
