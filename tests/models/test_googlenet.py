"""§8.4 GoogLeNet: the Inception block, parameter count and shapes at 96x96, a real forward."""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
import pytest
from flax import nnx

from d2ljax.models.googlenet import GoogLeNet, Inception
from d2ljax.models.registry import get_constructor

_conv = layer_counts.conv
_dense = layer_counts.dense


def _inception_params(cin, c1, c2, c3, c4):
    return (
        _conv(1, cin, c1)
        + _conv(1, cin, c2[0])
        + _conv(3, c2[0], c2[1])
        + _conv(1, cin, c3[0])
        + _conv(5, c3[0], c3[1])
        + _conv(1, cin, c4)
    )


# (input channels, c1, c2, c3, c4) of the nine Inception blocks, written out from the book.
INCEPTIONS = [
    (192, 64, (96, 128), (16, 32), 32),  # b3 -> 256
    (256, 128, (128, 192), (32, 96), 64),  # -> 480
    (480, 192, (96, 208), (16, 48), 64),  # b4 -> 512
    (512, 160, (112, 224), (24, 64), 64),  # -> 512
    (512, 128, (128, 256), (24, 64), 64),  # -> 512
    (512, 112, (144, 288), (32, 64), 64),  # -> 528
    (528, 256, (160, 320), (32, 128), 128),  # -> 832
    (832, 256, (160, 320), (32, 128), 128),  # b5 -> 832
    (832, 384, (192, 384), (48, 128), 128),  # -> 1024
]
GOOGLENET_PARAMS = (
    _conv(7, 1, 64)  # b1
    + _conv(1, 64, 64)  # b2
    + _conv(3, 64, 192)
    + sum(_inception_params(*spec) for spec in INCEPTIONS)
    + _dense(1024, 10)
)


def _num_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_inception_block():
    block = Inception(4, (3, 6), (2, 5), 7, in_channels=3, rngs=nnx.Rngs(0))
    assert block.out_channels == 4 + 6 + 5 + 7
    assert _num_params(block) == _inception_params(3, 4, (3, 6), (2, 5), 7)
    x_BHWC = jax.random.normal(jax.random.key(0), (2, 7, 9, 3))
    y = block(x_BHWC)
    chex.assert_shape(y, (2, 7, 9, 22))  # every branch keeps height and width
    # Branches are concatenated in order: the 1x1 branch first, the pooling branch last.
    chex.assert_trees_all_close(y[..., :4], nnx.relu(block.b1_1(x_BHWC)), atol=1e-6)
    pooled = nnx.max_pool(x_BHWC, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    chex.assert_trees_all_close(y[..., -7:], nnx.relu(block.b4_2(pooled)), atol=1e-6)


def test_param_count_and_shapes_at_96():
    assert [c1 + c2[1] + c3[1] + c4 for _, c1, c2, c3, c4 in INCEPTIONS] == [
        256,
        480,
        512,
        512,
        512,
        528,
        832,
        832,
        1024,
    ]
    assert GOOGLENET_PARAMS == 5_977_530
    model = nnx.eval_shape(lambda: GoogLeNet(rngs=nnx.Rngs(0)))
    assert _num_params(model) == GOOGLENET_PARAMS
    graphdef, state = nnx.split(model)
    shapes = []  # recorded while tracing (eval_shape would turn returned ints into specs)

    def trace(state, x):
        m = nnx.merge(graphdef, state)

        def pool(h):
            return nnx.max_pool(h, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))

        h = pool(nnx.relu(m.b1_conv(x)))
        shapes.append(h.shape[1:])
        h = pool(nnx.relu(m.b2_conv2(nnx.relu(m.b2_conv1(h)))))
        shapes.append(h.shape[1:])
        for blocks in (m.b3, m.b4):
            for block in blocks:
                h = block(h)
            h = pool(h)
            shapes.append(h.shape[1:])
        shapes.append(m.features(x).shape[1:])
        shapes.append(m(x).shape)

    x = jax.ShapeDtypeStruct((2, 96, 96, 1), jnp.float32)
    # The book's layer summary at 96x96: 24x24x64, 12x12x192, 6x6x480, 3x3x832, 1024, 10.
    jax.eval_shape(trace, state, x)
    assert shapes == [
        (24, 24, 64),
        (12, 12, 192),
        (6, 6, 480),
        (3, 3, 832),
        (1024,),
        (2, 10),
    ]


@pytest.mark.slow
def test_real_forward_at_96():
    model = GoogLeNet(rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
    x_BHWC = jax.random.uniform(jax.random.key(0), (2, 96, 96, 1))
    logits = forward(state, x_BHWC)
    chex.assert_shape(logits, (2, 10))
    chex.assert_tree_all_finite(logits)
    assert not np.allclose(logits[0], logits[1])
    # Any input size works: every convolution and pooling is padded.
    chex.assert_shape(forward(state, jnp.ones((1, 28, 28, 1))), (1, 10))


def test_registered():
    assert get_constructor("googlenet") is GoogLeNet
