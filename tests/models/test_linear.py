"""§3.4/§3.5/§3.7 linear regression: shapes, init, weight decay, scratch == concise."""

import chex
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from d2ljax.models import LinearRegression, LinearRegressionScratch
from d2ljax.nn import functional as F


def _num_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _data(num_inputs=5, batch=16, seed=0):
    kx, ky = jax.random.split(jax.random.key(seed))
    X_BD = jax.random.normal(kx, (batch, num_inputs))
    y_B1 = jax.random.normal(ky, (batch, 1))
    return X_BD, y_B1


class LinearRegressionTest(chex.TestCase):
    def test_shapes_and_param_counts(self):
        X_BD, _ = _data(num_inputs=7, batch=3)
        for model in (
            LinearRegressionScratch(7, rngs=nnx.Rngs(0)),
            LinearRegression(7, rngs=nnx.Rngs(0)),
        ):
            chex.assert_shape(model(X_BD), (3, 1))
            assert _num_params(model) == 7 + 1

    def test_book_init(self):
        scratch = LinearRegressionScratch(10_000, sigma=0.01, rngs=nnx.Rngs(0))
        concise = LinearRegression(10_000, rngs=nnx.Rngs(0))
        for w, b in ((scratch.w, scratch.b), (concise.net.kernel, concise.net.bias)):
            assert abs(float(jnp.std(w[...])) - 0.01) < 5e-4
            chex.assert_trees_all_equal(b[...], jnp.zeros((1,)))

    def test_weight_decay_penalty(self):
        model = LinearRegressionScratch(4, lambd=3.0, rngs=nnx.Rngs(0))
        w = model.w[...]
        chex.assert_trees_all_close(model.regularization(), 3.0 * jnp.sum(w**2) / 2, rtol=1e-6)
        # Only the weight is decayed: the penalty's gradient is lambd * w, and 0 for the bias.
        graphdef, params = nnx.split(model, nnx.Param)
        grads = jax.grad(lambda p: nnx.merge(graphdef, p).regularization())(params)
        grads = nnx.to_pure_dict(grads)
        chex.assert_trees_all_close(grads["w"], 3.0 * w, rtol=1e-6)
        chex.assert_trees_all_equal(grads["b"], jnp.zeros((1,)))
        no_decay = LinearRegressionScratch(4, rngs=nnx.Rngs(0))
        chex.assert_trees_all_equal(no_decay.regularization(), jnp.zeros(()))
        concise = LinearRegression(4, weight_decay=3.0, rngs=nnx.Rngs(0))
        chex.assert_trees_all_close(
            concise.regularization(), 3.0 * F.l2_penalty(concise.net.kernel[...]), rtol=1e-6
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_scratch_equals_concise(self):
        X_BD, y_B1 = _data()
        concise = LinearRegression(5, rngs=nnx.Rngs(1))
        # Give the concise bias a nonzero value so the copy is really checked.
        concise.net.bias.set_value(jnp.array([0.3]))
        scratch = LinearRegressionScratch(5, rngs=nnx.Rngs(2))
        scratch.w.set_value(concise.net.kernel[...])
        scratch.b.set_value(concise.net.bias[...])
        g_s, p_s = nnx.split(scratch, nnx.Param)
        g_c, p_c = nnx.split(concise, nnx.Param)

        def run(p_s, p_c, X_BD, y_B1):
            def loss_s(p):
                return F.squared_loss(nnx.merge(g_s, p)(X_BD), y_B1).mean()

            def loss_c(p):
                return optax.l2_loss(nnx.merge(g_c, p)(X_BD), y_B1).mean()

            out_s, out_c = nnx.merge(g_s, p_s)(X_BD), nnx.merge(g_c, p_c)(X_BD)
            l_s, grad_s = jax.value_and_grad(loss_s)(p_s)
            l_c, grad_c = jax.value_and_grad(loss_c)(p_c)
            return out_s, out_c, l_s, l_c, grad_s, grad_c

        out_s, out_c, l_s, l_c, grad_s, grad_c = self.variant(run)(p_s, p_c, X_BD, y_B1)
        chex.assert_trees_all_close(out_s, out_c, rtol=1e-6, atol=1e-6)
        chex.assert_trees_all_close(l_s, l_c, rtol=1e-6)
        grad_s, grad_c = nnx.to_pure_dict(grad_s), nnx.to_pure_dict(grad_c)
        chex.assert_trees_all_close(grad_s["w"], grad_c["net"]["kernel"], rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(grad_s["b"], grad_c["net"]["bias"], rtol=1e-5, atol=1e-6)
