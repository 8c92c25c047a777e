"""§7.6 LeNet: shapes, parameter count, init, every implementation equal, clear input errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.models import get_model, list_models
from d2ljax.models.lenet import LeNet, LeNetScratch, forward_in_blocked_cpu_layout, layer_shapes
from d2ljax.train import TrainState, make_steps, summarize

LENET_PARAMS = (
    (5 * 5 * 1 * 6 + 6)
    + (5 * 5 * 6 * 16 + 16)
    + (16 * 5 * 5 * 120 + 120)
    + (120 * 84 + 84)
    + (84 * 10 + 10)
)

# The book's layer summary (§7.6.1), in NHWC.
BOOK_LAYER_SHAPES = [
    ("conv1", (1, 28, 28, 6)),
    ("sigmoid1", (1, 28, 28, 6)),
    ("pool1", (1, 14, 14, 6)),
    ("conv2", (1, 10, 10, 16)),
    ("sigmoid2", (1, 10, 10, 16)),
    ("pool2", (1, 5, 5, 16)),
    ("flatten", (1, 400)),
    ("dense1", (1, 120)),
    ("sigmoid3", (1, 120)),
    ("dense2", (1, 84)),
    ("sigmoid4", (1, 84)),
    ("dense3", (1, 10)),
]

IMPLS = [
    dict(conv_impl="blocked"),
    dict(conv_impl="toeplitz", pool_impl="reshape"),
    dict(conv_impl="xla", pool_impl="nnx"),
    dict(conv_impl="scratch", pool_impl="scratch"),
]


def _num_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _images(batch=4, seed=0):
    kx, ky = jax.random.split(jax.random.key(seed))
    return jax.random.uniform(kx, (batch, 28, 28, 1)), jax.random.randint(ky, (batch,), 0, 10)


def _with_random_biases(model, seed=7):
    """Zero biases would hide a bias that is added in the wrong place."""
    for i, layer in enumerate((model.conv1, model.conv2, model.dense1, model.dense2, model.dense3)):
        key = jax.random.fold_in(jax.random.key(seed), i)
        layer.bias.set_value(0.5 * jax.random.normal(key, layer.bias.shape))
    return model


class LeNetTest(chex.TestCase):
    def test_parameter_count(self):
        assert LENET_PARAMS == 61_706
        for kwargs in IMPLS:
            assert _num_params(LeNet(**kwargs, rngs=nnx.Rngs(0))) == LENET_PARAMS
        assert _num_params(LeNetScratch(rngs=nnx.Rngs(0))) == LENET_PARAMS
        assert _num_params(LeNet(num_classes=7, rngs=nnx.Rngs(0))) == LENET_PARAMS - 3 * 85

    def test_output_shapes(self):
        x, _ = _images(batch=5)
        for kwargs in IMPLS:
            chex.assert_shape(LeNet(**kwargs, rngs=nnx.Rngs(0))(x), (5, 10))
        chex.assert_shape(LeNetScratch(rngs=nnx.Rngs(0))(x), (5, 10))
        chex.assert_shape(LeNet(num_classes=3, rngs=nnx.Rngs(0))(x), (5, 3))

    def test_layer_shapes_as_in_the_book(self):
        for model in (LeNet(rngs=nnx.Rngs(0)), LeNetScratch(rngs=nnx.Rngs(0))):
            assert layer_shapes(model, (1, 28, 28, 1)) == BOOK_LAYER_SHAPES
        shapes = layer_shapes(LeNet(rngs=nnx.Rngs(0)), (32, 28, 28, 1))
        assert shapes[-1] == ("dense3", (32, 10))
        # A model without named_layers gets one entry.
        assert layer_shapes(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), (4, 3)) == [("output", (4, 2))]

    def test_xavier_uniform_init_and_zero_biases(self):
        model = LeNet(rngs=nnx.Rngs(0))
        for layer, fan_in, fan_out in (
            (model.conv1, 25 * 1, 25 * 6),
            (model.conv2, 25 * 6, 25 * 16),
            (model.dense1, 400, 120),
            (model.dense2, 120, 84),
            (model.dense3, 84, 10),
        ):
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            w = np.asarray(layer.kernel[...])
            assert np.abs(w).max() <= bound
            if w.size > 1000:  # uniform on [-bound, bound]: std bound / sqrt(3)
                assert abs(w.std() - bound / np.sqrt(3)) < 0.1 * bound
            chex.assert_trees_all_equal(layer.bias[...], jnp.zeros(layer.bias.shape))
        chex.assert_shape(model.conv1.kernel[...], (5, 5, 1, 6))
        chex.assert_shape(model.conv2.kernel[...], (5, 5, 6, 16))

    def test_same_parameter_tree_across_implementations(self):
        trees = [
            jax.tree.map(jnp.shape, nnx.to_pure_dict(nnx.state(m, nnx.Param)))
            for m in (
                *(LeNet(**kw, rngs=nnx.Rngs(0)) for kw in IMPLS),
                LeNetScratch(rngs=nnx.Rngs(0)),
            )
        ]
        for tree in trees[1:]:
            assert tree == trees[0]

    @chex.variants(with_jit=True, without_jit=True)
    def test_all_implementations_equal_outputs_and_gradients(self):
        x, y = _images(batch=6)
        reference = _with_random_biases(LeNet(conv_impl="xla", pool_impl="nnx", rngs=nnx.Rngs(1)))
        params = nnx.state(reference, nnx.Param)
        models = [LeNet(**kw, rngs=nnx.Rngs(2)) for kw in IMPLS if kw["conv_impl"] != "xla"]
        models.append(LeNetScratch(rngs=nnx.Rngs(3)))
        for model in models:
            nnx.update(model, params)

        def outputs_and_grads(params, x, y, graphdef):
            def loss(p):
                logits = nnx.merge(graphdef, p)(x)
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

            (_, logits), grads = jax.value_and_grad(loss, has_aux=True)(params)
            return logits, grads

        run = self.variant(outputs_and_grads, static_argnums=(3,))
        g_ref, p_ref = nnx.split(reference, nnx.Param)
        out_ref, grad_ref = run(p_ref, x, y, g_ref)
        chex.assert_tree_all_finite(grad_ref)
        for model in models:
            g, p = nnx.split(model, nnx.Param)
            out, grad = run(p, x, y, g)
            chex.assert_trees_all_close(out, out_ref, rtol=1e-5, atol=1e-5)
            chex.assert_trees_all_close(
                nnx.to_pure_dict(grad), nnx.to_pure_dict(grad_ref), rtol=1e-4, atol=1e-6
            )

    def test_named_layers_are_the_network_of_call(self):
        """``named_layers`` (what ``layer_shapes`` prints) composes to ``__call__``'s output."""
        x, _ = _images(batch=3)
        for kwargs in IMPLS:
            model = _with_random_biases(LeNet(**kwargs, rngs=nnx.Rngs(0)))
            h = x
            for _, layer in model.named_layers():
                h = layer(h)
            chex.assert_trees_all_close(h, model(x), rtol=1e-5, atol=1e-5)

    def test_blocked_cpu_layout_on_any_implementations_parameters(self):
        """The blocked forward pass reads only the parameters, so it runs any LeNet's."""
        x, _ = _images(batch=3)
        for kwargs in IMPLS:
            model = _with_random_biases(LeNet(**kwargs, rngs=nnx.Rngs(0)))
            chex.assert_trees_all_close(
                forward_in_blocked_cpu_layout(model, x), model(x), rtol=1e-5, atol=1e-5
            )

    def test_wrong_input_shape_is_a_clear_error(self):
        model = LeNet(rngs=nnx.Rngs(0))
        for bad in ((2, 32, 32, 3), (2, 28, 28), (2, 1, 28, 28), (28, 28, 1)):
            with pytest.raises(ValueError, match=r"\[B, 28, 28, 1\]"):
                model(jnp.zeros(bad))
        graphdef, state = nnx.split(model)
        with pytest.raises(ValueError, match=r"got \[2, 32, 32, 3\]"):
            jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, jnp.zeros((2, 32, 32, 3)))
        with pytest.raises(ValueError, match=r"\[B, 28, 28, 1\]"):
            LeNetScratch(rngs=nnx.Rngs(0))(jnp.zeros((2, 32, 32, 3)))
        with pytest.raises(ValueError, match=r"\[B, 28, 28, 1\]"):
            layer_shapes(model, (1, 32, 32, 3))

    def test_bad_options(self):
        with pytest.raises(ValueError, match="conv_impl"):
            LeNet(conv_impl="fft", rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match="pool_impl"):
            LeNet(pool_impl="max", rngs=nnx.Rngs(0))

    def test_auto_picks_blocked_on_cpu(self):
        model = LeNet(rngs=nnx.Rngs(0))
        expected = "blocked" if jax.default_backend() == "cpu" else "xla"
        assert model.conv_impl == expected

    def test_registered(self):
        names = list_models()
        assert "lenet" in names and "lenet_scratch" in names
        assert isinstance(get_model("lenet", rngs=nnx.Rngs(0)), LeNet)
        assert isinstance(get_model("lenet_scratch", num_classes=5, rngs=nnx.Rngs(0)), LeNetScratch)

    def test_training_steps_reduce_the_loss(self):
        """Compiled Adam steps (the training core's path) on one synthetic batch whose class is
        the position of a bright horizontal band (a task LeNet can learn quickly)."""
        kx, ky = jax.random.split(jax.random.key(1))
        y = jax.random.randint(ky, (64,), 0, 10)
        rows = jnp.arange(28)[None, :, None, None]
        top = 2 * y[:, None, None, None] + 4
        band = ((rows >= top) & (rows < top + 3)).astype(jnp.float32)
        batch = {"x": 0.2 * jax.random.uniform(kx, (64, 28, 28, 1)) + band, "y": y}
        steps = make_steps("classification")
        state = TrainState.create(LeNet(rngs=nnx.Rngs(0)), optax.adam(1e-2))
        first = summarize(steps.eval_accumulate(state, None, batch))
        for _ in range(40):
            state, _ = steps.train_accumulate(state, None, batch)
        last = summarize(steps.eval_accumulate(state, None, batch))
        assert np.isfinite(last["loss"]) and last["loss"] < 0.8 * first["loss"]
        assert last["accuracy"] > 0.5
