"""§10.6-§10.7 RNN encoder-decoder: the interface, shapes and parameter layout of the book, the
GRU against the PyTorch equations, teacher forcing == step-by-step decoding, what padding can
and cannot change, and the masked loss against a per-example loop."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized
from flax import nnx

from d2ljax.models import get_model
from d2ljax.models.seq2seq import (
    Decoder,
    Encoder,
    EncoderDecoder,
    Seq2Seq,
    Seq2SeqDecoder,
    Seq2SeqEncoder,
    StackedGRU,
    check_decode_state,
)
from d2ljax.train import get_loss
from tests.models import layer_counts as lc

V_SRC, V_TGT, E, H, L = 11, 13, 8, 16, 2
B, S, T = 3, 6, 5  # one set of shapes, so the compiled calls are shared between tests


def _model(dropout=0.0, seed=0):
    return Seq2Seq(V_SRC, V_TGT, E, H, L, dropout, rngs=nnx.Rngs(params=seed, dropout=seed + 1))


def _tokens(shape, vocab, seed):
    return jax.random.randint(jax.random.key(seed), shape, 0, vocab, jnp.int32)


def _jit(fn):
    """``fn(module, *args)`` compiled once: the module goes in split (a faster test than eager
    calls, which compile every scan on every call)."""

    def call(module, *args):
        graphdef, state = nnx.split(module)
        return _compiled(fn, graphdef)(state, *args)

    return call


_CACHE = {}


def _compiled(fn, graphdef):
    key = (fn, graphdef)
    if key not in _CACHE:
        _CACHE[key] = jax.jit(lambda state, *args: fn(nnx.merge(graphdef, state), *args))
    return _CACHE[key]


def _forward(model, x, dec_x, x_len=None):
    return model(x, dec_x, x_len)


def _encode(model, x, x_len):
    return model.encoder(x, x_len)


forward, encode = _jit(_forward), _jit(_encode)


def _num_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _gru_params(d, h):
    """torch.nn.GRU, one layer: weight_ih (3h, d), weight_hh (3h, h), bias_ih, bias_hh."""
    return 3 * h * (d + h) + 6 * h


def test_book_shapes():
    """§10.7.1/§10.7.2 shape checks: vocab 10, embed 8, hidden 16, 2 layers, batch 4, 9 steps."""
    x = jnp.zeros((4, 9), jnp.int32)
    enc = Seq2SeqEncoder(10, 8, 16, 2, rngs=nnx.Rngs(0))
    out = _jit(lambda m, x: m(x))(enc, x)
    chex.assert_shape(out["outputs_BSH"], (4, 9, 16))
    chex.assert_shape(out["state_LBH"], (2, 4, 16))
    dec = Seq2SeqDecoder(10, 8, 16, 2, rngs=nnx.Rngs(1))
    logits, state = _jit(lambda m, x, out: m(x, m.init_state(out)))(dec, x, out)
    chex.assert_shape(logits, (4, 9, 10))
    chex.assert_shape(state["hidden_BLH"], (4, 2, 16))
    chex.assert_trees_all_close(out["outputs_BSH"][:, -1], out["state_LBH"][-1])


def test_registered_and_parameter_count_matches_pytorch_layout():
    model = get_model("seq2seq", src_vocab_size=V_SRC, tgt_vocab_size=V_TGT, embed_size=E,
                      num_hiddens=H, num_layers=L, dropout=0.1, rngs=nnx.Rngs(0))
    assert isinstance(model, Seq2Seq) and isinstance(model, EncoderDecoder)
    assert isinstance(model.encoder, Encoder) and isinstance(model.decoder, Decoder)
    encoder = V_SRC * E + _gru_params(E, H) + (L - 1) * _gru_params(H, H)
    decoder = V_TGT * E + _gru_params(E + H, H) + (L - 1) * _gru_params(H, H) + lc.dense(H, V_TGT)
    assert _num_params(model) == encoder + decoder
    # The book's init_seq2seq: Xavier-uniform GRU and dense weights; PyTorch's default
    # U(-1/sqrt(H), 1/sqrt(H)) GRU biases.
    cell = model.decoder.rnn.cells[0]
    assert np.abs(cell.ih.kernel[...]).max() <= np.sqrt(6 / (E + H + 3 * H))
    assert np.abs(cell.hh.bias[...]).max() <= 1 / np.sqrt(H)
    assert np.abs(cell.hh.bias[...]).max() > 0.5 / np.sqrt(H)


def _torch_gru_reference(params, x_BTD, h0_BH):
    """torch.nn.GRU's equations, one layer, a NumPy loop over time."""
    w_ih, b_ih = np.asarray(params.ih.kernel[...]), np.asarray(params.ih.bias[...])
    w_hh, b_hh = np.asarray(params.hh.kernel[...]), np.asarray(params.hh.bias[...])
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h = np.asarray(h0_BH, np.float64)
    outs = []
    for t in range(x_BTD.shape[1]):
        gi = np.asarray(x_BTD[:, t]) @ w_ih + b_ih
        gh = h @ w_hh + b_hh
        H_ = h.shape[1]
        r = sig(gi[:, :H_] + gh[:, :H_])
        z = sig(gi[:, H_:2 * H_] + gh[:, H_:2 * H_])
        n = np.tanh(gi[:, 2 * H_:] + r * gh[:, 2 * H_:])
        h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs, 1), h


class StackedGRUTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_pytorch_equations_layer_by_layer(self):
        gru = StackedGRU(5, 7, num_layers=2, rngs=nnx.Rngs(0))
        x = jax.random.normal(jax.random.key(1), (3, 6, 5))
        h0 = jax.random.normal(jax.random.key(2), (2, 3, 7))
        graphdef, state = nnx.split(gru)
        out, hT = self.variant(lambda s, x, h: nnx.merge(graphdef, s)(x, h))(state, x, h0)
        ref1, h1 = _torch_gru_reference(gru.cells[0], np.asarray(x), h0[0])
        ref2, h2 = _torch_gru_reference(gru.cells[1], ref1, h0[1])
        chex.assert_trees_all_close(out, ref2, atol=1e-5)
        chex.assert_trees_all_close(hT, np.stack([h1, h2]), atol=1e-5)


def test_gru_rejects_a_state_of_the_wrong_shape():
    gru = StackedGRU(5, 7, num_layers=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="initial state must have shape"):
        gru(jnp.zeros((3, 4, 5)), jnp.zeros((3, 2, 7)))


class TeacherForcingTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_equals_step_by_step_decoding(self):
        model = _model()
        x, dec_x = _tokens((B, S), V_SRC, 0), _tokens((B, T), V_TGT, 1)
        x_len = jnp.array([6, 4, 2], jnp.int32)
        graphdef, state = nnx.split(model)

        def both(state, x, dec_x, x_len):
            m = nnx.merge(graphdef, state)
            full = m(x, dec_x, x_len)
            s = m.init_decode_state(x, x_len, dec_x.shape[1])

            def step(s, tok):
                logits, s = m.decode_step(tok, s)
                return s, logits

            _, steps_TBV = jax.lax.scan(step, s, dec_x.T)
            return full, jnp.swapaxes(steps_TBV, 0, 1)

        full, stepped = self.variant(both)(state, x, dec_x, x_len)
        chex.assert_shape(full, (B, T, V_TGT))
        chex.assert_trees_all_close(full, stepped, atol=1e-5)


def test_decode_state_has_leading_batch_axis_and_fixed_shape():
    model = _model()
    x = _tokens((B, S), V_SRC, 0)
    s = _jit(lambda m, x: m.init_decode_state(x, None, T))(model, x)
    check_decode_state(s, B)
    _, s2 = _jit(lambda m, t, s: m.decode_step(t, s))(model, jnp.zeros((B,), jnp.int32), s)
    chex.assert_trees_all_equal_shapes_and_dtypes(s, s2)
    with pytest.raises(ValueError, match="leading axis"):
        check_decode_state({"h": jnp.zeros((2, 4))}, 4)


def test_padding_what_can_and_cannot_change():
    """Causality: pad content after position t changes no encoder output before t and no decoder
    logit before the pad. But, as in the book, the encoder runs over the pads, so its final
    state -- the context and the decoder's first state -- does depend on them."""
    model = _model()
    x = _tokens((B, S), V_SRC, 0)
    x_len = jnp.array([3, 5, 6], jnp.int32)
    pad_mask = jnp.arange(S)[None, :] >= x_len[:, None]
    x_other_pads = jnp.where(pad_mask, (x + 1) % V_SRC, x)
    a, b = encode(model, x, x_len), encode(model, x_other_pads, x_len)
    for i, n in enumerate([3, 5, 6]):
        chex.assert_trees_all_close(a["outputs_BSH"][i, :n], b["outputs_BSH"][i, :n])
    assert not np.allclose(a["state_LBH"][:, :2], b["state_LBH"][:, :2])
    chex.assert_trees_all_close(a["state_LBH"][:, 2], b["state_LBH"][:, 2])  # no pads

    dec_x = _tokens((B, T), V_TGT, 1)
    dec_other = dec_x.at[:, 3:].set((dec_x[:, 3:] + 1) % V_TGT)
    chex.assert_trees_all_close(
        forward(model, x, dec_x, x_len)[:, :3], forward(model, x, dec_other, x_len)[:, :3],
        atol=1e-6,
    )


def test_masked_loss_equals_per_example_loop_over_unpadded_targets():
    model = _model()
    y_len = np.array([5, 2, 2], np.int32)
    batch = {
        "x": _tokens((B, S), V_SRC, 0),
        "x_len": jnp.array([6, 4, 2], jnp.int32),
        "dec_x": _tokens((B, T), V_TGT, 1),
        "y": _tokens((B, T), V_TGT, 2),
        "y_len": jnp.asarray(y_len),
    }
    loss, metrics = _jit(get_loss("seq2seq"))(model, batch)
    per_token = []
    for b in range(B):
        n = int(y_len[b])
        logits = forward(
            model, batch["x"][b : b + 1], batch["dec_x"][b : b + 1, :n], batch["x_len"][b : b + 1]
        )
        ce = optax.softmax_cross_entropy_with_integer_labels(logits[0], batch["y"][b, :n])
        per_token.extend(np.asarray(ce).tolist())
    assert float(loss) == pytest.approx(np.mean(per_token), rel=1e-5)
    assert float(metrics["count"]) == y_len.sum()


def test_dropout_only_in_train_mode():
    model = _model(dropout=0.5)
    x, dec_x = _tokens((B, S), V_SRC, 0), _tokens((B, T), V_TGT, 1)
    twice = _jit(lambda m, x, d: (m(x, d), m(x, d)))
    a, b = twice(model, x, dec_x)
    assert not np.allclose(a, b)
    model.eval()
    chex.assert_trees_all_close(*twice(model, x, dec_x))


def test_bad_inputs_are_clear_errors():
    model = _model()
    with pytest.raises(TypeError, match="integer token ids"):
        model(jnp.zeros((2, 3)), jnp.zeros((2, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        model(jnp.zeros((3,), jnp.int32), jnp.zeros((2, 3), jnp.int32))
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(jnp.zeros((2, 3), jnp.int32), jnp.zeros((3, 3), jnp.int32))
    with pytest.raises(NotImplementedError):
        Decoder().init_state(None, None, 1)


def test_config_trains_end_to_end_on_the_real_data(shared_data):
    """The ``seq2seq`` experiment, shrunk: dataset ``_info`` fills the vocabulary sizes, the
    masked loss trains, and the trained model translates."""
    from d2ljax.cli import load_config
    from d2ljax.config import apply_overrides
    from d2ljax.experiment import build, train
    from d2ljax.inference import translate

    cfg = apply_overrides(
        load_config("seq2seq:smoke"),
        ["model.kwargs.embed_size=8", "model.kwargs.num_hiddens=16", "data.limit=64"],
    )
    assert (cfg.loss, cfg.optimizer.name, cfg.data.val_split) == ("seq2seq", "adam", "val")
    exp = build(cfg)
    assert exp.model.encoder.embedding.num_embeddings == exp.info["src_vocab_size"]
    res = train(exp, quiet=True)
    assert np.isfinite(res.history["train_loss"][-1]) and "val_perplexity" in res.history
    out = translate(res.model, ["go ."], exp.info["src_vocab"], exp.info["tgt_vocab"], 9)
    assert isinstance(out[0], str)
