"""§8.5 batch normalization: scratch == nnx.BatchNorm, train/eval modes, and BN-LeNet."""

import chex
import jax
import jax.numpy as jnp
import layer_counts
import numpy as np
import optax
import pytest
from absl.testing import parameterized
from flax import nnx

from d2ljax.models.batchnorm import BNLeNet, BNLeNetScratch, bn_lenet_feature_size
from d2ljax.models.registry import get_model
from d2ljax.nn.batch_norm import BatchNormScratch, batch_norm
from d2ljax.train.state import TrainState
from d2ljax.train.steps import make_steps

_conv = layer_counts.conv
_dense = layer_counts.dense
_bn = layer_counts.bn

SHAPES = (("dense_BD", (16, 5)), ("conv_BHWC", (4, 3, 3, 5)))


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


def _inputs(shape, seed=0):
    keys = jax.random.split(jax.random.key(seed), 6)
    c = shape[-1]
    x = 2.0 + 3.0 * jax.random.normal(keys[0], shape)  # nonzero mean and scale
    gamma = 1.0 + 0.5 * jax.random.normal(keys[1], (c,))
    beta = jax.random.normal(keys[2], (c,))
    moving_mean = jax.random.normal(keys[3], (c,))
    moving_var = jax.random.uniform(keys[4], (c,), minval=0.5, maxval=2.0)
    w = jax.random.normal(keys[5], shape)  # weights of a loss, for gradients
    return x, gamma, beta, moving_mean, moving_var, w


def _library_layer(gamma, beta, moving_mean, moving_var, momentum=0.9):
    layer = nnx.BatchNorm(gamma.shape[0], momentum=momentum, epsilon=1e-5, rngs=nnx.Rngs(0))
    layer.scale.set_value(gamma)
    layer.bias.set_value(beta)
    layer.mean.set_value(moving_mean)
    layer.var.set_value(moving_var)
    return layer


class BatchNormFunctionTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*SHAPES)
    def test_train_mode_equals_nnx_batchnorm(self, shape):
        x, gamma, beta, mean, var, w = _inputs(shape)
        graphdef, state = nnx.split(_library_layer(gamma, beta, mean, var))

        def both(x, gamma, beta, state):
            def scratch_loss(x, gamma, beta):
                y, m, v = batch_norm(x, gamma, beta, mean, var, training=True)
                return jnp.sum(w * y), (y, m, v)

            def library_loss(x, state):
                # copy=True: the merged variables must belong to the grad trace to be updated.
                layer = nnx.merge(graphdef, state, copy=True)
                y = layer(x)
                return jnp.sum(w * y), (y, layer.mean[...], layer.var[...])

            s = jax.value_and_grad(scratch_loss, argnums=(0, 1), has_aux=True)(x, gamma, beta)
            r = jax.value_and_grad(library_loss, argnums=0, has_aux=True)(x, state)
            return s, r

        scratch, library = self.variant(both)(x, gamma, beta, state)
        (_, (y_s, m_s, v_s)), (dx_s, dgamma_s) = scratch
        (_, (y_r, m_r, v_r)), dx_r = library
        chex.assert_shape(y_s, shape)
        chex.assert_trees_all_close((y_s, m_s, v_s), (y_r, m_r, v_r), rtol=1e-5, atol=1e-5)
        chex.assert_trees_all_close(dx_s, dx_r, rtol=1e-4, atol=1e-5)
        # The batch output is standardized per feature before gamma/beta.
        axes = tuple(range(len(shape) - 1))
        x_hat = (y_s - beta) / gamma
        chex.assert_trees_all_close(x_hat.mean(axes), jnp.zeros(shape[-1]), atol=1e-5)
        chex.assert_trees_all_close(x_hat.var(axes), jnp.ones(shape[-1]), atol=1e-3)
        # Moving averages: momentum 0.9 keeps 90% of the old statistic (PyTorch's momentum 0.1).
        chex.assert_trees_all_close(m_s, 0.9 * mean + 0.1 * x.mean(axes), rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(v_s, 0.9 * var + 0.1 * x.var(axes), rtol=1e-5, atol=1e-6)
        # d/dgamma of sum(w * y) is sum(w * x_hat) over the reduced axes.
        chex.assert_trees_all_close(dgamma_s, jnp.sum(w * x_hat, axes), rtol=1e-4, atol=1e-4)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*SHAPES)
    def test_eval_mode_equals_nnx_batchnorm(self, shape):
        x, gamma, beta, mean, var, _ = _inputs(shape, seed=1)
        layer = _library_layer(gamma, beta, mean, var)
        layer.eval()
        graphdef, state = nnx.split(layer)

        def both(x, state):
            y_s, m_s, v_s = batch_norm(x, gamma, beta, mean, var, training=False)
            layer = nnx.merge(graphdef, state)
            return (y_s, m_s, v_s), (layer(x), layer.mean[...], layer.var[...])

        scratch, library = self.variant(both)(x, state)
        chex.assert_trees_all_close(scratch, library, rtol=1e-5, atol=1e-5)
        chex.assert_trees_all_equal(scratch[1:], (mean, var))  # untouched in eval mode
        expected = gamma * (x - mean) / jnp.sqrt(var + 1e-5) + beta
        chex.assert_trees_all_close(scratch[0], expected, rtol=1e-5, atol=1e-5)

    def test_moving_stats_carry_no_gradient(self):
        x, gamma, beta, mean, var, _ = _inputs((8, 3))
        grad = jax.grad(lambda x: jnp.sum(batch_norm(x, gamma, beta, mean, var, training=True)[1]))
        chex.assert_trees_all_equal(grad(x), jnp.zeros_like(x))

    def test_rejects_1d_input(self):
        with pytest.raises(ValueError, match="features last"):
            batch_norm(
                jnp.ones(3), jnp.ones(3), jnp.zeros(3), jnp.zeros(3), jnp.ones(3), training=True
            )


class BatchNormScratchLayerTest(chex.TestCase):
    def _pair(self, c, seed=0):
        _, gamma, beta, mean, var, _ = _inputs((2, c), seed)
        scratch = BatchNormScratch(c, rngs=nnx.Rngs(0))
        scratch.gamma.set_value(gamma)
        scratch.beta.set_value(beta)
        scratch.moving_mean.set_value(mean)
        scratch.moving_var.set_value(var)
        return scratch, _library_layer(gamma, beta, mean, var)

    def test_variables_and_defaults(self):
        layer = BatchNormScratch(7)
        params = nnx.state(layer, nnx.Param)
        stats = nnx.state(layer, nnx.BatchStat)
        assert set(params) == {"gamma", "beta"} and set(stats) == {"moving_mean", "moving_var"}
        chex.assert_trees_all_equal(
            (layer.gamma[...], layer.beta[...], layer.moving_mean[...], layer.moving_var[...]),
            (jnp.ones(7), jnp.zeros(7), jnp.zeros(7), jnp.ones(7)),
        )
        library = nnx.BatchNorm(7, momentum=0.9, rngs=nnx.Rngs(0))
        assert (layer.eps, layer.momentum) == (library.epsilon, library.momentum) == (1e-5, 0.9)
        assert layer.use_running_average is False  # a new layer trains, like nnx.BatchNorm

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*SHAPES)
    def test_layer_equals_nnx_batchnorm_over_steps(self, shape):
        scratch, library = self._pair(shape[-1])
        xs = [_inputs(shape, seed)[0] for seed in (3, 4, 5)]
        g_s, st_s = nnx.split(scratch)
        g_l, st_l = nnx.split(library)

        def run(st_s, st_l, xs):
            s, lib = nnx.merge(g_s, st_s), nnx.merge(g_l, st_l)
            outs = [(s(x), lib(x)) for x in xs]  # training mode: the statistics move
            s.eval()
            lib.eval()
            outs.append((s(xs[0]), lib(xs[0])))
            stats = (s.moving_mean[...], s.moving_var[...]), (lib.mean[...], lib.var[...])
            return outs, stats

        outs, (stats_s, stats_l) = self.variant(run)(st_s, st_l, xs)
        for y_s, y_l in outs:
            chex.assert_trees_all_close(y_s, y_l, rtol=1e-5, atol=1e-5)
        chex.assert_trees_all_close(stats_s, stats_l, rtol=1e-5, atol=1e-6)

    def test_train_and_eval_modes(self):
        layer, _ = self._pair(4)
        x = _inputs((6, 2, 2, 4), seed=7)[0]
        before = nnx.clone(nnx.state(layer, nnx.BatchStat))

        layer.eval()
        assert layer.use_running_average is True
        y_eval = layer(x)
        chex.assert_trees_all_equal(nnx.state(layer, nnx.BatchStat), before)  # no update

        layer.train()
        assert layer.use_running_average is False
        y_train = layer(x)
        after = nnx.state(layer, nnx.BatchStat)
        assert not np.allclose(y_train, y_eval)
        assert not np.allclose(after["moving_mean"][...], before["moving_mean"][...])
        assert not np.allclose(after["moving_var"][...], before["moving_var"][...])

        # The call-time flag overrides the mode; nnx.view switches it like nnx.BatchNorm's.
        y_override = layer(x, use_running_average=True)
        layer.eval()
        chex.assert_trees_all_equal(y_override, layer(x))
        assert nnx.view(layer, use_running_average=False).use_running_average is False
        assert layer.use_running_average is True

    def test_rejects_wrong_feature_count(self):
        with pytest.raises(ValueError, match="3 features"):
            BatchNormScratch(4)(jnp.ones((2, 3)))


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
        metrics = steps.eval_step(state, batch)
        chex.assert_trees_all_equal(jax.device_get(state.model_state), before)
        state, metrics = steps.train_step(state, batch)
        chex.assert_tree_all_finite(metrics)
        after = jax.device_get(state.model_state)
        for name in ("bn1", "bn2", "bn3", "bn4"):
            assert not np.allclose(
                after[name]["moving_mean"][...], before[name]["moving_mean"][...]
            )
