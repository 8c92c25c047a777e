"""§5.2/§5.4/§5.6 MLPs: shapes, parameter counts, scratch == concise, dropout modes, stability."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized
from flax import nnx

from d2ljax.models import (
    MLP,
    DropoutMLP,
    DropoutMLPScratch,
    MLPScratch,
    deep_mlp,
    layer_gradient_norms,
    matrix_product_explosion,
)
from d2ljax.nn.layers import Dropout

MLP_PARAMS = 784 * 256 + 256 + 256 * 10 + 10
DROPOUT_MLP_PARAMS = 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10


def _num_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _images(batch=8, seed=0):
    kx, ky = jax.random.split(jax.random.key(seed))
    x_BHWC = jax.random.uniform(kx, (batch, 28, 28, 1))
    y_B = jax.random.randint(ky, (batch,), 0, 10)
    return x_BHWC, y_B


def _rngs(seed=0):
    return nnx.Rngs(params=seed, dropout=seed + 1)


def _ce(logits_BC, y_B):
    return optax.softmax_cross_entropy_with_integer_labels(logits_BC, y_B).mean()


def _compare(variant, scratch, concise, x_BHWC, y_B):
    """Outputs, losses and gradients of both models, computed by ``variant`` (jit or not)."""
    g_s, p_s, r_s = nnx.split(scratch, nnx.Param, ...)
    g_c, p_c, r_c = nnx.split(concise, nnx.Param, ...)

    def run(p_s, p_c, x_BHWC, y_B):
        def loss_s(p):
            return _ce(nnx.merge(g_s, p, r_s)(x_BHWC), y_B)

        def loss_c(p):
            return _ce(nnx.merge(g_c, p, r_c)(x_BHWC), y_B)

        out_s, out_c = nnx.merge(g_s, p_s, r_s)(x_BHWC), nnx.merge(g_c, p_c, r_c)(x_BHWC)
        return out_s, out_c, jax.value_and_grad(loss_s)(p_s), jax.value_and_grad(loss_c)(p_c)

    out_s, out_c, (l_s, grad_s), (l_c, grad_c) = variant(run)(p_s, p_c, x_BHWC, y_B)
    return out_s, out_c, l_s, l_c, nnx.to_pure_dict(grad_s), nnx.to_pure_dict(grad_c)


class MLPTest(chex.TestCase):
    def test_shapes_and_param_counts(self):
        x_BHWC, _ = _images(batch=4)
        for model, count in (
            (MLPScratch(rngs=_rngs()), MLP_PARAMS),
            (MLP(rngs=_rngs()), MLP_PARAMS),
            (DropoutMLPScratch(rngs=_rngs()), DROPOUT_MLP_PARAMS),
            (DropoutMLP(rngs=_rngs()), DROPOUT_MLP_PARAMS),
        ):
            chex.assert_shape(model(x_BHWC), (4, 10))
            assert _num_params(model) == count
        assert MLP_PARAMS == 203_530 and DROPOUT_MLP_PARAMS == 269_322

    def test_scratch_init(self):
        model = MLPScratch(sigma=0.01, rngs=_rngs())
        for w in (model.W1, model.W2):
            assert abs(float(jnp.std(w[...])) - 0.01) < 1e-3
        chex.assert_trees_all_equal(model.b1[...], jnp.zeros((256,)))
        chex.assert_trees_all_equal(model.b2[...], jnp.zeros((10,)))

    @chex.variants(with_jit=True, without_jit=True)
    def test_mlp_scratch_equals_concise(self):
        x_BHWC, y_B = _images()
        concise = MLP(num_hiddens=32, rngs=_rngs(1))
        concise.hidden.bias.set_value(0.1 * jax.random.normal(jax.random.key(7), (32,)))
        concise.output.bias.set_value(0.1 * jax.random.normal(jax.random.key(8), (10,)))
        scratch = MLPScratch(num_hiddens=32, rngs=_rngs(2))
        scratch.W1.set_value(concise.hidden.kernel[...])
        scratch.b1.set_value(concise.hidden.bias[...])
        scratch.W2.set_value(concise.output.kernel[...])
        scratch.b2.set_value(concise.output.bias[...])
        out_s, out_c, l_s, l_c, grad_s, grad_c = _compare(
            self.variant, scratch, concise, x_BHWC, y_B
        )
        chex.assert_trees_all_close(out_s, out_c, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(l_s, l_c, rtol=1e-5)
        mapped = {
            "W1": grad_c["hidden"]["kernel"],
            "b1": grad_c["hidden"]["bias"],
            "W2": grad_c["output"]["kernel"],
            "b2": grad_c["output"]["bias"],
        }
        chex.assert_trees_all_close(grad_s, mapped, rtol=1e-5, atol=1e-6)

    def _dropout_pair(self, **kwargs):
        concise = DropoutMLP(num_hiddens_1=64, num_hiddens_2=32, **kwargs, rngs=_rngs(1))
        scratch = DropoutMLPScratch(num_hiddens_1=64, num_hiddens_2=32, **kwargs, rngs=_rngs(2))
        # Same layer names in both, so the parameters copy over as one state.
        nnx.update(scratch, nnx.state(concise, nnx.Param))
        return scratch, concise

    @chex.variants(with_jit=True, without_jit=True)
    def test_dropout_mlp_scratch_equals_concise_in_eval_mode(self):
        x_BHWC, y_B = _images()
        scratch, concise = self._dropout_pair()
        scratch.eval()
        concise.eval()
        out_s, out_c, l_s, l_c, grad_s, grad_c = _compare(
            self.variant, scratch, concise, x_BHWC, y_B
        )
        chex.assert_trees_all_close(out_s, out_c, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(l_s, l_c, rtol=1e-5)
        chex.assert_trees_all_close(grad_s, grad_c, rtol=1e-5, atol=1e-6)

    def test_dropout_mlp_rate_zero_equals_concise_in_train_mode(self):
        x_BHWC, _ = _images()
        scratch, concise = self._dropout_pair(dropout_1=0.0, dropout_2=0.0)
        chex.assert_trees_all_close(scratch(x_BHWC), concise(x_BHWC), rtol=1e-5, atol=1e-6)

    def test_dropout_modes(self):
        x_BHWC, _ = _images()
        for cls in (DropoutMLPScratch, DropoutMLP):
            model = cls(rngs=_rngs())
            model.eval()
            eval_out = model(x_BHWC)
            chex.assert_trees_all_equal(model(x_BHWC), eval_out)  # deterministic
            model.train()
            train_1, train_2 = model(x_BHWC), model(x_BHWC)
            assert not np.allclose(train_1, eval_out)
            assert not np.allclose(train_1, train_2)  # a fresh mask every call
            nnx.reseed(model, dropout=3)
            again = model(x_BHWC)
            nnx.reseed(model, dropout=3)
            chex.assert_trees_all_equal(model(x_BHWC), again)

    def test_scratch_dropout_layers_have_own_streams(self):
        model = DropoutMLPScratch(rngs=_rngs())
        assert isinstance(model.dropout1, Dropout)
        assert model.dropout1.rngs is not model.dropout2.rngs
        h_BH = jnp.ones((16, 256))
        nnx.reseed(model, dropout=0)
        # reseed gives each stream a different key, so the two layers' masks differ.
        assert not np.array_equal(model.dropout1(h_BH), model.dropout2(h_BH))

    def test_scratch_dropout_in_a_pure_jitted_train_step(self):
        """The training core's pattern: split, merge inside jax.grad, reseed, split again."""
        x_BHWC, y_B = _images()
        model = DropoutMLPScratch(num_hiddens_1=32, num_hiddens_2=16, rngs=_rngs())
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        assert sum(p.size for p in jax.tree.leaves(params)) == 784 * 32 + 32 + 32 * 16 + 16 + 170

        @jax.jit
        def step(params, rest, key):
            def loss_of(params):
                # copy=True: the merged variables must belong to this (grad) trace, or mutating
                # the rng key/count raises TraceContextError.
                m = nnx.merge(graphdef, params, rest, copy=True)
                nnx.reseed(m, dropout=key)
                loss = _ce(m(x_BHWC), y_B)
                return loss, nnx.split(m, nnx.Param, ...)[2]

            (loss, rest), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
            return loss, grads, rest

        l0, g0, _ = step(params, rest, jax.random.key(0))
        l0_again, g0_again, _ = step(params, rest, jax.random.key(0))
        l1, _, _ = step(params, rest, jax.random.key(1))
        chex.assert_trees_all_equal((l0, g0), (l0_again, g0_again))
        assert float(l0) != float(l1)
        chex.assert_tree_all_finite(g0)


class StabilityTest(parameterized.TestCase):
    def test_deep_mlp(self):
        model = deep_mlp(4, 8, "relu", "he", rngs=nnx.Rngs(0))
        chex.assert_shape(model(jnp.ones((3, 8))), (3, 8))
        assert _num_params(model) == 4 * 8 * 8
        with pytest.raises(ValueError, match="activation"):
            deep_mlp(2, 4, "swish", rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match="init"):
            deep_mlp(2, 4, "relu", "orthogonal", rngs=nnx.Rngs(0))

    @parameterized.parameters("normal", "xavier")
    def test_sigmoid_gradients_vanish(self, init):
        norms = layer_gradient_norms(depth=10, width=64, activation="sigmoid", init=init)
        assert len(norms) == 10 and all(math.isfinite(n) and n > 0 for n in norms)
        assert norms[0] < norms[-1] / 10  # first layer gets far less gradient than the last
        assert norms[0] < norms[4] < norms[-1]

    def test_sigmoid_xavier_vanishes_by_orders_of_magnitude(self):
        norms = layer_gradient_norms(depth=10, width=64, activation="sigmoid", init="xavier")
        assert norms[0] < 1e-4 * norms[-1]

    def test_relu_normal_explodes_he_does_not(self):
        exploding = layer_gradient_norms(depth=10, width=64, activation="relu", init="normal")
        stable = layer_gradient_norms(depth=10, width=64, activation="relu", init="he")
        assert all(math.isfinite(n) for n in exploding + stable)
        assert min(exploding) > 1e5 * max(stable)
        assert max(stable) / min(stable) < 10

    def test_matrix_product_explodes(self):
        norm_100 = matrix_product_explosion(n=100, seed=0)
        assert math.isfinite(norm_100) and norm_100 > 1e15
        # Exponential growth: ten times more products, ~ten times more orders of magnitude.
        assert matrix_product_explosion(n=10, seed=0) < 1e6
        assert matrix_product_explosion(n=100, seed=0) == norm_100  # deterministic in the seed
