"""Scratch building blocks (§3.4, §3.7, §4.4, §5.1, §5.6) against their library twins."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized
from flax import nnx

from d2ljax.nn import functional as F
from d2ljax.nn.layers import Dropout


def _logits(key, shape=(8, 10), scale=3.0):
    return scale * jax.random.normal(key, shape, jnp.float32)


class SoftmaxTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_rows_sum_to_one_and_match_jax(self):
        logits_BC = _logits(jax.random.key(0))
        probs_BC = self.variant(F.softmax)(logits_BC)
        chex.assert_shape(probs_BC, logits_BC.shape)
        chex.assert_trees_all_close(probs_BC.sum(-1), jnp.ones(8), atol=1e-6)
        chex.assert_trees_all_close(probs_BC, jax.nn.softmax(logits_BC), rtol=1e-6, atol=1e-7)

    @chex.variants(with_jit=True, without_jit=True)
    def test_stable_for_large_logits(self):
        logits = jnp.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 1000.0]])
        probs = self.variant(F.softmax)(logits)
        chex.assert_tree_all_finite(probs)
        chex.assert_trees_all_close(
            probs, jnp.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]), atol=1e-6
        )
        # The book's unshifted exp(x) / sum(exp(x)) overflows here.
        naive = jnp.exp(logits) / jnp.exp(logits).sum(-1, keepdims=True)
        assert not np.isfinite(np.asarray(naive)).all()

    def test_other_axis(self):
        logits = _logits(jax.random.key(1), (4, 5, 6))
        chex.assert_trees_all_close(
            F.softmax(logits, axis=1), jax.nn.softmax(logits, axis=1), rtol=1e-6, atol=1e-7
        )

    def test_logsumexp_and_log_softmax(self):
        logits = _logits(jax.random.key(2), scale=50.0)
        chex.assert_trees_all_close(
            F.logsumexp(logits), jax.scipy.special.logsumexp(logits, axis=-1), rtol=1e-6
        )
        chex.assert_trees_all_close(
            F.log_softmax(logits), jax.nn.log_softmax(logits), rtol=1e-5, atol=1e-5
        )

    def test_softmax_gradient_matches_jax(self):
        logits = _logits(jax.random.key(3))
        w = jax.random.normal(jax.random.key(4), logits.shape)
        ours = jax.grad(lambda z: jnp.sum(w * F.softmax(z)))(logits)
        ref = jax.grad(lambda z: jnp.sum(w * jax.nn.softmax(z)))(logits)
        chex.assert_trees_all_close(ours, ref, rtol=1e-5, atol=1e-6)


class CrossEntropyTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_optax_values_and_grads(self):
        logits_BC = _logits(jax.random.key(0))
        y_B = jax.random.randint(jax.random.key(1), (8,), 0, 10)

        def both(logits_BC):
            def ours(z):
                return F.softmax_cross_entropy(z, y_B).mean()

            def scratch(z):
                return F.cross_entropy_from_probs(F.softmax(z), y_B).mean()

            def ref(z):
                return optax.softmax_cross_entropy_with_integer_labels(z, y_B).mean()

            return [jax.value_and_grad(f)(logits_BC) for f in (ours, scratch, ref)]

        ours, scratch, ref = self.variant(both)(logits_BC)
        chex.assert_trees_all_close(ours, ref, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(scratch, ref, rtol=1e-5, atol=1e-6)

    def test_per_example_shape(self):
        logits = _logits(jax.random.key(0))
        y = jnp.arange(8) % 10
        chex.assert_shape(F.softmax_cross_entropy(logits, y), (8,))
        chex.assert_shape(F.cross_entropy_from_probs(F.softmax(logits), y), (8,))

    def test_book_example(self):
        # §4.4.4: y_hat = [[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]], y = [0, 2].
        y_hat = jnp.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
        y = jnp.array([0, 2])
        chex.assert_trees_all_close(F.cross_entropy_from_probs(y_hat, y).mean(), 1.4979, atol=1e-4)

    def test_equal_where_finite_and_stable_where_not(self):
        logits = jnp.array([[0.0, 200.0, -200.0], [5.0, 1.0, 2.0]])
        y = jnp.array([2, 0])
        stable = F.softmax_cross_entropy(logits, y)
        scratch = F.cross_entropy_from_probs(F.softmax(logits), y)
        chex.assert_tree_all_finite(stable)
        chex.assert_trees_all_close(stable[0], 400.0, rtol=1e-6)
        assert np.isinf(np.asarray(scratch[0]))  # exp(-400) underflows to 0, log(0) = -inf
        chex.assert_trees_all_close(scratch[1], stable[1], rtol=1e-5)


class ElementwiseTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_relu_values_and_grads(self):
        x = jnp.array([-2.0, -0.5, 0.0, 0.5, 3.0])
        relu = self.variant(F.relu)
        chex.assert_trees_all_close(relu(x), jax.nn.relu(x))
        grad = jax.vmap(jax.grad(F.relu))(x)
        chex.assert_trees_all_close(grad, jax.vmap(jax.grad(jax.nn.relu))(x))
        chex.assert_trees_all_close(grad, jnp.array([0.0, 0.0, 0.0, 1.0, 1.0]))

    def test_squared_loss(self):
        y_hat = jnp.array([[1.0], [2.0], [4.0]])
        y = jnp.array([0.0, 2.0, 1.0])  # reshaped like y_hat, as in the book
        chex.assert_trees_all_close(F.squared_loss(y_hat, y), jnp.array([[0.5], [0.0], [4.5]]))
        chex.assert_trees_all_close(
            F.squared_loss(y_hat, y), optax.l2_loss(y_hat, y.reshape(y_hat.shape))
        )

    def test_l2_penalty(self):
        w = jnp.array([[1.0, -2.0], [3.0, 0.5]])
        chex.assert_trees_all_close(F.l2_penalty(w), (1 + 4 + 9 + 0.25) / 2)
        chex.assert_trees_all_close(jax.grad(F.l2_penalty)(w), w)

    def test_linreg(self):
        X = jnp.arange(6.0).reshape(3, 2)
        w = jnp.array([[2.0], [-3.4]])
        b = jnp.array([4.2])
        out = F.linreg(X, w, b)
        chex.assert_shape(out, (3, 1))
        chex.assert_trees_all_close(out, X @ w + b)


class DropoutFunctionTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_rate_zero_and_one(self):
        x = jax.random.normal(jax.random.key(0), (16, 32))
        key = jax.random.key(1)
        chex.assert_trees_all_equal(self.variant(lambda x, k: F.dropout(x, 0.0, k))(x, key), x)
        chex.assert_trees_all_equal(
            self.variant(lambda x, k: F.dropout(x, 1.0, k))(x, key), jnp.zeros_like(x)
        )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.1, 0.5, 0.9)
    def test_fraction_dropped_and_expectation(self, rate):
        x = jnp.ones((1000, 1000))
        out = self.variant(lambda x, k: F.dropout(x, rate, k))(x, jax.random.key(2))
        dropped = float(jnp.mean(out == 0))
        assert abs(dropped - rate) < 0.005, (dropped, rate)
        kept = out[out != 0]
        chex.assert_trees_all_close(kept, jnp.full_like(kept, 1 / (1 - rate)), rtol=1e-6)
        assert abs(float(out.mean()) - 1.0) < 0.02

    def test_deterministic_is_identity(self):
        x = jax.random.normal(jax.random.key(0), (4, 5))
        chex.assert_trees_all_equal(F.dropout(x, 0.5, jax.random.key(1), deterministic=True), x)
        chex.assert_trees_all_equal(F.dropout(x, 0.5, None, deterministic=True), x)

    def test_same_key_same_mask(self):
        x = jnp.ones((64, 64))
        a = F.dropout(x, 0.5, jax.random.key(3))
        b = F.dropout(x, 0.5, jax.random.key(3))
        c = F.dropout(x, 0.5, jax.random.key(4))
        chex.assert_trees_all_equal(a, b)
        assert not np.array_equal(np.asarray(a), np.asarray(c))

    def test_bad_arguments(self):
        x = jnp.ones((3,))
        with pytest.raises(ValueError, match="rate"):
            F.dropout(x, 1.5, jax.random.key(0))
        with pytest.raises(ValueError, match="key"):
            F.dropout(x, 0.5, None)


class DropoutLayerTest(chex.TestCase):
    def _layer(self, rate=0.5, seed=0):
        return Dropout(rate, rngs=nnx.Rngs(params=seed, dropout=seed + 1))

    def test_train_eval_switch(self):
        layer = self._layer()
        x = jnp.ones((32, 32))
        assert layer.deterministic is False  # training mode by default, like nnx.Dropout
        out = layer(x)
        assert float(jnp.mean(out == 0)) > 0.3
        layer.eval()
        assert layer.deterministic is True
        chex.assert_trees_all_equal(layer(x), x)
        layer.train()
        assert not np.array_equal(np.asarray(layer(x)), np.asarray(x))

    def test_nnx_view(self):
        layer = self._layer()
        x = jnp.ones((8, 8))
        chex.assert_trees_all_equal(nnx.view(layer, deterministic=True)(x), x)
        assert layer.deterministic is False

    def test_call_overrides(self):
        layer = self._layer()
        x = jnp.ones((8, 8))
        chex.assert_trees_all_equal(layer(x, deterministic=True), x)
        chex.assert_trees_all_equal(
            layer(x, key=jax.random.key(5)), F.dropout(x, 0.5, jax.random.key(5))
        )

    def test_fresh_mask_per_call_and_reseed(self):
        layer = self._layer()
        x = jnp.ones((32, 32))
        nnx.reseed(layer, dropout=7)
        first, second = layer(x), layer(x)
        assert not np.array_equal(np.asarray(first), np.asarray(second))
        nnx.reseed(layer, dropout=7)
        chex.assert_trees_all_equal(layer(x), first)
        chex.assert_trees_all_equal(layer(x), second)

    def test_rng_state_is_split_out_and_advances_under_jit(self):
        layer = self._layer()
        graphdef, params, rest = nnx.split(layer, nnx.Param, ...)
        assert jax.tree.leaves(params) == []
        leaves = jax.tree.leaves(rest, is_leaf=lambda v: isinstance(v, nnx.Variable))
        types = {type(v).__name__ for v in leaves}
        assert types == {"RngKey", "RngCount"}

        @jax.jit
        def apply(rest, x):
            model = nnx.merge(graphdef, params, rest)
            out = model(x)
            return out, nnx.state(model, ...)

        x = jnp.ones((16, 16))
        out1, rest1 = apply(rest, x)
        out2, _ = apply(rest1, x)
        out1_again, _ = apply(rest, x)
        assert int(rest1["rngs"]["count"][...]) == 1
        assert not np.array_equal(np.asarray(out1), np.asarray(out2))
        chex.assert_trees_all_equal(out1, out1_again)

    def test_rate_edge_cases_and_errors(self):
        x = jnp.ones((4, 4))
        chex.assert_trees_all_equal(Dropout(0.0)(x), x)  # no rngs needed
        chex.assert_trees_all_equal(Dropout(1.0)(x), jnp.zeros_like(x))
        with pytest.raises(ValueError, match="rng stream"):
            Dropout(0.5)(x)
        chex.assert_trees_all_equal(Dropout(0.5, deterministic=True)(x), x)
        with pytest.raises(ValueError, match="rate"):
            Dropout(-0.1)
        with pytest.raises(TypeError):
            Dropout(0.5, rngs=0)

    def test_own_fork_of_stream(self):
        rngs = nnx.Rngs(params=0, dropout=1)
        a, b = Dropout(0.5, rngs=rngs), Dropout(0.5, rngs=rngs)
        assert a.rngs is not b.rngs
        x = jnp.ones((32, 32))
        assert not np.array_equal(np.asarray(a(x)), np.asarray(b(x)))
        stream_layer = Dropout(0.5, rngs=nnx.Rngs(dropout=3)["dropout"])
        chex.assert_shape(stream_layer(x), x.shape)
