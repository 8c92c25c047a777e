"""§8.6 ResNet and ResNeXt: blocks as the book shows them, ResNet-18 at 96x96, real forwards."""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
import pytest
from flax import nnx

from d2ljax.models.registry import get_constructor
from d2ljax.models.resnet import (
    RESNET18_ARCH,
    Residual,
    ResNet,
    ResNet18,
    ResNeXt,
    ResNeXtBlock,
)

_conv = layer_counts.conv
_dense = layer_counts.dense
_bn = layer_counts.bn


def _residual_params(cin, c, use_1x1conv):
    shortcut = _conv(1, cin, c) if use_1x1conv else 0
    return _conv(3, cin, c) + _bn(c) + _conv(3, c, c) + _bn(c) + shortcut


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


STEM = _conv(7, 1, 64) + _bn(64)
RESNET18_PARAMS = (
    STEM
    + 2 * _residual_params(64, 64, False)
    + _residual_params(64, 128, True)
    + _residual_params(128, 128, False)
    + _residual_params(128, 256, True)
    + _residual_params(256, 256, False)
    + _residual_params(256, 512, True)
    + _residual_params(512, 512, False)
    + _dense(512, 10)
)
# ResNeXt defaults: ResNet-18's layout, group width 16, bottleneck 0.5.
RESNEXT_PARAMS = (
    STEM
    + 2 * _resnext_params(64, 64, 16, 0.5, False)
    + _resnext_params(64, 128, 16, 0.5, True)
    + _resnext_params(128, 128, 16, 0.5, False)
    + _resnext_params(128, 256, 16, 0.5, True)
    + _resnext_params(256, 256, 16, 0.5, False)
    + _resnext_params(256, 512, 16, 0.5, True)
    + _resnext_params(512, 512, 16, 0.5, False)
    + _dense(512, 10)
)


def _num_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _eval_shape(model, x_shape):
    graphdef, state = nnx.split(model)
    return jax.eval_shape(
        lambda s, x: nnx.merge(graphdef, s)(x), state, jax.ShapeDtypeStruct(x_shape, jnp.float32)
    ).shape


def _x(shape, seed=0):
    return jax.random.normal(jax.random.key(seed), shape)


class TestResidual:
    def test_same_shape(self):
        # The book: Residual(3) on a 4x6x6x3 batch keeps the shape.
        blk = Residual(3, rngs=nnx.Rngs(0))
        y = blk(_x((4, 6, 6, 3)))
        chex.assert_shape(y, (4, 6, 6, 3))
        assert float(y.min()) >= 0.0
        assert _num_params(blk) == _residual_params(3, 3, False)

    def test_1x1conv_halves(self):
        # The book: Residual(6, use_1x1conv=True, strides=2) on the same batch -> 4x3x3x6.
        blk = Residual(6, use_1x1conv=True, strides=2, in_channels=3, rngs=nnx.Rngs(0))
        chex.assert_shape(blk(_x((4, 6, 6, 3))), (4, 3, 3, 6))
        assert _num_params(blk) == _residual_params(3, 6, True)

    def test_identity_shortcut_needs_matching_shapes(self):
        with pytest.raises(ValueError, match="use_1x1conv"):
            Residual(6, in_channels=3, rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match="use_1x1conv"):
            Residual(3, strides=2, rngs=nnx.Rngs(0))

    def test_batch_norm_modes(self):
        blk = Residual(3, rngs=nnx.Rngs(0))
        x = 1.0 + 2.0 * _x((4, 6, 6, 3))
        stats = nnx.clone(nnx.state(blk, nnx.BatchStat))
        train_out = blk(x)
        moved = nnx.state(blk, nnx.BatchStat)
        assert not np.allclose(moved["bn1"]["mean"][...], stats["bn1"]["mean"][...])
        assert blk.bn1.momentum == 0.9 and blk.bn1.epsilon == 1e-5
        blk.eval()
        frozen = nnx.clone(nnx.state(blk, nnx.BatchStat))
        eval_out = blk(x)
        chex.assert_trees_all_equal(nnx.state(blk, nnx.BatchStat), frozen)
        assert not np.allclose(train_out, eval_out)


class TestResNeXtBlock:
    def test_same_shape(self):
        # The book: ResNeXtBlock(32, 16, 1) on 4x96x96x32 keeps the shape.
        blk = ResNeXtBlock(32, 16, 1, rngs=nnx.Rngs(0))
        chex.assert_shape(blk(_x((4, 96, 96, 32))), (4, 96, 96, 32))
        # groups=16 is the group *width*, as in the book's code: 32 channels -> 2 groups.
        assert blk.num_groups == 2 and blk.conv2.kernel.shape == (3, 3, 16, 32)
        assert _num_params(blk) == _resnext_params(32, 32, 16, 1, False)

    def test_1x1conv_halves(self):
        blk = ResNeXtBlock(
            64, 16, 0.5, use_1x1conv=True, strides=2, in_channels=32, rngs=nnx.Rngs(0)
        )
        y = blk(_x((2, 9, 9, 32)))
        chex.assert_shape(y, (2, 5, 5, 64))
        assert _num_params(blk) == _resnext_params(32, 64, 16, 0.5, True)

    def test_bad_groups(self):
        with pytest.raises(ValueError, match="group width"):
            ResNeXtBlock(32, 12, 1, rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match="use_1x1conv"):
            ResNeXtBlock(32, 16, 1, strides=2, rngs=nnx.Rngs(0))

    def test_grouped_conv_does_not_mix_groups(self):
        blk = ResNeXtBlock(32, 16, 1, rngs=nnx.Rngs(0))
        h = _x((1, 5, 5, 32))
        out = blk.conv2(h)
        h2 = h.at[..., 16:].set(0.0)  # changing the second group's input...
        # ...leaves the first group's outputs (channels 0-15) unchanged.
        chex.assert_trees_all_close(blk.conv2(h2)[..., :16], out[..., :16], atol=1e-6)


def test_resnet18_param_count_and_shape_at_96():
    assert RESNET18_ARCH == ((2, 64), (2, 128), (2, 256), (2, 512))
    assert RESNET18_PARAMS == 11_178_378
    model = nnx.eval_shape(lambda: ResNet18(rngs=nnx.Rngs(0)))
    assert _num_params(model) == RESNET18_PARAMS
    assert _eval_shape(model, (2, 96, 96, 1)) == (2, 10)
    graphdef, state = nnx.split(model)
    shapes = []  # the book's layer summary at 96: 24x24x64, 24, 12, 6, 3x3x512

    def trace(state, x):
        m = nnx.merge(graphdef, state)
        h = m.stem(x)
        shapes.append(h.shape[1:])
        for stage in m.stages:
            for block in stage:
                h = block(h)
            shapes.append(h.shape[1:])

    jax.eval_shape(trace, state, jax.ShapeDtypeStruct((2, 96, 96, 1), jnp.float32))
    assert shapes == [(24, 24, 64), (24, 24, 64), (12, 12, 128), (6, 6, 256), (3, 3, 512)]


def test_small_resnet_real_forward():
    model = ResNet(((1, 64), (1, 128)), num_classes=4, in_channels=3, rngs=nnx.Rngs(0))
    expected = (
        _conv(7, 3, 64)
        + _bn(64)
        + _residual_params(64, 64, False)
        + _residual_params(64, 128, True)
        + _dense(128, 4)
    )
    assert _num_params(model) == expected
    x = _x((2, 20, 20, 3))
    train_out = model(x)
    chex.assert_shape(train_out, (2, 4))
    model.eval()
    eval_out = model(x)
    chex.assert_tree_all_finite(eval_out)
    assert not np.allclose(train_out, eval_out)


def test_resnext_param_count_and_real_forward():
    assert RESNEXT_PARAMS == 943_242
    model = nnx.eval_shape(lambda: ResNeXt(rngs=nnx.Rngs(0)))
    assert _num_params(model) == RESNEXT_PARAMS
    assert _eval_shape(model, (2, 96, 96, 1)) == (2, 10)
    small = ResNeXt(((1, 64), (1, 96)), groups=8, bot_mul=0.25, rngs=nnx.Rngs(0))
    expected = (
        STEM
        + _resnext_params(64, 64, 8, 0.25, False)
        + _resnext_params(64, 96, 8, 0.25, True)
        + _dense(96, 10)
    )
    assert _num_params(small) == expected
    out = small(_x((2, 16, 16, 1)))
    chex.assert_shape(out, (2, 10))
    chex.assert_tree_all_finite(out)


@pytest.mark.slow
def test_resnet18_real_forward_at_96():
    model = ResNet18(rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def step(params, rest, x):
        m = nnx.merge(graphdef, params, rest)
        out = m(x)
        return out, nnx.state(m, nnx.BatchStat)

    out, stats = step(params, rest, _x((2, 96, 96, 1)))
    chex.assert_shape(out, (2, 10))
    chex.assert_tree_all_finite(out)
    assert not np.allclose(stats["stem"]["bn"]["mean"][...], 0.0)  # updated in train mode


def test_registered():
    assert get_constructor("resnet18") is ResNet18
    assert get_constructor("resnext") is ResNeXt
