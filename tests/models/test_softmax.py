"""§4.4/§4.5 softmax regression: shapes, parameter count, scratch == concise."""

import chex
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from d2ljax.models import SoftmaxRegression, SoftmaxRegressionScratch
from d2ljax.models.softmax import scratch_loss


def _num_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _images(batch=8, seed=0):
    kx, ky = jax.random.split(jax.random.key(seed))
    x_BHWC = jax.random.uniform(kx, (batch, 28, 28, 1))
    y_B = jax.random.randint(ky, (batch,), 0, 10)
    return x_BHWC, y_B


class SoftmaxRegressionTest(chex.TestCase):
    def test_shapes_and_param_counts(self):
        x_BHWC, _ = _images(batch=4)
        for model in (
            SoftmaxRegressionScratch(rngs=nnx.Rngs(0)),
            SoftmaxRegression(rngs=nnx.Rngs(0)),
        ):
            chex.assert_shape(model(x_BHWC), (4, 10))
            assert _num_params(model) == 784 * 10 + 10 == 7850

    def test_scratch_init(self):
        model = SoftmaxRegressionScratch(sigma=0.01, rngs=nnx.Rngs(0))
        assert abs(float(jnp.std(model.W[...])) - 0.01) < 5e-4
        chex.assert_trees_all_equal(model.b[...], jnp.zeros((10,)))

    def test_scratch_loss_is_the_method(self):
        x_BHWC, y_B = _images()
        model = SoftmaxRegressionScratch(rngs=nnx.Rngs(0))
        logits_BC = model(x_BHWC)
        chex.assert_trees_all_equal(model.loss(logits_BC, y_B), scratch_loss(logits_BC, y_B))

    @chex.variants(with_jit=True, without_jit=True)
    def test_scratch_equals_concise(self):
        x_BHWC, y_B = _images()
        concise = SoftmaxRegression(rngs=nnx.Rngs(1))
        concise.net.bias.set_value(0.1 * jax.random.normal(jax.random.key(9), (10,)))
        scratch = SoftmaxRegressionScratch(rngs=nnx.Rngs(2))
        scratch.W.set_value(concise.net.kernel[...])
        scratch.b.set_value(concise.net.bias[...])
        g_s, p_s = nnx.split(scratch, nnx.Param)
        g_c, p_c = nnx.split(concise, nnx.Param)

        def run(p_s, p_c, x_BHWC, y_B):
            def loss_s(p):
                return scratch_loss(nnx.merge(g_s, p)(x_BHWC), y_B)

            def loss_c(p):
                logits_BC = nnx.merge(g_c, p)(x_BHWC)
                return optax.softmax_cross_entropy_with_integer_labels(logits_BC, y_B).mean()

            out_s, out_c = nnx.merge(g_s, p_s)(x_BHWC), nnx.merge(g_c, p_c)(x_BHWC)
            return out_s, out_c, jax.value_and_grad(loss_s)(p_s), jax.value_and_grad(loss_c)(p_c)

        out_s, out_c, (l_s, grad_s), (l_c, grad_c) = self.variant(run)(p_s, p_c, x_BHWC, y_B)
        chex.assert_trees_all_close(out_s, out_c, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(l_s, l_c, rtol=1e-5)
        grad_s, grad_c = nnx.to_pure_dict(grad_s), nnx.to_pure_dict(grad_c)
        chex.assert_trees_all_close(grad_s["W"], grad_c["net"]["kernel"], rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(grad_s["b"], grad_c["net"]["bias"], rtol=1e-5, atol=1e-6)

    def test_flattens_any_image_shape(self):
        model = SoftmaxRegression(num_outputs=3, num_inputs=2 * 4 * 4, rngs=nnx.Rngs(0))
        chex.assert_shape(model(jnp.ones((5, 4, 4, 2))), (5, 3))
