"""Deep convolutional GAN (book §20.2, Radford et al. 2016): the generator and discriminator the
book trains on 64x64 Pokémon sprites.

The book's PyTorch networks, in NHWC:

* ``G_block``: ``ConvTranspose2d(k=4, stride 2, padding 1, no bias)`` (doubles the size), batch
  norm, ReLU. The generator maps noise ``[B, 1, 1, 100]`` through a first block with stride 1,
  padding 0 (1x1 -> 4x4, ``8 n_G`` channels), three blocks halving the channels (8x8, 16x16,
  32x32), and a last transposed convolution to 3 channels at 64x64 with tanh.
* ``D_block``: ``Conv2d(k=4, stride 2, padding 1, no bias)`` (halves the size), batch norm,
  leaky ReLU (slope 0.2). The discriminator has four blocks (64 -> 128 -> 256 -> 512 channels at
  32, 16, 8, 4) and a last 4x4 convolution to one logit.

A transposed convolution with PyTorch's ``padding`` p is Flax's ``ConvTranspose`` with the kernel
transposed and ``k - 1 - p`` padding on each side: the adjoint of the strided convolution (the
tests check it against ``jax.vjp`` of that convolution). ``image_size`` (a power of two, at least
8) scales the same design: ``log2(image_size) - 3`` middle blocks (three at 64, two at 32).

Initialisation, as the book does it: every parameter, batch-norm scale and offset included,
drawn from ``N(0, 0.02)`` (``nn.init.normal_(w, 0, 0.02)`` over ``parameters()``). Batch norms
use PyTorch's defaults (momentum 0.1, i.e. Flax's 0.9; epsilon 1e-5).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

_INIT = nnx.initializers.normal(0.02)


def _batch_norm(channels: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(
        channels, momentum=0.9, epsilon=1e-5, scale_init=_INIT, bias_init=_INIT, rngs=rngs
    )


def _num_middle_blocks(image_size: int) -> int:
    k = math.log2(image_size) if image_size > 0 else 0
    if k != int(k) or image_size < 8:
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return int(k) - 3


def conv_transpose(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 4,
    strides: int = 2,
    padding: int = 1,
    *,
    rngs: nnx.Rngs,
) -> nnx.ConvTranspose:
    """PyTorch's ``ConvTranspose2d(in, out, kernel_size, strides, padding, bias=False)``: output
    size ``(n - 1) * strides - 2 * padding + kernel_size``."""
    pad = kernel_size - 1 - padding
    return nnx.ConvTranspose(
        in_channels,
        out_channels,
        (kernel_size, kernel_size),
        (strides, strides),
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        transpose_kernel=True,
        kernel_init=_INIT,
        rngs=rngs,
    )


def conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 4,
    strides: int = 2,
    padding: int = 1,
    *,
    rngs: nnx.Rngs,
) -> nnx.Conv:
    """PyTorch's ``Conv2d(in, out, kernel_size, strides, padding, bias=False)``."""
    return nnx.Conv(
        in_channels,
        out_channels,
        (kernel_size, kernel_size),
        (strides, strides),
        padding=((padding, padding), (padding, padding)),
        use_bias=False,
        kernel_init=_INIT,
        rngs=rngs,
    )


class GBlock(nnx.Module):
    """The book's ``G_block``: transposed convolution (no bias), batch norm, ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 4,
        strides: int = 2,
        padding: int = 1,
        *,
        rngs: nnx.Rngs,
    ):
        self.conv = conv_transpose(
            in_channels, out_channels, kernel_size, strides, padding, rngs=rngs
        )
        self.bn = _batch_norm(out_channels, rngs)

    def __call__(self, x_BHWC):
        return nnx.relu(self.bn(self.conv(x_BHWC)))


class DBlock(nnx.Module):
    """The book's ``D_block``: convolution (no bias), batch norm, leaky ReLU (slope ``alpha``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 4,
        strides: int = 2,
        padding: int = 1,
        alpha: float = 0.2,
        *,
        rngs: nnx.Rngs,
    ):
        self.conv = conv(in_channels, out_channels, kernel_size, strides, padding, rngs=rngs)
        self.bn = _batch_norm(out_channels, rngs)
        self.alpha = alpha

    def __call__(self, x_BHWC):
        return nnx.leaky_relu(self.bn(self.conv(x_BHWC)), self.alpha)


@register("dcgan_generator", description="§20.2 DCGAN generator: noise 100 -> 64x64x3, n_G 64")
class DCGANGenerator(nnx.Module):
    """The book's ``net_G``: noise ``[B, 1, 1, latent_dim]`` (or ``[B, latent_dim]``) -> images
    ``[B, S, S, out_channels]`` in [-1, 1], ``S = image_size``. At the book's size (latent 100,
    ``n_G`` 64, 64x64x3): 3,576,704 parameters."""

    def __init__(
        self,
        latent_dim: int = 100,
        n_G: int = 64,
        out_channels: int = 3,
        image_size: int = 64,
        *,
        rngs: nnx.Rngs,
    ):
        m = _num_middle_blocks(image_size)
        width = n_G * 2**m
        blocks = [GBlock(latent_dim, width, strides=1, padding=0, rngs=rngs)]
        for _ in range(m):
            blocks.append(GBlock(width, width // 2, rngs=rngs))
            width //= 2
        self.blocks = nnx.List(blocks)
        self.out = conv_transpose(width, out_channels, rngs=rngs)
        self.latent_dim = latent_dim

    def __call__(self, z):
        x = z.reshape(z.shape[0], 1, 1, self.latent_dim)
        for block in self.blocks:
            x = block(x)
        return jnp.tanh(self.out(x))


@register("dcgan_discriminator", description="§20.2 DCGAN discriminator: 64x64x3 -> logit, n_D 64")
class DCGANDiscriminator(nnx.Module):
    """The book's ``net_D``: images ``[B, S, S, in_channels]`` -> one logit each ``[B]`` (real:
    1). At the book's size (64x64x3, ``n_D`` 64): 2,765,696 parameters."""

    def __init__(
        self, in_channels: int = 3, n_D: int = 64, image_size: int = 64, *, rngs: nnx.Rngs
    ):
        m = _num_middle_blocks(image_size)
        blocks, c_in, width = [], in_channels, n_D
        for _ in range(m + 1):
            blocks.append(DBlock(c_in, width, rngs=rngs))
            c_in, width = width, width * 2
        self.blocks = nnx.List(blocks)
        self.out = conv(c_in, 1, kernel_size=4, strides=1, padding=0, rngs=rngs)

    def __call__(self, x_BHWC):
        for block in self.blocks:
            x_BHWC = block(x_BHWC)
        return self.out(x_BHWC).reshape(x_BHWC.shape[0])
