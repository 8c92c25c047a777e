"""§8.1 AlexNet: parameter count and shapes at 224x224, other input sizes, a real forward pass."""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
import pytest
from flax import nnx

from d2ljax.models.alexnet import ALEXNET_MIN_INPUT_SIZE, AlexNet, alexnet_feature_size
from d2ljax.models.registry import get_constructor

_conv = layer_counts.conv
_dense = layer_counts.dense


def _alexnet_params(side, in_channels=1, num_classes=10):
    """The book's AlexNet layer by layer; ``side`` is the last feature map's height/width."""
    return (
        _conv(11, in_channels, 96)
        + _conv(5, 96, 256)
        + _conv(3, 256, 384)
        + _conv(3, 384, 384)
        + _conv(3, 384, 256)
        + _dense(256 * side * side, 4096)
        + _dense(4096, 4096)
        + _dense(4096, num_classes)
    )


def _num_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _eval_shape(model, x_shape, method=None):
    graphdef, state = nnx.split(model)

    def run(state, x):
        m = nnx.merge(graphdef, state)
        return (getattr(m, method) if method else m)(x)

    return jax.eval_shape(run, state, jax.ShapeDtypeStruct(x_shape, jnp.float32)).shape


def test_param_count_and_shapes_at_224():
    model = nnx.eval_shape(lambda: AlexNet(rngs=nnx.Rngs(0)))
    # 224 -> conv 11/4 pad 1: 54 -> pool: 26 -> conv 5 pad 2: 26 -> pool: 12 -> 3 convs: 12
    # -> pool: 5, so the first dense layer sees 256 * 5 * 5 = 6400 features.
    assert _num_params(model) == _alexnet_params(5) == 46_764_746
    assert model.fc1.in_features == 6400
    assert _eval_shape(model, (2, 224, 224, 1), "features") == (2, 5, 5, 256)
    assert _eval_shape(model, (2, 224, 224, 1)) == (2, 10)
    model.eval()
    assert _eval_shape(model, (2, 224, 224, 1)) == (2, 10)


def test_other_input_sizes():
    assert alexnet_feature_size(224) == (5, 5)
    assert alexnet_feature_size(96) == (1, 1)  # 96 -> 22 -> 10 -> 4 -> 1
    assert alexnet_feature_size(ALEXNET_MIN_INPUT_SIZE) == (1, 1)
    assert alexnet_feature_size((224, 96)) == (5, 1)
    for too_small in (28, 64):
        with pytest.raises(ValueError, match="at least 65x65"):
            AlexNet(input_size=too_small, rngs=nnx.Rngs(0))
    model = nnx.eval_shape(lambda: AlexNet(input_size=96, in_channels=3, rngs=nnx.Rngs(0)))
    assert _num_params(model) == _alexnet_params(1, in_channels=3)
    assert _eval_shape(model, (2, 96, 96, 3)) == (2, 10)
    with pytest.raises(ValueError, match="built for"):
        _eval_shape(model, (2, 224, 224, 3))


def test_real_forward_at_the_smallest_size():
    model = AlexNet(input_size=65, rngs=nnx.Rngs(params=0, dropout=1))
    x_BHWC = jax.random.uniform(jax.random.key(0), (2, 65, 65, 1))
    train_1, train_2 = model(x_BHWC), model(x_BHWC)
    chex.assert_shape(train_1, (2, 10))
    chex.assert_tree_all_finite(train_1)
    assert not np.allclose(train_1, train_2)  # dropout draws a new mask every call
    model.eval()
    eval_out = model(x_BHWC)
    chex.assert_trees_all_equal(eval_out, model(x_BHWC))
    assert not np.allclose(eval_out, train_1)
    # The book's init_cnn: Xavier-uniform kernels, bound sqrt(6 / (fan_in + fan_out)).
    kernel = np.abs(np.asarray(model.conv1.kernel[...]))
    bound = np.sqrt(6.0 / (11 * 11 * 1 + 11 * 11 * 96))
    assert 0.9 * bound < kernel.max() <= bound


def test_registered():
    assert get_constructor("alexnet") is AlexNet
