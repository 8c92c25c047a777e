"""§8.3 NiN: parameter count and shapes at 224x224, NiN blocks, a real forward pass."""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
import pytest
from flax import nnx

from d2ljax.models.nin import NIN_MIN_INPUT_SIZE, NiN, NiNBlock, nin_block
from d2ljax.models.registry import get_constructor

_conv = layer_counts.conv


def _nin_block_params(k, cin, cout):
    return _conv(k, cin, cout) + 2 * _conv(1, cout, cout)


# nin_block(96, 11, 4, 0), nin_block(256, 5, 1, 2), nin_block(384, 3, 1, 1),
# nin_block(10, 3, 1, 1); no dense layers.
NIN_PARAMS = (
    _nin_block_params(11, 1, 96)
    + _nin_block_params(5, 96, 256)
    + _nin_block_params(3, 256, 384)
    + _nin_block_params(3, 384, 10)
)


def _num_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _eval_shape(fn, *args):
    return jax.eval_shape(fn, *args).shape


def test_param_count_and_shapes_at_224():
    assert NIN_PARAMS == 1_992_166
    model = nnx.eval_shape(lambda: NiN(rngs=nnx.Rngs(0)))
    assert _num_params(model) == NIN_PARAMS
    graphdef, state = nnx.split(model)
    x = jax.ShapeDtypeStruct((2, 224, 224, 1), jnp.float32)
    assert _eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x) == (2, 10)

    shapes = []  # recorded while tracing (eval_shape would turn returned ints into specs)

    def trace(state, x):
        m = nnx.merge(graphdef, state)
        for block in (m.block1, m.block2, m.block3):
            x = block(x)
            shapes.append(x.shape[1:])
            x = nnx.max_pool(x, (3, 3), strides=(2, 2))
            shapes.append(x.shape[1:])
        shapes.append(m.block4(x).shape[1:])

    # As the book's layer summary: 54, 26, 26, 12, 12, 5, then 10 channels at 5x5.
    jax.eval_shape(trace, state, x)
    assert shapes == [
        (54, 54, 96),
        (26, 26, 96),
        (26, 26, 256),
        (12, 12, 256),
        (12, 12, 384),
        (5, 5, 384),
        (5, 5, 10),
    ]


def test_nin_block():
    block = nin_block(8, 3, 1, 1, in_channels=3, rngs=nnx.Rngs(0))
    assert isinstance(block, NiNBlock) and block.out_channels == 8
    assert _num_params(block) == _nin_block_params(3, 3, 8)
    y = block(jax.random.normal(jax.random.key(0), (2, 12, 12, 3)))
    chex.assert_shape(y, (2, 12, 12, 8))
    assert float(y.min()) >= 0.0
    strided = nin_block(4, 11, 4, 0, in_channels=1, rngs=nnx.Rngs(0))
    chex.assert_shape(strided(jnp.ones((1, 67, 67, 1))), (1, 15, 15, 4))


def test_real_forward_at_the_smallest_size():
    model = NiN(rngs=nnx.Rngs(params=0, dropout=1))
    x_BHWC = jax.random.uniform(jax.random.key(0), (2, NIN_MIN_INPUT_SIZE, NIN_MIN_INPUT_SIZE, 1))
    train_out = model(x_BHWC)
    chex.assert_shape(train_out, (2, 10))
    chex.assert_tree_all_finite(train_out)
    assert float(train_out.min()) >= 0.0  # the last block ends in a relu, as in the book
    model.eval()
    eval_out = model(x_BHWC)
    chex.assert_trees_all_equal(eval_out, model(x_BHWC))
    assert not np.allclose(eval_out, train_out)  # dropout before the last block
    with pytest.raises(ValueError, match="at least 67x67"):
        model(jnp.ones((2, 66, 66, 1)))


def test_registered():
    assert get_constructor("nin") is NiN
