"""Generating target sequences with an encoder-decoder: greedy search (§10.7.4) and beam search
(§10.8), for any :class:`~d2ljax.models.seq2seq.EncoderDecoder`.

Both run the whole generation in one compiled call: the model is split once (``nnx.split``) and
rebuilt inside ``jax.jit`` (``nnx.merge``); the steps are a ``jax.lax.scan`` over a decode state
of fixed shape (the contract in :mod:`d2ljax.models.seq2seq`). Generation always runs the model
in eval mode (dropout off), whatever mode the module passed in is in; the module itself is not
changed.

Conventions shared by both:

- the first decoder input is ``bos``; exactly ``max_len`` tokens are generated;
- once a sequence has produced ``eos`` it is finished: every later position holds ``eos`` and
  adds nothing to its score;
- a sequence's length counts the tokens up to and including its first ``eos`` (``max_len`` if it
  has none), like the dataset's ``y_len``.

Beam search (§10.8) keeps ``beam_size`` candidates per example, at each step the ``beam_size``
best of the ``beam_size * V`` one-token extensions by total log-probability (a finished
candidate has exactly one extension, itself). At the end it returns, among the final candidates,
the one with the best score ``(1 / L**alpha) * sum_{t <= L} log P(y_t | y_<t, c)`` (eq. 10.8.4),
where ``L`` is the length above, so the ``eos`` that ends a sequence counts and the positions
after it do not. (The book also counts the unfinished prefixes of every step as candidates; with
length normalisation these tend to win as very short, unfinished outputs, so only complete
candidates -- ended by ``eos`` or by ``max_len`` -- compete here.) With ``beam_size=1`` beam search
is greedy search.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.seq2seq import check_decode_state

__all__ = ["beam_search", "greedy_decode", "tokens_to_text"]


def _prepare(model, enc_x, enc_valid_len, max_len):
    if not hasattr(model, "init_decode_state") or not hasattr(model, "decode_step"):
        raise TypeError(
            f"{type(model).__name__} is not an EncoderDecoder (it needs init_decode_state and "
            "decode_step)"
        )
    enc_x = jnp.asarray(enc_x)
    if enc_x.ndim != 2 or not jnp.issubdtype(enc_x.dtype, jnp.integer):
        raise ValueError(
            f"enc_x must be int token ids of shape (B, S), got {enc_x.dtype}{enc_x.shape}"
        )
    B, S = enc_x.shape
    if enc_valid_len is None:
        enc_valid_len = jnp.full((B,), S, jnp.int32)
    enc_valid_len = jnp.asarray(enc_valid_len, jnp.int32)
    if enc_valid_len.shape != (B,):
        raise ValueError(f"enc_valid_len must have shape ({B},), got {enc_valid_len.shape}")
    if int(max_len) != max_len or max_len < 1:
        raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
    graphdef, state = nnx.split(model)
    return graphdef, state, enc_x, enc_valid_len


def _eval_model(graphdef, state):
    model = nnx.merge(graphdef, state, copy=True)
    model.eval()
    return model


def _first_eos_lengths(tokens_BT: jax.Array, eos: int) -> jax.Array:
    is_eos = tokens_BT == eos
    T = tokens_BT.shape[1]
    return jnp.where(is_eos.any(axis=1), jnp.argmax(is_eos, axis=1) + 1, T).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("graphdef", "bos", "eos", "max_len"))
def _greedy(graphdef, state, enc_x, enc_valid_len, *, bos, eos, max_len):
    model = _eval_model(graphdef, state)
    B = enc_x.shape[0]
    dec_state = model.init_decode_state(enc_x, enc_valid_len, max_len)
    check_decode_state(dec_state, B)

    def step(carry, _):
        token_B, dec_state, done_B = carry
        logits_BV, dec_state = model.decode_step(token_B, dec_state)
        nxt_B = jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
        nxt_B = jnp.where(done_B, eos, nxt_B)
        return (nxt_B, dec_state, done_B | (nxt_B == eos)), nxt_B

    init = (jnp.full((B,), bos, jnp.int32), dec_state, jnp.zeros((B,), bool))
    _, tokens_TB = jax.lax.scan(step, init, None, length=max_len)
    tokens_BT = tokens_TB.T
    return tokens_BT, _first_eos_lengths(tokens_BT, eos)


def greedy_decode(
    model: nnx.Module,
    enc_x: jax.Array,
    enc_valid_len: jax.Array | None = None,
    *,
    bos: int,
    eos: int,
    max_len: int,
) -> tuple[jax.Array, jax.Array]:
    """Greedy search (§10.7.4 / §10.8.1): at each step the most likely next token.

    Args:
      model: an :class:`~d2ljax.models.seq2seq.EncoderDecoder` (run in eval mode).
      enc_x: source ids ``(B, S)``; enc_valid_len: ``(B,)`` non-pad source lengths (``None``:
        all ``S``).
      bos, eos: target vocabulary indices of ``<bos>`` and ``<eos>``; max_len: tokens to generate.

    Returns:
      ``(tokens_BT, lengths_B)``: ``T = max_len`` ids, ``eos`` after the first ``eos``;
      ``lengths_B`` counts tokens up to and including the first ``eos`` (``max_len`` if none).
    """
    graphdef, state, enc_x, enc_valid_len = _prepare(model, enc_x, enc_valid_len, max_len)
    return _greedy(
        graphdef, state, enc_x, enc_valid_len, bos=int(bos), eos=int(eos), max_len=int(max_len)
    )


@functools.partial(
    jax.jit, static_argnames=("graphdef", "bos", "eos", "max_len", "beam_size", "alpha")
)
def _beam(graphdef, state, enc_x, enc_valid_len, *, bos, eos, max_len, beam_size, alpha):
    model = _eval_model(graphdef, state)
    B, K = enc_x.shape[0], beam_size
    dec_state = model.init_decode_state(enc_x, enc_valid_len, max_len)
    check_decode_state(dec_state, B)
    # Candidate k of example b lives at row b * K + k.
    dec_state = jax.tree.map(lambda x: jnp.repeat(x, K, axis=0), dec_state)
    rows_B1 = jnp.arange(B)[:, None] * K

    def step(carry, t):
        last_BK, dec_state, tokens_BKT, score_BK, done_BK, len_BK = carry
        logits_NV, dec_state = model.decode_step(last_BK.reshape(-1), dec_state)
        V = logits_NV.shape[-1]
        logp_BKV = jax.nn.log_softmax(logits_NV.astype(jnp.float32)).reshape(B, K, V)
        # A finished candidate has one extension, eos, at no cost.
        only_eos_V = jnp.full((V,), -jnp.inf).at[eos].set(0.0)
        logp_BKV = jnp.where(done_BK[..., None], only_eos_V, logp_BKV)
        total_BX = (score_BK[..., None] + logp_BKV).reshape(B, K * V)
        score_BK, idx_BK = jax.lax.top_k(total_BX, K)
        parent_BK, token_BK = idx_BK // V, (idx_BK % V).astype(jnp.int32)
        take = functools.partial(jnp.take_along_axis, indices=parent_BK, axis=1)
        was_done_BK = take(done_BK)
        tokens_BKT = jnp.take_along_axis(tokens_BKT, parent_BK[..., None], axis=1)
        tokens_BKT = tokens_BKT.at[:, :, t].set(token_BK)
        len_BK = take(len_BK) + (~was_done_BK).astype(jnp.int32)
        done_BK = was_done_BK | (token_BK == eos)
        rows = (rows_B1 + parent_BK).reshape(-1)
        dec_state = jax.tree.map(lambda x: x[rows], dec_state)
        return (token_BK, dec_state, tokens_BKT, score_BK, done_BK, len_BK), None

    # Only candidate 0 is live at first, so the K first tokens are K different extensions of it.
    score0_BK = jnp.where(jnp.arange(K)[None, :] == 0, 0.0, -jnp.inf) * jnp.ones((B, 1))
    init = (
        jnp.full((B, K), bos, jnp.int32),
        dec_state,
        jnp.full((B, K, max_len), eos, jnp.int32),
        score0_BK,
        jnp.zeros((B, K), bool),
        jnp.zeros((B, K), jnp.int32),
    )
    (_, _, tokens_BKT, score_BK, _, len_BK), _ = jax.lax.scan(step, init, jnp.arange(max_len))
    norm_BK = score_BK / len_BK.astype(jnp.float32) ** alpha
    best_B = jnp.argmax(norm_BK, axis=1)
    tokens_BT = jnp.take_along_axis(tokens_BKT, best_B[:, None, None], axis=1)[:, 0]
    return tokens_BT, jnp.take_along_axis(norm_BK, best_B[:, None], axis=1)[:, 0]


def beam_search(
    model: nnx.Module,
    enc_x: jax.Array,
    enc_valid_len: jax.Array | None = None,
    *,
    bos: int,
    eos: int,
    max_len: int,
    beam_size: int,
    alpha: float = 0.75,
) -> tuple[jax.Array, jax.Array]:
    """Beam search (§10.8.3); see the module docstring for the exact rule.

    Args: as :func:`greedy_decode`, plus ``beam_size`` (candidates kept per example; 1 is greedy)
    and ``alpha`` (length-normalisation exponent of eq. 10.8.4; 0 ranks by total log-probability).

    Returns:
      ``(tokens_BT, score_B)``: the best candidate of each example (``eos`` after its first
      ``eos``) and its score ``sum log p / L**alpha``.
    """
    if int(beam_size) != beam_size or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer, got {beam_size!r}")
    graphdef, state, enc_x, enc_valid_len = _prepare(model, enc_x, enc_valid_len, max_len)
    return _beam(
        graphdef,
        state,
        enc_x,
        enc_valid_len,
        bos=int(bos),
        eos=int(eos),
        max_len=int(max_len),
        beam_size=int(beam_size),
        alpha=float(alpha),
    )


def tokens_to_text(tokens: Sequence[int], tgt_vocab, eos_token: str = "<eos>") -> str:
    """The tokens before the first ``<eos>``, joined by spaces (how the book prints a
    translation)."""
    words = []
    for word in tgt_vocab.to_tokens([int(i) for i in tokens]):
        if word == eos_token:
            break
        words.append(word)
    return " ".join(words)
