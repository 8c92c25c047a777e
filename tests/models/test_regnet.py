"""§8.8 AnyNet and RegNetX-32: parameter count, the book's stage shapes at 96x96, real forwards."""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
from flax import nnx

from d2ljax.models.registry import get_constructor
from d2ljax.models.regnet import REGNETX32_ARCH, AnyNet, RegNetX32

_conv = layer_counts.conv
_dense = layer_counts.dense
_bn = layer_counts.bn


def _resnext_params(cin, c, group_width, bot_mul, use_1x1conv):
    b = int(round(c * bot_mul))
    shortcut = _conv(1, cin, c) + _bn(c) if use_1x1conv else 0
    return (
        _conv(1, cin, b)
        + _bn(b)
        + _conv(3, b, b, groups=b // group_width)
        + _bn(b)
        + _conv(1, b, c)
        + _bn(c)
        + shortcut
    )


def _stage_params(cin, depth, c, group_width, bot_mul):
    first = _resnext_params(cin, c, group_width, bot_mul, True)
    return first + (depth - 1) * _resnext_params(c, c, group_width, bot_mul, False)


# Stem 32 channels; stages (depth 4, 32 channels) and (depth 6, 80 channels), group width 16,
# no bottleneck; global average pooling and a dense layer.
REGNETX32_PARAMS = (
    _conv(3, 1, 32)
    + _bn(32)
    + _stage_params(32, 4, 32, 16, 1)
    + _stage_params(32, 6, 80, 16, 1)
    + _dense(80, 10)
)


def _num_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_arch():
    assert REGNETX32_ARCH == ((4, 32, 16, 1), (6, 80, 16, 1))


def test_param_count_and_stage_shapes_at_96():
    assert REGNETX32_PARAMS == 179_290
    model = nnx.eval_shape(lambda: RegNetX32(rngs=nnx.Rngs(0)))
    assert _num_params(model) == REGNETX32_PARAMS
    # 32 channels in stage 1 -> 2 groups of 16; 80 in stage 2 -> 5 groups of 16.
    assert [stage[0].num_groups for stage in model.stages] == [2, 5]
    graphdef, state = nnx.split(model)
    shapes = []  # the book's layer summary at 96: 48x48x32, 24x24x32, 12x12x80, then 10 logits

    def trace(state, x):
        m = nnx.merge(graphdef, state)
        h = nnx.relu(m.stem_bn(m.stem_conv(x)))
        shapes.append(h.shape[1:])
        for stage in m.stages:
            for block in stage:
                h = block(h)
            shapes.append(h.shape[1:])
        shapes.append(m(x).shape)

    jax.eval_shape(trace, state, jax.ShapeDtypeStruct((2, 96, 96, 1), jnp.float32))
    assert shapes == [(48, 48, 32), (24, 24, 32), (12, 12, 80), (2, 10)]


def test_real_forward_at_96():
    model = RegNetX32(rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, x):
        m = nnx.merge(graphdef, state)
        return m(x), nnx.state(m)

    x = jax.random.uniform(jax.random.key(0), (2, 96, 96, 1))
    train_out, new_state = forward(state, x)
    chex.assert_shape(train_out, (2, 10))
    chex.assert_tree_all_finite(train_out)
    assert not np.allclose(new_state["stem_bn"]["mean"][...], state["stem_bn"]["mean"][...])
    model.eval()
    graphdef, state = nnx.split(model)
    eval_out = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
    chex.assert_tree_all_finite(eval_out)
    assert not np.allclose(train_out, eval_out)


def test_custom_anynet():
    arch = ((1, 16, 8, 0.5), (2, 24, 4, 1))
    model = AnyNet(arch, stem_channels=8, num_classes=5, in_channels=3, rngs=nnx.Rngs(0))
    expected = (
        _conv(3, 3, 8)
        + _bn(8)
        + _stage_params(8, 1, 16, 8, 0.5)
        + _stage_params(16, 2, 24, 4, 1)
        + _dense(24, 5)
    )
    assert _num_params(model) == expected
    out = model(jax.random.normal(jax.random.key(1), (2, 20, 20, 3)))
    chex.assert_shape(out, (2, 5))  # 20 -> 10 (stem) -> 5 -> 3, then pooled


def test_registered():
    assert get_constructor("regnetx32") is RegNetX32
