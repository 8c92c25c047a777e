"""§8.5.4-8.5.5 BN-LeNet: parameter counts, scratch == concise, moving statistics in training.

The batch-normalization layers themselves are tested in ``tests/nn/test_batch_norm.py``.
"""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.models.bn_lenet import BNLeNet, BNLeNetScratch, bn_lenet_feature_size
from d2ljax.models.registry import get_model
from d2ljax.train.state import TrainState
from d2ljax.train.steps import make_steps

_conv = layer_counts.conv
_dense = layer_counts.dense
_bn = layer_counts.bn


# BN-LeNet at 28x28x1: 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4, so 16 * 4 * 4 features.
BN_LENET_PARAMS = (
    _conv(5, 1, 6)
    + _bn(6)
    + _conv(5, 6, 16)
    + _bn(16)
    + _dense(16 * 4 * 4, 120)
    + _bn(120)
    + _dense(120, 84)
    + _bn(84)
    + _dense(84, 10)
)


def _num(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def _bn_lenet_pair(seed=0):
    """A concise BN-LeNet with random BN scale/shift, and a scratch one with the same weights."""
    concise = BNLeNet(rngs=nnx.Rngs(seed))
    scratch = BNLeNetScratch(rngs=nnx.Rngs(seed + 1))
    keys = iter(jax.random.split(jax.random.key(seed + 2), 8))
    for name in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        nnx.update(getattr(scratch, name), nnx.state(getattr(concise, name)))
    for name in ("bn1", "bn2", "bn3", "bn4"):
        lib, own = getattr(concise, name), getattr(scratch, name)
        lib.scale.set_value(1.0 + 0.2 * jax.random.normal(next(keys), lib.scale.shape))
        lib.bias.set_value(0.2 * jax.random.normal(next(keys), lib.bias.shape))
        own.gamma.set_value(lib.scale[...])
        own.beta.set_value(lib.bias[...])
    return scratch, concise


class BNLeNetTest(chex.TestCase):
    def test_shapes_and_param_counts(self):
        assert BN_LENET_PARAMS == 44_878
        x_BHWC = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
        for cls in (BNLeNetScratch, BNLeNet):
            model = cls(rngs=nnx.Rngs(0))
            chex.assert_shape(model(x_BHWC), (2, 10))
            assert _num(nnx.state(model, nnx.Param)) == BN_LENET_PARAMS
            assert _num(nnx.state(model, nnx.BatchStat)) == 2 * (6 + 16 + 120 + 84)
            model.eval()
            chex.assert_tree_all_finite(model(x_BHWC))

    def test_registered(self):
        for name, cls in (("bn_lenet_scratch", BNLeNetScratch), ("bn_lenet", BNLeNet)):
            model = nnx.eval_shape(lambda n=name: get_model(n, rngs=nnx.Rngs(0)))
            assert isinstance(model, cls)

    def test_other_input_sizes(self):
        assert bn_lenet_feature_size(28) == (4, 4)
        assert bn_lenet_feature_size(16) == (1, 1)
        with pytest.raises(ValueError, match="at least 16x16"):
            BNLeNet(input_size=15, rngs=nnx.Rngs(0))
        model = nnx.eval_shape(
            lambda: BNLeNet(input_size=32, num_classes=3, in_channels=3, rngs=nnx.Rngs(0))
        )
        assert model.fc1.in_features == 16 * 5 * 5
        graphdef, state = nnx.split(model)

        def out_shape(side):
            x = jax.ShapeDtypeStruct((2, side, side, 3), jnp.float32)
            return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x).shape

        assert out_shape(32) == (2, 3)
        with pytest.raises(ValueError, match="built for"):
            out_shape(28)

    @chex.variants(with_jit=True, without_jit=True)
    def test_scratch_equals_concise(self):
        scratch, concise = _bn_lenet_pair()
        xs = [jax.random.uniform(jax.random.key(s), (8, 28, 28, 1)) for s in (10, 11)]
        g_s, st_s = nnx.split(scratch)
        g_c, st_c = nnx.split(concise)

        def run(st_s, st_c, xs):
            s, c = nnx.merge(g_s, st_s), nnx.merge(g_c, st_c)
            outs = [(s(x), c(x)) for x in xs]
            s.eval()
            c.eval()
            outs.append((s(xs[0]), c(xs[0])))
            return outs, nnx.state(s, nnx.BatchStat), nnx.state(c, nnx.BatchStat)

        outs, stats_s, stats_c = self.variant(run)(st_s, st_c, xs)
        for out_s, out_c in outs:
            chex.assert_trees_all_close(out_s, out_c, rtol=1e-4, atol=1e-5)
        assert not np.allclose(outs[0][0], outs[-1][0])  # train (batch stats) != eval
        for name in ("bn1", "bn2", "bn3", "bn4"):
            chex.assert_trees_all_close(
                (stats_s[name]["moving_mean"][...], stats_s[name]["moving_var"][...]),
                (stats_c[name]["mean"][...], stats_c[name]["var"][...]),
                rtol=1e-4,
                atol=1e-6,
            )

    def test_train_step_updates_moving_stats_and_eval_step_does_not(self):
        """Through the training core: BatchStat lives in model_state and the step carries it."""
        model = BNLeNetScratch(rngs=nnx.Rngs(0))
        state = TrainState.create(model, optax.sgd(0.1))
        assert "moving_mean" in state.model_state["bn1"]
        batch = {
            "x": jax.random.uniform(jax.random.key(1), (16, 28, 28, 1)),
            "y": jax.random.randint(jax.random.key(2), (16,), 0, 10),
        }
        steps = make_steps("classification")
        before = jax.device_get(state.model_state)
        metrics = steps.eval_one(state, batch)
        chex.assert_trees_all_equal(jax.device_get(state.model_state), before)
        state, metrics = steps.train_one(state, batch)
        chex.assert_tree_all_finite(metrics)
        after = jax.device_get(state.model_state)
        for name in ("bn1", "bn2", "bn3", "bn4"):
            assert not np.allclose(
                after[name]["moving_mean"][...], before[name]["moving_mean"][...]
            )
