"""RNN layers and language models (§9.5, §9.6, §10.1-§10.4): scratch == Flax, generation,
a tiny LM that learns, the configs, and §9.1's sine data."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized
from flax import nnx

from d2ljax.models import get_model
from d2ljax.models import rnn as M

T, B, D, H, V = 6, 3, 5, 4, 7


def _x(seed=0, shape=(T, B, D)):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _scratch_and_flax(cell, num_layers=1, bidirectional=False, sigma=0.5):
    """A scratch stack and a concise layer holding the same weights."""
    kw = {"reset_after": True} if cell == "gru" else {}
    scratch = M.StackedRNNScratch(
        D, H, num_layers, sigma, cell, bidirectional, rngs=nnx.Rngs(1), **kw
    )
    concise = {"rnn": M.RNN, "gru": M.GRU, "lstm": M.LSTM}[cell](
        D, H, num_layers, bidirectional, rngs=nnx.Rngs(2)
    )
    for s_layer, c_layer in zip(scratch.rnns, concise.layers, strict=True):
        if bidirectional:
            M.load_scratch_params(c_layer.forward_rnn.cell, s_layer.f_rnn.params())
            M.load_scratch_params(c_layer.backward_rnn.cell, s_layer.b_rnn.params())
        else:
            M.load_scratch_params(c_layer.cell, s_layer.params())
    return scratch, concise


def _flax_state_as_scratch(cell, state):
    """Flax's LSTM carry is (C, H); the book's is (H, C)."""
    if cell != "lstm":
        return state

    def is_carry(c):
        return isinstance(c, tuple) and all(hasattr(e, "shape") for e in c)

    return jax.tree.map(lambda c: (c[1], c[0]), state, is_leaf=is_carry)


def _apply(module, x, state=None):
    graphdef, st = nnx.split(module)
    return nnx.merge(graphdef, st, copy=True)(x, state)


class ScratchEqualsFlaxTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("rnn", "gru", "lstm")
    def test_one_layer(self, cell):
        scratch, concise = _scratch_and_flax(cell)
        x = _x()
        (s_graph, s_st), (c_graph, c_st) = nnx.split(scratch), nnx.split(concise)
        s_out, s_state = self.variant(lambda st, x: nnx.merge(s_graph, st, copy=True)(x))(s_st, x)
        c_out, c_state = self.variant(lambda st, x: nnx.merge(c_graph, st, copy=True)(x))(c_st, x)
        chex.assert_shape(c_out, (T, B, H))
        chex.assert_trees_all_close(c_out, s_out, atol=1e-5)
        chex.assert_trees_all_close(_flax_state_as_scratch(cell, c_state), s_state, atol=1e-5)

    @parameterized.parameters(("gru", 2, False), ("lstm", 2, True), ("rnn", 1, True))
    def test_deep_and_bidirectional(self, cell, num_layers, bidirectional):
        scratch, concise = _scratch_and_flax(cell, num_layers, bidirectional)
        x = _x(3)
        s_out, s_state = jax.jit(lambda x: _apply(scratch, x))(x)
        c_out, c_state = jax.jit(lambda x: _apply(concise, x))(x)
        width = 2 * H if bidirectional else H
        chex.assert_shape([s_out, c_out], [(T, B, width)] * 2)
        assert scratch.num_outputs == concise.num_outputs == width
        assert len(s_state) == len(c_state) == num_layers
        chex.assert_trees_all_close(c_out, s_out, atol=1e-5)
        chex.assert_trees_all_close(_flax_state_as_scratch(cell, c_state), s_state, atol=1e-5)

    def test_book_gru_is_not_flax_gru(self):
        # The book's scratch GRU resets H before the matmul; nnx.GRUCell after it.
        book = M.GRUScratch(D, H, 0.5, rngs=nnx.Rngs(1))
        concise = M.GRU(D, H, rngs=nnx.Rngs(2))
        M.load_scratch_params(concise.layers[0].cell, book.params())
        diff = jnp.abs(_apply(book, _x())[0] - jax.jit(lambda x: _apply(concise, x))(_x())[0]).max()
        assert float(diff) > 1e-3

    def test_state_is_carried(self):
        scratch = M.LSTMScratch(D, H, 0.5, rngs=nnx.Rngs(0))
        x = _x()
        whole, state = scratch(x)
        first, mid = scratch(x[:2])
        rest, state2 = scratch(x[2:], mid)
        chex.assert_trees_all_close(jnp.concatenate([first, rest]), whole, atol=1e-6)
        chex.assert_trees_all_close(state2, state, atol=1e-6)

    def test_errors(self):
        with pytest.raises(ValueError, match="num_layers must be a positive integer"):
            M.GRU(D, H, 0, rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match="unknown cell"):
            M.StackedRNNScratch(D, H, 2, cell="tanh", rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match="time-major"):
            M.RNN(D, H, rngs=nnx.Rngs(0))(jnp.ones((B, D)))
        with pytest.raises(ValueError, match="expected 2 layer states"):
            M.GRU(D, H, 2, rngs=nnx.Rngs(0))(_x(), [jnp.zeros((B, H))])
        with pytest.raises(TypeError, match="no scratch layout"):
            M.load_scratch_params(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), {})


LM_NAMES = ["rnn_lm_scratch", "rnn_lm", "gru_lm_scratch", "gru_lm", "lstm_lm_scratch", "lstm_lm"]


class LanguageModelTest(chex.TestCase):
    @parameterized.parameters(*LM_NAMES)
    def test_registered_lm_shapes(self, name):
        x = jax.random.randint(jax.random.key(0), (2, 4), 0, V)
        deep_bi = {"num_layers": 2, "bidirectional": True}
        for kwargs in ({}, deep_bi) if name in ("gru_lm_scratch", "lstm_lm") else ({},):
            model = get_model(name, vocab_size=V, num_hiddens=H, rngs=nnx.Rngs(0), **kwargs)
            logits = model(x)
            chex.assert_shape(logits, (2, 4, V))
            chex.assert_tree_all_finite(logits)

    def test_scratch_lm_uses_one_hot_and_book_init(self):
        model = get_model("rnn_lm_scratch", vocab_size=V, num_hiddens=H, rngs=nnx.Rngs(0))
        assert model.rnn.W_xh[...].shape == (V, H)
        assert model.W_hq[...].shape == (H, V) and float(model.W_hq[...].std()) < 0.05
        chex.assert_trees_all_close(
            model.one_hot(jnp.array([[0, 2]])), jax.nn.one_hot(jnp.array([[0], [2]]), V)
        )
        with pytest.raises(ValueError, match="integer token ids"):
            model(jnp.ones((2, 3)))
        with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
            get_model("gru_lm", vocab_size=0, rngs=nnx.Rngs(0))

    def test_scratch_lm_equals_concise_lm_with_same_weights(self):
        scratch = get_model(
            "lstm_lm_scratch", vocab_size=V, num_hiddens=H, sigma=0.5, rngs=nnx.Rngs(0)
        )
        concise = get_model("lstm_lm", vocab_size=V, num_hiddens=H, rngs=nnx.Rngs(1))
        M.load_scratch_params(concise.rnn.layers[0].cell, scratch.rnn.params())
        concise.linear.kernel[...] = scratch.W_hq[...]
        concise.linear.bias[...] = scratch.b_q[...] + 0.1
        scratch.b_q[...] = scratch.b_q[...] + 0.1
        x = jax.random.randint(jax.random.key(2), (B, T), 0, V)
        chex.assert_trees_all_close(concise(x), scratch(x), atol=1e-5)


class _CharVocab:
    def __init__(self, chars):
        self.idx_to_token = list(chars)

    def __getitem__(self, tokens):
        return [self.idx_to_token.index(t) for t in tokens]

    def to_tokens(self, ids):
        return [self.idx_to_token[i] for i in ids]


def _book_predict(model, prefix, num_preds, vocab):
    """The book's Python loop (§9.5.5), one token at a time."""
    graphdef, params = nnx.split(model)
    forward = jax.jit(lambda p, x, s: nnx.merge(graphdef, p, copy=True).forward(x, s))
    state, outputs = model.rnn.init_state(1), [vocab[[prefix[0]]][0]]
    for i in range(len(prefix) + num_preds - 1):
        logits, state = forward(params, jnp.array([[outputs[-1]]]), state)
        if i < len(prefix) - 1:
            outputs.append(vocab[[prefix[i + 1]]][0])
        else:
            outputs.append(int(logits[0, -1].argmax()))
    return "".join(vocab.to_tokens(outputs))


@pytest.mark.parametrize("name", ["gru_lm_scratch", "lstm_lm"])
def test_generate_text_matches_the_books_loop(name):
    vocab = _CharVocab("abcdefg")
    model = get_model(name, vocab_size=7, num_hiddens=H, num_layers=2, rngs=nnx.Rngs(3))
    if name.endswith("scratch"):  # larger weights so the prediction depends on the input
        for layer in model.rnn.rnns:
            for k, v in layer.params().items():
                getattr(layer, k)[...] = v * 50.0
        model.W_hq[...] = model.W_hq[...] * 50.0
    text = M.generate_text(model, "abca", 6, vocab)
    assert len(text) == 4 + 6 and text.startswith("abca")
    assert text == M.generate_text(model, "abca", 6, vocab)  # deterministic
    assert text == _book_predict(model, "abca", 6, vocab)
    with pytest.raises(ValueError, match="non-empty prefix"):
        M.generate_text(model, "", 3, vocab)
    with pytest.raises(ValueError, match="num_preds must be a positive integer"):
        M.generate_text(model, "ab", 0, vocab)


def test_tiny_lm_learns_a_repeating_text():
    # "abcd" repeated: after a few dozen clipped SGD steps the next char is nearly certain.
    from d2ljax.train import get_loss

    corpus = np.tile(np.arange(4, dtype=np.int32), 40)
    starts = np.arange(0, len(corpus) - 9)
    batch = {
        "x": jnp.asarray(np.stack([corpus[i : i + 8] for i in starts])),
        "y": jnp.asarray(np.stack([corpus[i + 1 : i + 9] for i in starts])),
    }
    model = get_model("gru_lm", vocab_size=4, num_hiddens=16, rngs=nnx.Rngs(0))
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.05))
    graphdef, params = nnx.split(model, nnx.Param)
    opt_state = tx.init(params)
    loss_fn = get_loss("lm")

    @jax.jit
    def step(params, opt_state):
        def loss(p):
            return loss_fn(nnx.merge(graphdef, p, copy=True), batch)[0]

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    losses = []
    for _ in range(40):
        params, opt_state, value = step(params, opt_state)
        losses.append(float(value))
    assert losses[0] > 1.2  # about log(4) = 1.39 at the start
    assert losses[-1] < 0.2 * losses[0], losses


# ----------------------------------------------------------------------------- configs


CONFIGS = ["rnn_scratch", "rnn", "gru_scratch", "gru", "lstm_scratch", "lstm", "deep_gru"]


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_name_the_books_settings(name):
    from d2ljax.cli import load_config
    from d2ljax.experiment import validate

    cfg = load_config(name)
    validate(cfg)
    assert (cfg.data.name, cfg.data.batch_size, cfg.loss) == ("timemachine", 1024, "lm")
    assert cfg.optimizer.grad_clip == 1.0 and cfg.data.val_split == "val"
    expected = {"rnn": (1, 100), "gru": (4, 50), "lstm": (4, 50), "deep": (2, 100)}
    assert (cfg.optimizer.learning_rate, cfg.epochs) == expected[name.split("_")[0]]


def test_lm_config_smoke_run_end_to_end(shared_data):
    from d2ljax.cli import load_config
    from d2ljax.experiment import build, train

    cfg = load_config("gru_scratch:smoke")
    cfg.data.limit = 256
    cfg.data.batch_size = 128
    exp = build(cfg)
    assert exp.model.vocab_size == exp.info["vocab_size"] == 28  # filled in from the dataset
    result = train(exp, quiet=True)
    assert 1.0 < result.history["val_perplexity"][-1] < 28.5
    text = M.generate_text(result.model, "it has", 5, exp.info["vocab"])
    assert len(text) == 11 and text.startswith("it has")


def test_sine_autoregression_data_and_config():
    from d2ljax.cli import load_config
    from d2ljax.data import load_dataset

    d = load_dataset("sine_autoregression", T=50, tau=3, num_train=30, seed=1)
    x = d["_info"]["series"]
    assert d["train"]["x"].shape == (30, 3) and d["val"]["x"].shape == (17, 3)
    assert d["train"]["x"].dtype == np.float32 and d["val"]["y"].shape == (17, 1)
    # Features are the tau previous values, the label the next one.
    np.testing.assert_array_equal(d["train"]["x"][5], x[5:8])
    assert d["train"]["y"][5, 0] == x[8]
    assert d["val"]["y"][0, 0] == x[33]
    again = load_dataset("sine_autoregression", T=50, tau=3, num_train=30, seed=1)
    np.testing.assert_array_equal(again["_info"]["series"], x)
    residual = x - np.sin(0.01 * np.arange(1, 51))
    assert 0.1 < residual.std() < 0.3
    with pytest.raises(ValueError, match="leaves no validation examples"):
        load_dataset("sine_autoregression", T=10, tau=4, num_train=6)
    cfg = load_config("sine_autoregression")
    assert (cfg.model.name, cfg.data.batch_size, cfg.epochs) == ("linear_regression", 16, 5)


def test_k_step_ahead_predictions_feed_predictions_back():
    from d2ljax.models import LinearRegression

    tau, max_steps = 3, 4
    series = np.arange(10, dtype=np.float32) ** 2
    model = LinearRegression(tau, rngs=nnx.Rngs(0))
    model.net.kernel[...] = jnp.array([[0.0], [0.0], [1.0]])  # predict the last value seen
    model.net.bias[...] = jnp.array([1.0])  # ... plus one
    preds = M.k_step_ahead_predictions(model, series, tau, max_steps)
    n = 10 - tau - max_steps + 1
    chex.assert_shape(preds, (max_steps, n))
    for k in range(1, max_steps + 1):  # k steps after the window: last observed value + k
        chex.assert_trees_all_close(preds[k - 1], series[tau - 1 : tau - 1 + n] + k)
    with pytest.raises(ValueError, match="len\\(series\\) >= tau \\+ max_steps"):
        M.k_step_ahead_predictions(model, series[:5], tau, max_steps)
