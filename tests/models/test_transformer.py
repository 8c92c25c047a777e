"""§11.7 Transformer: shapes, the book's parameter count, masking (padding and causal), and
incremental decoding through the fixed-size cache == teacher forcing."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.models import get_constructor
from d2ljax.models.decoding import greedy_decode
from d2ljax.models.seq2seq import EncoderDecoder, check_decode_state
from d2ljax.models.transformer import Transformer

V_SRC, V_TGT, D, F, H, L = 20, 30, 16, 8, 4, 2


@pytest.fixture(scope="module")
def model():
    """One small Transformer with dropout 0.3, in eval mode (tests clone it to change it)."""
    m = Transformer(V_SRC, V_TGT, D, F, H, L, 0.3, rngs=nnx.Rngs(params=0, dropout=1))
    m.eval()
    return m


def _batch():
    x = jax.random.randint(jax.random.key(1), (3, 6), 1, V_SRC)
    x_len = jnp.array([6, 3, 1])
    dec_x = jax.random.randint(jax.random.key(2), (3, 5), 1, V_TGT)
    return x, x_len, dec_x


def _count(module):
    return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


def _transformer_params(v_src, v_tgt, d, f, num_blks):
    """The book's architecture counted by hand: attention has 4 d x d projections (no bias),
    layer norm 2d, the FFN two dense layers with bias."""
    mha, ln, ffn = 4 * d * d, 2 * d, d * f + f + f * d + d
    enc_blk = mha + ln + ffn + ln
    dec_blk = 2 * mha + 3 * ln + ffn
    return (v_src * d + num_blks * enc_blk) + (v_tgt * d + num_blks * dec_blk + d * v_tgt + v_tgt)


def test_shapes_and_registry(model):
    assert get_constructor("transformer") is Transformer and isinstance(model, EncoderDecoder)
    x, x_len, dec_x = _batch()
    chex.assert_shape(model(x, dec_x, x_len), (3, 5, V_TGT))
    w = model.attention_weights(x, dec_x, x_len)
    chex.assert_shape(
        (w["encoder"], w["decoder_self"], w["decoder_cross"]),
        ((L, 3, H, 6, 6), (L, 3, H, 5, 5), (L, 3, H, 5, 6)),
    )
    # padded source keys get zero weight in the encoder and in the encoder-decoder attention
    assert np.all(np.asarray(w["encoder"][:, 1, :, :, 3:]) == 0.0)
    assert np.all(np.asarray(w["decoder_cross"][:, 2, :, :, 1:]) == 0.0)
    # the decoder self-attention is causal
    iu = np.triu_indices(5, 1)
    assert np.all(np.asarray(w["decoder_self"])[..., iu[0], iu[1]] == 0.0)


def test_parameter_count_matches_the_book_architecture(model):
    assert _count(model) == _transformer_params(V_SRC, V_TGT, D, F, L)
    # the book's setting (num_hiddens 256, ffn 64, 4 heads, 2 blocks), counted without building it
    book = nnx.eval_shape(lambda: Transformer(184, 201, rngs=nnx.Rngs(0)))
    assert _count(book) == _transformer_params(184, 201, 256, 64, 2)
    enc_blk, dec_blk = model.encoder.blks[0], model.decoder.blks[0]
    assert _count(enc_blk.ffn) == D * F + F + F * D + D
    assert _count(enc_blk.addnorm1) == 2 * D
    assert _count(dec_blk) == 8 * D * D + 6 * D + 2 * D * F + F + D


def test_encoder_block_padding_and_causal_masks(model):
    blk = model.encoder.blks[0]
    x = jax.random.normal(jax.random.key(0), (2, 6, D))
    x2 = x.at[:, 4:].set(jax.random.normal(jax.random.key(1), (2, 2, D)))
    # padding: positions >= valid_len do not change the outputs at valid positions
    lens = jnp.array([4, 4])
    chex.assert_trees_all_close(blk(x, lens)[:, :4], blk(x2, lens)[:, :4], atol=1e-5)
    # causal: changing future tokens leaves earlier outputs unchanged
    chex.assert_trees_all_close(
        blk(x, causal=True)[:, :4], blk(x2, causal=True)[:, :4], atol=1e-5
    )
    assert not np.allclose(blk(x)[:, :4], blk(x2)[:, :4], atol=1e-4)


def test_decoder_is_causal_and_ignores_source_padding(model):
    m = model
    x, x_len, dec_x = _batch()
    logits = m(x, dec_x, x_len)
    dec_x2 = dec_x.at[:, 3:].set((dec_x[:, 3:] + 1) % V_TGT)
    chex.assert_trees_all_close(m(x, dec_x2, x_len)[:, :3], logits[:, :3], atol=1e-5)
    assert not np.allclose(m(x, dec_x2, x_len)[:, 3:], logits[:, 3:], atol=1e-4)
    x_padded_differently = x.at[1, 3:].set(0).at[2, 1:].set(5)
    chex.assert_trees_all_close(m(x_padded_differently, dec_x, x_len), logits, atol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_incremental_decoding_equals_teacher_forcing(model, jit):
    m = model  # eval mode: dropout off
    x, x_len, dec_x = _batch()
    graphdef, state = nnx.split(m)

    def run(state, x, x_len, dec_x):
        model = nnx.merge(graphdef, state, copy=True)
        forced = model(x, dec_x, x_len)
        dstate = model.init_decode_state(x, x_len, max_len=8)  # cache longer than the prefix

        def step(s, tok):
            logits, s = model.decode_step(tok, s)
            return s, logits

        dstate, steps = jax.lax.scan(step, dstate, dec_x.T)
        return forced, jnp.swapaxes(steps, 0, 1), dstate

    forced, incremental, dstate = (jax.jit(run) if jit else run)(state, x, x_len, dec_x)
    chex.assert_trees_all_close(incremental, forced, atol=1e-5, rtol=1e-5)
    check_decode_state(dstate, 3)
    np.testing.assert_array_equal(dstate["step_B"], [5, 5, 5])
    # the cache holds exactly what a teacher-forced prefill writes
    prefill = m.decoder(dec_x, m.init_decode_state(x, x_len, 8))[1]
    chex.assert_trees_all_close(dstate["cache_BLMD"], prefill["cache_BLMD"], atol=1e-5)


def test_greedy_decoding_agrees_with_teacher_forcing_on_its_output(model):
    m = nnx.clone(model)
    m.train()  # greedy_decode runs the model in eval mode whatever its mode
    x, x_len, _ = _batch()
    tokens, _ = greedy_decode(m, x, x_len, bos=1, eos=2, max_len=6)
    dec_x = jnp.concatenate([jnp.ones((3, 1), tokens.dtype), tokens[:, :-1]], axis=1)
    logits = model(x, dec_x, x_len)
    first = np.asarray(jnp.argmax(logits, -1))
    tokens = np.asarray(tokens)
    for b in range(3):  # up to the first eos, greedy = argmax of the teacher-forced logits
        n = int(np.argmax(tokens[b] == 2)) + 1 if (tokens[b] == 2).any() else 6
        np.testing.assert_array_equal(tokens[b, :n], first[b, :n])


def test_dropout_in_train_mode_and_errors(model):
    m = nnx.clone(model)
    x, x_len, dec_x = _batch()
    chex.assert_trees_all_close(m(x, dec_x, x_len), m(x, dec_x, x_len))
    m.train()
    assert not np.allclose(m(x, dec_x, x_len), m(x, dec_x, x_len))
    with pytest.raises(ValueError, match="max_len"):
        m.init_decode_state(x, x_len, max_len=5000)
    with pytest.raises(ValueError, match="cache"):
        m.decoder(dec_x, m.init_decode_state(x, x_len, max_len=3))
    with pytest.raises(ValueError, match="divisible"):
        nnx.eval_shape(lambda: Transformer(V_SRC, V_TGT, 10, F, 3, 1, 0.0, rngs=nnx.Rngs(0)))


@pytest.mark.slow
def test_config_has_the_book_settings_and_trains(shared_data):
    from d2ljax.cli import load_config
    from d2ljax.config import apply_overrides
    from d2ljax.experiment import build, train

    cfg = load_config("transformer")
    assert dict(cfg.model.kwargs) == dict(
        num_hiddens=256, ffn_num_hiddens=64, num_heads=4, num_blks=2, dropout=0.2
    )
    assert (cfg.data.batch_size, cfg.epochs, cfg.optimizer.name, cfg.optimizer.learning_rate,
            cfg.optimizer.grad_clip, cfg.loss, cfg.data.val_split) == (
        128, 30, "adam", 0.0015, 1.0, "seq2seq", "val")
    tiny = apply_overrides(load_config("transformer:smoke"), [
        "model.kwargs.num_hiddens=16", "model.kwargs.ffn_num_hiddens=8",
        "data.kwargs.num_train=64", "data.kwargs.num_val=32", "data.batch_size=32",
    ])
    exp = build(tiny)
    assert isinstance(exp.model, Transformer)
    history = train(exp, quiet=True).history
    assert np.isfinite(history["train_loss"][-1]) and np.isfinite(history["val_loss"][-1])
