"""§8.5 batch normalization from scratch: ``batch_norm`` and ``BatchNormScratch`` equal
``nnx.BatchNorm`` (train and eval modes, moving statistics, gradients)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from flax import nnx

from d2ljax.nn.batch_norm import BatchNormScratch, batch_norm

SHAPES = (("dense_BD", (16, 5)), ("conv_BHWC", (4, 3, 3, 5)))


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
