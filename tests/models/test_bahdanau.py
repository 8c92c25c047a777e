"""§11.4 RNN encoder-decoder with Bahdanau attention: shapes, the book's parameter count, padded
source positions get zero attention, incremental decoding == teacher forcing, one config run."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.models import get_constructor
from d2ljax.models.bahdanau import Seq2SeqAttention
from d2ljax.models.decoding import greedy_decode
from d2ljax.models.seq2seq import EncoderDecoder, check_decode_state

V_SRC, V_TGT, E, HID, L = 20, 30, 8, 16, 2


@pytest.fixture(scope="module")
def model():
    """One small model with dropout 0.3, in eval mode (tests clone it to change it)."""
    m = Seq2SeqAttention(V_SRC, V_TGT, E, HID, L, 0.3, rngs=nnx.Rngs(params=0, dropout=1))
    m.eval()
    return m


def _batch():
    x = jax.random.randint(jax.random.key(1), (3, 6), 1, V_SRC)
    return x, jnp.array([6, 3, 1]), jax.random.randint(jax.random.key(2), (3, 5), 1, V_TGT)


def _count(module):
    return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


def _gru(d_in, h, layers):
    """PyTorch's nn.GRU: per layer 3h(d_in + h) weights and 6h biases."""
    return sum(3 * h * ((d_in if i == 0 else h) + h) + 6 * h for i in range(layers))


def _bahdanau_params(v_src, v_tgt, e, h, layers):
    encoder = v_src * e + _gru(e, h, layers)
    attention = h * h + h * h + h  # W_q, W_k, w_v, no biases
    decoder = v_tgt * e + attention + _gru(e + h, h, layers) + h * v_tgt + v_tgt
    return encoder + decoder


def test_shapes_registry_and_parameter_count(model):
    m = model
    assert get_constructor("bahdanau_seq2seq") is Seq2SeqAttention
    assert isinstance(m, EncoderDecoder)
    x, x_len, dec_x = _batch()
    chex.assert_shape(m(x, dec_x, x_len), (3, 5, V_TGT))
    assert _count(m) == _bahdanau_params(V_SRC, V_TGT, E, HID, L)
    book = nnx.eval_shape(lambda: Seq2SeqAttention(184, 201, rngs=nnx.Rngs(0)))
    assert _count(book) == _bahdanau_params(184, 201, 256, 256, 2)


def test_attention_ignores_source_padding(model):
    m = model
    x, x_len, dec_x = _batch()
    w = m.attention_weights(x, dec_x, x_len)
    chex.assert_shape(w, (3, 5, 6))
    chex.assert_trees_all_close(w.sum(-1), jnp.ones((3, 5)), atol=1e-5)
    assert np.all(np.asarray(w[1, :, 3:]) == 0.0) and np.all(np.asarray(w[2, :, 1:]) == 0.0)


@pytest.mark.parametrize("jit", [False, True])
def test_incremental_decoding_equals_teacher_forcing(model, jit):
    m = model
    x, x_len, dec_x = _batch()
    graphdef, state = nnx.split(m)

    def run(state):
        model = nnx.merge(graphdef, state, copy=True)
        forced = model(x, dec_x, x_len)
        dstate = model.init_decode_state(x, x_len, max_len=5)
        steps = []
        for t in range(dec_x.shape[1]):
            logits, dstate = model.decode_step(dec_x[:, t], dstate)
            steps.append(logits)
        return forced, jnp.stack(steps, 1), dstate

    forced, incremental, dstate = (jax.jit(run) if jit else run)(state)
    chex.assert_trees_all_close(incremental, forced, atol=1e-5, rtol=1e-5)
    check_decode_state(dstate, 3)


def test_dropout_trains_under_jit_and_is_off_in_eval(model):
    m = nnx.clone(model)
    m.train()
    x, x_len, dec_x = _batch()
    graphdef, params, rest = nnx.split(m, nnx.Param, ...)

    @jax.jit
    def loss_and_grad(params, rest):
        def loss(params):
            model = nnx.merge(graphdef, params, rest, copy=True)
            out = model(x, dec_x, x_len)
            return (out**2).mean(), nnx.state(model, nnx.Not(nnx.Param))

        return jax.value_and_grad(loss, has_aux=True)(params)

    (l1, new_rest), grads = loss_and_grad(params, rest)
    (l2, _), _ = loss_and_grad(params, new_rest)  # the dropout stream advanced through the scan
    assert float(l1) != float(l2)
    chex.assert_tree_all_finite(grads)
    m.eval()
    chex.assert_trees_all_close(m(x, dec_x, x_len), m(x, dec_x, x_len))


def test_decode_step_runs_inside_a_scan_and_greedy_decoding_matches_teacher_forcing(model):
    m = nnx.clone(model)
    m.train()  # greedy_decode runs the model in eval mode whatever its mode
    x, x_len, _ = _batch()
    tokens, _ = greedy_decode(m, x, x_len, bos=1, eos=2, max_len=5)  # a scan of decode_step
    chex.assert_shape(tokens, (3, 5))
    m.eval()
    dec_x = jnp.concatenate([jnp.ones((3, 1), tokens.dtype), tokens[:, :-1]], axis=1)
    teacher = np.asarray(jnp.argmax(m(x, dec_x, x_len), -1))
    tokens = np.asarray(tokens)
    for b in range(3):  # up to the first eos, greedy = argmax of the teacher-forced logits
        n = int(np.argmax(tokens[b] == 2)) + 1 if (tokens[b] == 2).any() else 5
        np.testing.assert_array_equal(tokens[b, :n], teacher[b, :n])


@pytest.mark.slow
def test_config_has_the_book_settings_and_trains(shared_data):
    from d2ljax.cli import load_config
    from d2ljax.config import apply_overrides
    from d2ljax.experiment import build, train

    cfg = load_config("bahdanau_seq2seq")
    assert dict(cfg.model.kwargs) == dict(embed_size=256, num_hiddens=256, num_layers=2,
                                          dropout=0.2)
    assert (cfg.data.batch_size, cfg.epochs, cfg.optimizer.name, cfg.optimizer.learning_rate,
            cfg.optimizer.grad_clip, cfg.loss, cfg.data.val_split) == (
        128, 30, "adam", 0.005, 1.0, "seq2seq", "val")
    tiny = apply_overrides(load_config("bahdanau_seq2seq:smoke"), [
        "model.kwargs.embed_size=8", "model.kwargs.num_hiddens=16",
        "data.kwargs.num_train=64", "data.kwargs.num_val=32", "data.batch_size=32",
    ])
    exp = build(tiny)
    assert isinstance(exp.model, Seq2SeqAttention)
    history = train(exp, quiet=True).history
    assert np.isfinite(history["train_loss"][-1]) and np.isfinite(history["val_loss"][-1])
