"""§10.7-§10.8 generation: greedy and beam search on hand-built decoders whose step
probabilities are fixed (so every expected sequence and score is worked out by hand), beam 1 ==
greedy on a real model, and translate() with the real vocabularies."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.inference import translate
from d2ljax.models.decoding import beam_search, greedy_decode, tokens_to_text
from d2ljax.models.seq2seq import EncoderDecoder, Seq2Seq

A, B_, C, EOS, BOS = 0, 1, 2, 3, 4
V = 5


class TableModel(EncoderDecoder):
    """A test double: the next-token distribution depends only on the tokens generated so far.

    ``probs`` maps a prefix (tuple of tokens) to ``{token: probability}``; any other prefix gets
    the uniform distribution over A, B, C, <eos>. The decode state is the prefix's node index.
    """

    def __init__(self, probs):
        prefixes = list(probs)
        index = {p: i for i, p in enumerate(prefixes)}
        other = len(prefixes)
        p_table = np.zeros((other + 1, V))
        p_table[other, [A, B_, C, EOS]] = 0.25
        nxt = np.full((other + 1, V), other, np.int32)
        for p, dist in probs.items():
            assert abs(sum(dist.values()) - 1) < 1e-9, p
            for tok, pr in dist.items():
                p_table[index[p], tok] = pr
            for tok in range(V):
                nxt[index[p], tok] = index.get((*p, tok), other)
        with np.errstate(divide="ignore"):
            self.logp = nnx.Variable(jnp.asarray(np.log(p_table), jnp.float32))
        self.next = nnx.Variable(jnp.asarray(nxt))
        self.root = index[()]

    def init_decode_state(self, enc_x_BS, enc_valid_len_B, max_len):
        return {"node_B": jnp.full((enc_x_BS.shape[0],), self.root, jnp.int32)}

    def decode_step(self, token_B, state):
        node_B = state["node_B"]
        node_B = jnp.where(token_B == BOS, node_B, self.next[...][node_B, token_B])
        return self.logp[...][node_B], {"node_B": node_B}


# Greedy A B C <eos> has probability .5 * .4 * .4 * .6 = .048; A C B <eos> has
# .5 * .3 * .6 * .6 = .054 (the book's figures 10.8.1 and 10.8.2). Beam 2 keeps both:
#   step 1: A .5, C .3        step 2: AB .2, AC .15 (C* are .3 * .25 = .075)
#   step 3: ACB .09, ABC .08  step 4: ACB<eos> .054, ABC<eos> .048 (next best .018)
BOOK = {
    (): {A: 0.5, B_: 0.15, C: 0.3, EOS: 0.05},
    (A,): {A: 0.05, B_: 0.4, C: 0.3, EOS: 0.25},
    (C,): {A: 0.25, B_: 0.25, C: 0.25, EOS: 0.25},
    (A, B_): {A: 0.2, B_: 0.2, C: 0.4, EOS: 0.2},
    (A, C): {A: 0.1, B_: 0.6, C: 0.1, EOS: 0.2},
    (A, B_, C): {A: 0.1, B_: 0.1, C: 0.2, EOS: 0.6},
    (A, C, B_): {A: 0.2, B_: 0.1, C: 0.1, EOS: 0.6},
}

# Alpha decides: <eos> alone has log .5 = -0.693 (L = 1); A B <eos> has log(.45 * .9 * .9) =
# -1.009, divided by 3**0.75 = 2.280 gives -0.443. With alpha = 0 the short one wins.
SHORT_OR_LONG = {
    (): {A: 0.45, B_: 0.03, C: 0.02, EOS: 0.5},
    (A,): {A: 0.04, B_: 0.9, C: 0.03, EOS: 0.03},
    (A, B_): {A: 0.04, B_: 0.03, C: 0.03, EOS: 0.9},
}


def _src(batch=2):
    return jnp.zeros((batch, 3), jnp.int32)


def test_greedy_follows_the_most_likely_token():
    tokens, lengths = greedy_decode(TableModel(BOOK), _src(), bos=BOS, eos=EOS, max_len=6)
    np.testing.assert_array_equal(tokens, [[A, B_, C, EOS, EOS, EOS]] * 2)
    np.testing.assert_array_equal(lengths, [4, 4])


def test_beam_two_finds_the_more_likely_sequence_greedy_misses():
    model = TableModel(BOOK)
    tokens, score = beam_search(model, _src(), bos=BOS, eos=EOS, max_len=4, beam_size=2)
    np.testing.assert_array_equal(tokens, [[A, C, B_, EOS]] * 2)
    np.testing.assert_allclose(score, [math.log(0.054) / 4**0.75] * 2, rtol=1e-5)
    greedy, greedy_score = beam_search(model, _src(), bos=BOS, eos=EOS, max_len=4, beam_size=1)
    np.testing.assert_array_equal(greedy, [[A, B_, C, EOS]] * 2)
    np.testing.assert_allclose(greedy_score, [math.log(0.048) / 4**0.75] * 2, rtol=1e-5)


def test_callable_inside_an_outer_jit():
    model = TableModel(BOOK)
    kw = dict(bos=BOS, eos=EOS, max_len=4)
    inner = nnx.jit(lambda m, x: (greedy_decode(m, x, **kw), beam_search(m, x, beam_size=2, **kw)))
    (g, g_len), (b, b_score) = inner(model, _src())
    np.testing.assert_array_equal(g, greedy_decode(model, _src(), **kw)[0])
    np.testing.assert_array_equal(b, [[A, C, B_, EOS]] * 2)


def test_length_normalisation_and_finished_candidates_are_kept():
    model = TableModel(SHORT_OR_LONG)
    kw = dict(bos=BOS, eos=EOS, max_len=3, beam_size=2)
    tokens, score = beam_search(model, _src(1), alpha=0.75, **kw)
    np.testing.assert_array_equal(tokens, [[A, B_, EOS]])
    np.testing.assert_allclose(score, [math.log(0.45 * 0.9 * 0.9) / 3**0.75], rtol=1e-5)
    tokens, score = beam_search(model, _src(1), alpha=0.0, **kw)
    np.testing.assert_array_equal(tokens, [[EOS, EOS, EOS]])
    np.testing.assert_allclose(score, [math.log(0.5)], rtol=1e-5)


def test_no_eos_within_max_len_counts_every_token():
    model = TableModel({(): {A: 0.7, B_: 0.1, C: 0.1, EOS: 0.1}, (A,): {A: 1.0}, (A, A): {A: 1.0}})
    tokens, lengths = greedy_decode(model, _src(1), bos=BOS, eos=EOS, max_len=3)
    np.testing.assert_array_equal(tokens, [[A, A, A]])
    np.testing.assert_array_equal(lengths, [3])
    _, score = beam_search(model, _src(1), bos=BOS, eos=EOS, max_len=3, beam_size=3)
    np.testing.assert_allclose(score, [math.log(0.7) / 3**0.75], rtol=1e-5)


def _seq2seq(dropout=0.0):
    return Seq2Seq(9, 8, 8, 16, 2, dropout, rngs=nnx.Rngs(params=3, dropout=4))


def test_beam_one_equals_greedy_on_a_real_model():
    model = _seq2seq()
    x = jax.random.randint(jax.random.key(0), (6, 5), 0, 9)
    x_len = jnp.array([5, 4, 3, 2, 5, 1])
    kw = dict(bos=1, eos=2, max_len=7)
    g, lengths = greedy_decode(model, x, x_len, **kw)
    b, _ = beam_search(model, x, x_len, beam_size=1, **kw)
    np.testing.assert_array_equal(g, b)
    b3, _ = beam_search(model, x, x_len, beam_size=3, **kw)
    assert b3.shape == g.shape == (6, 7)
    for row, n in zip(np.asarray(g), np.asarray(lengths), strict=True):
        assert (row[n:] == 2).all() and (2 not in row[: n - 1])


def test_a_beam_wider_than_the_search_space_is_exhaustive_search():
    """With beam_size = V**max_len nothing is pruned: the result must be the best of all
    complete sequences, scored by brute force with teacher forcing."""
    V, T, bos, eos, alpha = 4, 3, 0, 1, 0.75
    model = Seq2Seq(5, V, 4, 8, 1, 0.0, rngs=nnx.Rngs(7))
    x = jax.random.randint(jax.random.key(1), (2, 4), 0, 5)
    tokens, score = beam_search(model, x, bos=bos, eos=eos, max_len=T, beam_size=V**T, alpha=alpha)
    seqs = np.array(list(itertools.product(range(V), repeat=T)), np.int32)
    dec_x = np.concatenate([np.full((len(seqs), 1), bos), seqs[:, :-1]], axis=1)
    forward = nnx.jit(lambda m, src, dec: m(src, dec))
    for b in range(2):
        logits = forward(model, jnp.repeat(x[b : b + 1], len(seqs), 0), jnp.asarray(dec_x))
        logp = np.asarray(jax.nn.log_softmax(logits))
        best = {}
        for seq, lp in zip(seqs, logp, strict=True):
            n = int(np.argmax(seq == eos)) + 1 if eos in seq else T
            s = sum(lp[t, seq[t]] for t in range(n)) / n**alpha
            best[tuple(seq[:n])] = s
        want = max(best, key=best.get)
        got = tuple(np.asarray(tokens[b])[: len(want)])
        assert got == want
        np.testing.assert_allclose(score[b], best[want], rtol=1e-4)


def test_generation_runs_in_eval_mode_and_leaves_the_model_alone():
    model = _seq2seq(dropout=0.5)
    x = jax.random.randint(jax.random.key(0), (3, 5), 0, 9)
    kw = dict(bos=1, eos=2, max_len=6)
    first, _ = greedy_decode(model, x, **kw)
    second, _ = greedy_decode(model, x, **kw)
    np.testing.assert_array_equal(first, second)
    assert not model.decoder.rnn.dropout.deterministic  # still in train mode


def test_bad_arguments():
    model = TableModel(BOOK)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, _src(), bos=BOS, eos=EOS, max_len=3, beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(model, _src(), bos=BOS, eos=EOS, max_len=0)
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        greedy_decode(model, jnp.zeros((3,), jnp.int32), bos=BOS, eos=EOS, max_len=2)
    with pytest.raises(TypeError, match="EncoderDecoder"):
        greedy_decode(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), _src(), bos=BOS, eos=EOS, max_len=2)


def test_translate_with_the_real_vocabularies(shared_data):
    from d2ljax.data.translation import load_fra_eng

    info = load_fra_eng(num_train=64, num_val=8)["_info"]
    src_vocab, tgt_vocab = info["src_vocab"], info["tgt_vocab"]
    model = Seq2Seq(len(src_vocab), len(tgt_vocab), 8, 16, 2, 0.0, rngs=nnx.Rngs(0))
    sentences = ["go .", "i lost ."]
    greedy = translate(model, sentences, src_vocab, tgt_vocab, num_steps=5)
    beam = translate(model, sentences, src_vocab, tgt_vocab, num_steps=5, beam_size=2)
    for out in greedy + beam:
        assert isinstance(out, str) and "<eos>" not in out and len(out.split()) <= 5
    assert tokens_to_text([tgt_vocab["va"], tgt_vocab["!"], info["eos"], 0], tgt_vocab) == "va !"
