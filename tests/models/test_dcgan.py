"""DCGAN (book §20.2): the book's generator and discriminator, their sizes and shapes, PyTorch's
transposed convolution, the book's initialisation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.models import get_model, layer_shapes
from d2ljax.models.dcgan import DCGANDiscriminator, DCGANGenerator, conv, conv_transpose
from d2ljax.train import num_params


def test_parameter_counts_equal_the_books():
    """The book's nets (latent 100, n_G = n_D = 64, 64x64x3), counted by hand (4x4 kernels, no
    conv bias; batch norm: scale + offset per channel):

    net_G: ConvT 100->512: 100*512*16 = 819,200 + BN 1,024; ConvT 512->256: 2,097,152 + 512;
    ConvT 256->128: 524,288 + 256; ConvT 128->64: 131,072 + 128; ConvT 64->3: 3,072.
    Total 3,574,784 + 1,920 = 3,576,704.
    net_D: Conv 3->64: 3,072 + 128; 64->128: 131,072 + 256; 128->256: 524,288 + 512;
    256->512: 2,097,152 + 1,024; Conv 512->1: 8,192. Total 2,763,776 + 1,920 = 2,765,696.
    """
    build = lambda name: nnx.eval_shape(lambda: get_model(name, rngs=nnx.Rngs(0)))
    assert num_params(build("dcgan_generator")) == 3_576_704
    assert num_params(build("dcgan_discriminator")) == 2_765_696


def test_output_shapes_are_the_books():
    """The book's comments: G (512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 32, 32), (3, 64,
    64); D (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (1, 1, 1); here NHWC."""
    g = nnx.eval_shape(lambda: DCGANGenerator(rngs=nnx.Rngs(0)))
    assert [s for _, s in layer_shapes(g, (2, 1, 1, 100))] == [
        (2, 4, 4, 512),
        (2, 8, 8, 256),
        (2, 16, 16, 128),
        (2, 32, 32, 64),
        (2, 64, 64, 3),
    ]
    d = nnx.eval_shape(lambda: DCGANDiscriminator(rngs=nnx.Rngs(0)))
    assert [s for _, s in layer_shapes(d, (2, 64, 64, 3))] == [
        (2, 32, 32, 64),
        (2, 16, 16, 128),
        (2, 8, 8, 256),
        (2, 4, 4, 512),
        (2, 1, 1, 1),
    ]


def test_small_variant_runs_and_ranges():
    """The 32x32 grey variant (two middle blocks) the Fashion-MNIST run uses: images in [-1, 1],
    one finite logit each; a flat [B, 100] noise is the same as [B, 1, 1, 100]."""
    g = DCGANGenerator(n_G=16, out_channels=1, image_size=32, rngs=nnx.Rngs(0))
    d = DCGANDiscriminator(in_channels=1, n_D=16, image_size=32, rngs=nnx.Rngs(1))
    z = jax.random.normal(jax.random.key(0), (4, 100))
    x = nnx.jit(lambda g, z: g(z))(g, z)
    chex.assert_shape(x, (4, 32, 32, 1))
    assert float(jnp.abs(x).max()) <= 1.0
    chex.assert_trees_all_close(nnx.jit(lambda g, z: g(z))(g, z.reshape(4, 1, 1, 100)), x)
    logits = nnx.jit(lambda d, x: d(x))(d, x)
    chex.assert_shape(logits, (4,))
    chex.assert_tree_all_finite(logits)
    with pytest.raises(ValueError, match="power of two"):
        DCGANGenerator(image_size=28, rngs=nnx.Rngs(0))


def _set_kernel(layer, k):
    layer.kernel[...] = jnp.asarray(k, jnp.float32).reshape(*np.shape(k), 1, 1)


def test_transposed_convolution_is_pytorchs():
    """The book's examples (§14.10.1): X = K = [[0, 1], [2, 3]]; ConvTranspose2d(1, 1, 2) gives
    [[0, 0, 1], [0, 4, 6], [4, 12, 9]]; with stride 2, [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3],
    [4, 6, 6, 9]]; with padding 1, the centre [[4]]."""
    x = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
    cases = [
        (dict(strides=1, padding=0), [[0, 0, 1], [0, 4, 6], [4, 12, 9]]),
        (dict(strides=2, padding=0), [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]),
        (dict(strides=1, padding=1), [[4]]),
    ]
    for kw, want in cases:
        layer = conv_transpose(1, 1, kernel_size=2, **kw, rngs=nnx.Rngs(0))
        _set_kernel(layer, [[0.0, 1.0], [2.0, 3.0]])
        np.testing.assert_allclose(np.asarray(layer(x))[0, :, :, 0], want)


def test_transposed_convolution_is_the_adjoint_of_the_strided_convolution():
    """<conv(x), y> = <x, convT(y)> for the DCGAN layers (k 4, stride 2, padding 1, and the
    generator's first: stride 1, padding 0), with the same kernel: the transpose is exactly
    the gradient of the convolution."""
    for strides, padding, n in ((2, 1, 8), (1, 0, 1)):
        c = conv(3, 5, strides=strides, padding=padding, rngs=nnx.Rngs(0))
        t = conv_transpose(5, 3, strides=strides, padding=padding, rngs=nnx.Rngs(1))
        t.kernel[...] = c.kernel[...]  # [k, k, in 3, out 5] in both (transpose_kernel)
        x = jax.random.normal(
            jax.random.key(0),
            (
                2,
                n * strides + (4 - 2 * padding - strides),
                n * strides + (4 - 2 * padding - strides),
                3,
            ),
        )
        y_shape = c(x).shape
        y = jax.random.normal(jax.random.key(1), y_shape)
        _, vjp = jax.vjp(c, x)
        chex.assert_trees_all_close(t(y), vjp(y)[0], atol=1e-4, rtol=1e-4)
        assert t(y).shape == x.shape


def test_every_parameter_starts_from_normal_0_02():
    """The book's loop ``nn.init.normal_(w, 0, 0.02)`` over all parameters, batch-norm scales
    and offsets included."""
    g = DCGANGenerator(rngs=nnx.Rngs(0))
    values = np.concatenate([np.ravel(v) for v in jax.tree.leaves(nnx.state(g, nnx.Param))])
    assert abs(values.mean()) < 1e-3 and abs(values.std() - 0.02) < 1e-3
    bn_scale = np.asarray(g.blocks[0].bn.scale[...])
    assert abs(bn_scale.mean()) < 0.01 and bn_scale.std() < 0.03
