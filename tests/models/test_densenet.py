"""§8.7 DenseNet: dense and transition blocks as the book shows them, the full model at 96x96."""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
import pytest
from flax import nnx

from d2ljax.models.densenet import (
    ConvBlock,
    DenseBlock,
    DenseNet,
    TransitionBlock,
    conv_block,
    densenet_min_input_size,
    transition_block,
)
from d2ljax.models.registry import get_constructor

_conv = layer_counts.conv
_dense = layer_counts.dense
_bn = layer_counts.bn


def _dense_block_params(cin, num_convs, growth):
    return sum(_bn(cin + i * growth) + _conv(3, cin + i * growth, growth) for i in range(num_convs))


def _transition_params(cin, cout):
    return _bn(cin) + _conv(1, cin, cout)


# Channels 64 -> 192 -> 96 -> 224 -> 112 -> 240 -> 120 -> 248 (four dense blocks of 4 convs,
# growth rate 32, a halving transition between consecutive blocks).
DENSENET_PARAMS = (
    _conv(7, 1, 64)
    + _bn(64)
    + _dense_block_params(64, 4, 32)
    + _transition_params(192, 96)
    + _dense_block_params(96, 4, 32)
    + _transition_params(224, 112)
    + _dense_block_params(112, 4, 32)
    + _transition_params(240, 120)
    + _dense_block_params(120, 4, 32)
    + _bn(248)
    + _dense(248, 10)
)


def _num_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _eval_shape(model, x_shape):
    graphdef, state = nnx.split(model)
    return jax.eval_shape(
        lambda s, x: nnx.merge(graphdef, s)(x), state, jax.ShapeDtypeStruct(x_shape, jnp.float32)
    ).shape


def test_conv_block():
    blk = conv_block(5, in_channels=3, rngs=nnx.Rngs(0))
    assert isinstance(blk, ConvBlock)
    assert _num_params(blk) == _bn(3) + _conv(3, 3, 5)
    chex.assert_shape(blk(jnp.ones((2, 6, 6, 3))), (2, 6, 6, 5))


def test_dense_and_transition_blocks():
    # The book: DenseBlock(2, 10) on 4x8x8x3 gives 3 + 2 * 10 = 23 channels...
    blk = DenseBlock(2, 10, in_channels=3, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
    y = blk(x)
    chex.assert_shape(y, (4, 8, 8, 23))
    assert blk.out_channels == 23
    assert _num_params(blk) == _dense_block_params(3, 2, 10)
    chex.assert_trees_all_equal(y[..., :3], x)  # the input comes first, unchanged
    # ...and transition_block(10) brings that to 10 channels at half the height and width.
    trans = transition_block(10, in_channels=23, rngs=nnx.Rngs(1))
    assert isinstance(trans, TransitionBlock)
    chex.assert_shape(trans(y), (4, 4, 4, 10))
    assert _num_params(trans) == _transition_params(23, 10)


def test_param_count_and_shape_at_96():
    assert DENSENET_PARAMS == 758_226
    model = nnx.eval_shape(lambda: DenseNet(rngs=nnx.Rngs(0)))
    assert _num_params(model) == DENSENET_PARAMS
    assert model.fc.in_features == 248
    assert _eval_shape(model, (2, 96, 96, 1)) == (2, 10)
    model.eval()
    assert _eval_shape(model, (2, 96, 96, 1)) == (2, 10)


def test_smallest_input():
    assert densenet_min_input_size() == 29
    model = nnx.eval_shape(lambda: DenseNet(rngs=nnx.Rngs(0)))
    assert _eval_shape(model, (1, 29, 29, 1)) == (1, 10)
    with pytest.raises(ValueError, match="2x2"):
        _eval_shape(model, (1, 28, 28, 1))  # Fashion-MNIST's native size is too small


def test_small_real_forward():
    model = DenseNet(num_channels=8, growth_rate=4, arch=(2, 2), num_classes=3, rngs=nnx.Rngs(0))
    expected = (
        _conv(7, 1, 8)
        + _bn(8)
        + _dense_block_params(8, 2, 4)
        + _transition_params(16, 8)
        + _dense_block_params(8, 2, 4)
        + _bn(16)
        + _dense(16, 3)
    )
    assert _num_params(model) == expected
    x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 1))
    train_out = model(x)
    chex.assert_shape(train_out, (2, 3))
    model.eval()
    eval_out = model(x)
    chex.assert_tree_all_finite(eval_out)
    assert not np.allclose(train_out, eval_out)


@pytest.mark.slow
def test_real_forward_at_96():
    model = DenseNet(rngs=nnx.Rngs(0))
    model.eval()
    graphdef, state = nnx.split(model)
    out = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, jnp.ones((2, 96, 96, 1)))
    chex.assert_shape(out, (2, 10))
    chex.assert_tree_all_finite(out)


def test_registered():
    assert get_constructor("densenet") is DenseNet
