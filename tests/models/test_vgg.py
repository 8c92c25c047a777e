"""§8.2 VGG: blocks, VGG-11 and the book's small-channel VGG at 224x224, a real forward pass."""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
import pytest
from flax import nnx

from d2ljax.models.registry import get_constructor, get_model
from d2ljax.models.vgg import (
    SMALL_VGG_ARCH,
    VGG,
    VGG11,
    VGG11_ARCH,
    VGGBlock,
    small_vgg,
    vgg_block,
    vgg_feature_size,
)

_conv = layer_counts.conv
_dense = layer_counts.dense


def _vgg_params(convs, side, num_classes=10):
    """``convs``: (cin, cout) of every 3x3 convolution; ``side``: last feature map side."""
    last = convs[-1][1]
    return (
        sum(_conv(3, cin, cout) for cin, cout in convs)
        + _dense(last * side * side, 4096)
        + _dense(4096, 4096)
        + _dense(4096, num_classes)
    )


# VGG-11: blocks (1, 64), (1, 128), (2, 256), (2, 512), (2, 512) on a 1-channel image.
VGG11_CONVS = [(1, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512)]
VGG11_CONVS += [(512, 512)]
# The book's training model: every width divided by 4.
SMALL_CONVS = [(1, 16), (16, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 128)]
SMALL_CONVS += [(128, 128)]


def _num_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _eval_shape(model, x_shape):
    graphdef, state = nnx.split(model)
    return jax.eval_shape(
        lambda s, x: nnx.merge(graphdef, s)(x), state, jax.ShapeDtypeStruct(x_shape, jnp.float32)
    ).shape


def test_archs():
    assert VGG11_ARCH == ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    assert SMALL_VGG_ARCH == ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))


def test_vgg11_and_small_vgg_at_224():
    # Five blocks halve 224 five times: 7x7 maps before the dense layers.
    for ctor, convs, expected in (
        (lambda: VGG11(rngs=nnx.Rngs(0)), VGG11_CONVS, 128_806_154),
        (lambda: VGG(rngs=nnx.Rngs(0)), VGG11_CONVS, 128_806_154),
        (lambda: small_vgg(rngs=nnx.Rngs(0)), SMALL_CONVS, 43_093_322),
        (lambda: get_model("vgg", rngs=nnx.Rngs(0)), SMALL_CONVS, 43_093_322),
    ):
        model = nnx.eval_shape(ctor)
        assert _num_params(model) == _vgg_params(convs, 7) == expected
        assert model.fc1.in_features == convs[-1][1] * 7 * 7
        assert _eval_shape(model, (2, 224, 224, 1)) == (2, 10)


def test_vgg_block():
    block = vgg_block(2, 8, in_channels=3, rngs=nnx.Rngs(0))
    assert isinstance(block, VGGBlock) and block.out_channels == 8
    assert _num_params(block) == _conv(3, 3, 8) + _conv(3, 8, 8)
    y = block(jax.random.uniform(jax.random.key(0), (2, 17, 16, 3)))
    chex.assert_shape(y, (2, 8, 8, 8))  # 2x2 stride-2 pooling rounds down
    assert float(y.min()) >= 0.0  # max of relus
    with pytest.raises(ValueError, match="at least one"):
        vgg_block(0, 8, in_channels=3, rngs=nnx.Rngs(0))


def test_small_real_forward():
    arch = ((1, 4), (2, 8))
    model = VGG(arch, input_size=16, num_classes=5, rngs=nnx.Rngs(params=0, dropout=1))
    assert _num_params(model) == _vgg_params([(1, 4), (4, 8), (8, 8)], 4, num_classes=5)
    x_BHWC = jax.random.uniform(jax.random.key(0), (2, 16, 16, 1))
    train_out = model(x_BHWC)
    chex.assert_shape(train_out, (2, 5))
    assert not np.allclose(train_out, model(x_BHWC))  # dropout
    model.eval()
    chex.assert_trees_all_equal(model(x_BHWC), model(x_BHWC))
    chex.assert_tree_all_finite(model(x_BHWC))


def test_input_sizes():
    assert vgg_feature_size(224) == (7, 7)
    assert vgg_feature_size(96) == (3, 3)
    assert vgg_feature_size(32) == (1, 1)
    assert vgg_feature_size(8, num_blocks=2) == (2, 2)
    with pytest.raises(ValueError, match="at least 32x32"):
        VGG11(input_size=28, rngs=nnx.Rngs(0))
    model = nnx.eval_shape(lambda: small_vgg(input_size=96, rngs=nnx.Rngs(0)))
    assert _num_params(model) == _vgg_params(SMALL_CONVS, 3)
    with pytest.raises(ValueError, match="built for"):
        _eval_shape(model, (2, 224, 224, 1))


def test_registered():
    assert get_constructor("vgg11") is VGG11
    assert get_constructor("vgg") is small_vgg
