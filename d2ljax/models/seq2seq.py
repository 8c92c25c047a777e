"""Encoder-decoder models for machine translation (book §10.6-§10.7).

The interface (§10.6) that every sequence-to-sequence model in d2ljax implements -- the RNN one
here, the Bahdanau-attention (§11.4) and Transformer (§11.7) ones in their own files:

- :class:`Encoder` -- ``encoder(enc_x_BS, enc_valid_len_B) -> enc_outputs`` (any pytree).
- :class:`Decoder` -- ``decoder.init_state(enc_outputs, enc_valid_len_B, max_len) -> state``;
  ``decoder(dec_x_BT, state) -> (logits_BTV, state)`` (all ``T`` steps at once, teacher forcing);
  ``decoder.step(token_B, state) -> (logits_BV, state)`` (one step, for generation).
- :class:`EncoderDecoder` -- holds ``self.encoder`` and ``self.decoder`` and offers the three
  calls the rest of the package uses:

  * ``model(enc_x_BS, dec_x_BT, enc_valid_len_B) -> logits_BTV`` -- training with teacher forcing
    (the ``"seq2seq"`` loss calls exactly this);
  * ``model.init_decode_state(enc_x_BS, enc_valid_len_B, max_len) -> state`` -- runs the encoder
    once and returns the decoder's starting state for generating up to ``max_len`` tokens;
  * ``model.decode_step(token_B, state) -> (logits_BV, state)`` -- one generation step.

**The decode-state contract** (what :mod:`d2ljax.models.decoding` relies on, so that greedy and
beam search run inside one ``jax.lax.scan`` under ``jax.jit`` for *any* model):

1. ``state`` is a pytree of arrays whose shapes and dtypes never change from step to step (a
   Transformer keeps a key/value cache of length ``max_len`` and a position counter instead of
   concatenating; Bahdanau keeps the encoder outputs and the valid lengths).
2. Every leaf has the batch as its **leading axis** ``B`` (store an RNN's ``(L, B, H)`` hidden state
   as ``(B, L, H)``, a position counter as ``(B,)``). Beam search repeats every leaf ``beam_size``
   times along axis 0 and reorders leaves with ``leaf[beam_index]``; nothing else touches them.
3. ``decode_step`` is a pure function of ``(token_B, state)`` and the parameters, in eval mode.

The default implementations route through ``self.encoder``/``self.decoder``; a model that does
not fit that split (a test stub, say) overrides ``__call__``, ``init_decode_state`` and
``decode_step`` directly.

The RNN model of §10.7:

- :class:`StackedGRU` -- a multi-layer GRU with PyTorch's ``nn.GRU`` parameter layout (the book's
  ``d2l.GRU``), scanned over time with ``jax.lax.scan``;
- :class:`Seq2SeqEncoder` -- embedding + GRU; returns all top-layer outputs and the final state
  of every layer;
- :class:`Seq2SeqDecoder` -- embedding, the encoder's final top-layer state concatenated to every
  input as the context, GRU initialised with the encoder's final state, dense to the vocabulary;
- :class:`Seq2Seq` -- the two together, registered as ``"seq2seq"``.

Variable lengths: like the book, the RNN encoder runs over the padding too (``enc_valid_len`` is
accepted and ignored by it), so its final state -- and hence the context and the decoder's
outputs -- depends on what the pad positions hold. What padding cannot change: the encoder
outputs at valid positions ``t < len`` (the recurrence is causal) and the decoder's outputs at
target positions before a pad (also causal); the ``"seq2seq"`` loss masks the rest.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

__all__ = [
    "StackedGRU",
    "Decoder",
    "Encoder",
    "EncoderDecoder",
    "Seq2Seq",
    "Seq2SeqDecoder",
    "Seq2SeqEncoder",
    "check_decode_state",
]

DecodeState = Any  # a pytree of fixed-shape arrays with a leading batch axis


# --------------------------------------------------------------------------------------------
# The interface (§10.6)
# --------------------------------------------------------------------------------------------


class Encoder(nnx.Module):
    """Base encoder (§10.6.1): maps source tokens to whatever the decoder needs.

    Subclasses implement ``__call__(enc_x_BS, enc_valid_len_B=None) -> enc_outputs``, where
    ``enc_x_BS`` holds int token ids ``(B, S)`` and ``enc_valid_len_B`` the number of real (non
    pad) tokens of each source (``None``: all ``S`` are real). ``enc_outputs`` is any pytree.
    """

    def __call__(self, enc_x_BS: jax.Array, enc_valid_len_B: jax.Array | None = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")


class Decoder(nnx.Module):
    """Base decoder (§10.6.2).

    Subclasses implement:

    - ``init_state(enc_outputs, enc_valid_len_B, max_len) -> state``: the state before the first
      target token, a pytree of fixed-shape arrays with leading batch axis (see the module
      docstring); ``max_len`` is the most steps the state must serve (cache sizes).
    - ``__call__(dec_x_BT, state) -> (logits_BTV, state)``: all ``T`` decoder inputs at once
      (teacher forcing); ``T <= max_len``.

    ``step`` (one token) defaults to ``__call__`` on a length-1 sequence, which is right for
    recurrent decoders (RNN, Bahdanau); a Transformer overrides it to write its key/value cache.
    """

    def init_state(
        self, enc_outputs: Any, enc_valid_len_B: jax.Array | None, max_len: int
    ) -> DecodeState:
        raise NotImplementedError(f"{type(self).__name__} must implement init_state")

    def __call__(self, dec_x_BT: jax.Array, state: DecodeState) -> tuple[jax.Array, DecodeState]:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def step(self, token_B: jax.Array, state: DecodeState) -> tuple[jax.Array, DecodeState]:
        """One decoding step: ``token_B`` int ids ``(B,)`` -> ``(logits_BV, new_state)``."""
        logits_B1V, state = self(token_B[:, None], state)
        return logits_B1V[:, 0], state


class EncoderDecoder(nnx.Module):
    """Base encoder-decoder (§10.6.3): ``self.encoder`` (an :class:`Encoder`) followed by
    ``self.decoder`` (a :class:`Decoder`).

    Subclasses set ``self.encoder`` and ``self.decoder`` in ``__init__``; the three methods below
    then work unchanged. See the module docstring for the decode-state contract.
    """

    encoder: Encoder
    decoder: Decoder

    def __call__(
        self,
        enc_x_BS: jax.Array,
        dec_x_BT: jax.Array,
        enc_valid_len_B: jax.Array | None = None,
    ) -> jax.Array:
        """Teacher forcing: logits ``(B, T, V)`` for the next token after each of ``dec_x_BT``
        (``<bos>`` followed by the target shifted right)."""
        _check_tokens(enc_x_BS, "enc_x_BS")
        _check_tokens(dec_x_BT, "dec_x_BT")
        if dec_x_BT.shape[0] != enc_x_BS.shape[0]:
            raise ValueError(
                f"source and target batch sizes differ: {enc_x_BS.shape[0]} vs {dec_x_BT.shape[0]}"
            )
        enc_outputs = self.encoder(enc_x_BS, enc_valid_len_B)
        state = self.decoder.init_state(enc_outputs, enc_valid_len_B, dec_x_BT.shape[1])
        logits_BTV, _ = self.decoder(dec_x_BT, state)
        return logits_BTV

    def init_decode_state(
        self, enc_x_BS: jax.Array, enc_valid_len_B: jax.Array | None, max_len: int
    ) -> DecodeState:
        """Run the encoder; return the decoder state for generating up to ``max_len`` tokens."""
        _check_tokens(enc_x_BS, "enc_x_BS")
        enc_outputs = self.encoder(enc_x_BS, enc_valid_len_B)
        return self.decoder.init_state(enc_outputs, enc_valid_len_B, int(max_len))

    def decode_step(
        self, token_B: jax.Array, state: DecodeState
    ) -> tuple[jax.Array, DecodeState]:
        """One generation step: the previous token ``(B,)`` -> next-token logits ``(B, V)``."""
        return self.decoder.step(token_B, state)


def check_decode_state(state: DecodeState, batch_size: int) -> None:
    """Raise a clear error unless every leaf of ``state`` is an array with leading axis
    ``batch_size`` (contract point 2 of the module docstring)."""
    leaves = jax.tree_util.tree_leaves_with_path(state)
    if not leaves:
        raise ValueError("the decode state has no arrays")
    for path, leaf in leaves:
        shape = getattr(leaf, "shape", None)
        if shape is None or len(shape) == 0 or shape[0] != batch_size:
            raise ValueError(
                f"decode-state leaf {jax.tree_util.keystr(path)} has shape {shape}; every leaf "
                f"must have the batch ({batch_size}) as its leading axis"
            )


def _check_tokens(x: jax.Array, name: str) -> None:
    if getattr(x, "ndim", None) != 2:
        shape = getattr(x, "shape", x)
        raise ValueError(f"{name} must be int token ids of shape (B, T), got {shape}")
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{name} must hold integer token ids, got dtype {x.dtype}")


# --------------------------------------------------------------------------------------------
# The RNN encoder-decoder (§10.7)
# --------------------------------------------------------------------------------------------

_xavier = nnx.initializers.xavier_uniform()


class _GRUCell(nnx.Module):
    """One GRU layer's cell with PyTorch's layout: ``W_ih (in, 3H)``, ``W_hh (H, 3H)`` and both
    biases, gates ordered ``r, z, n``; ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))``."""

    def __init__(self, num_inputs: int, num_hiddens: int, *, rngs: nnx.Rngs):
        # The book's init_seq2seq: Xavier-uniform weights (one matrix for the three gates, as
        # for torch's weight_ih_l*); PyTorch's default U(-1/sqrt(H), 1/sqrt(H)) biases.
        bound = 1.0 / num_hiddens**0.5

        def bias_init(key, shape, dtype=jnp.float32):
            return jax.random.uniform(key, shape, dtype, -bound, bound)

        self.num_hiddens = num_hiddens
        kw = dict(kernel_init=_xavier, bias_init=bias_init, rngs=rngs)
        self.ih = nnx.Linear(num_inputs, 3 * num_hiddens, **kw)
        self.hh = nnx.Linear(num_hiddens, 3 * num_hiddens, **kw)

    def __call__(self, h_BH: jax.Array, x_BD: jax.Array) -> jax.Array:
        xr, xz, xn = jnp.split(self.ih(x_BD), 3, axis=-1)
        hr, hz, hn = jnp.split(self.hh(h_BH), 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h_BH


class StackedGRU(nnx.Module):
    """Multi-layer GRU (the book's ``d2l.GRU`` = ``torch.nn.GRU``, §10.3/§10.7).

    Same parameters per layer as PyTorch (``3H(D + H) + 6H``), dropout on the outputs of every
    layer but the last. Batch-major: ``x_BTD -> (out_BTH, h_LBH)``; the time loop is a
    ``jax.lax.scan`` per layer.
    """

    def __init__(
        self, num_inputs: int, num_hiddens: int, num_layers: int = 1, dropout: float = 0.0,
        *, rngs: nnx.Rngs,
    ):
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_hiddens = num_hiddens
        self.num_layers = num_layers
        self.cells = nnx.List(
            [
                _GRUCell(num_inputs if i == 0 else num_hiddens, num_hiddens, rngs=rngs)
                for i in range(num_layers)
            ]
        )
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(
        self, x_BTD: jax.Array, h0_LBH: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        B = x_BTD.shape[0]
        if h0_LBH is None:
            h0_LBH = jnp.zeros((self.num_layers, B, self.num_hiddens), x_BTD.dtype)
        elif h0_LBH.shape != (self.num_layers, B, self.num_hiddens):
            raise ValueError(
                f"initial state must have shape {(self.num_layers, B, self.num_hiddens)}, "
                f"got {h0_LBH.shape}"
            )
        seq_TBD = jnp.swapaxes(x_BTD, 0, 1)
        finals = []
        for i, cell in enumerate(self.cells):
            if i > 0:
                seq_TBD = self.dropout(seq_TBD)

            def step(h_BH, x_BD, cell=cell):
                h_BH = cell(h_BH, x_BD)
                return h_BH, h_BH

            h_BH, seq_TBD = jax.lax.scan(step, h0_LBH[i], seq_TBD)
            finals.append(h_BH)
        return jnp.swapaxes(seq_TBD, 0, 1), jnp.stack(finals)


class Seq2SeqEncoder(Encoder):
    """The RNN encoder of §10.7.1: embedding then a multi-layer GRU.

    ``enc_x_BS -> {"outputs_BSH": top-layer output at every step, "state_LBH": final state of
    every layer}``. The valid lengths are ignored: the GRU runs over the padding, as in the book.
    """

    def __init__(
        self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
        dropout: float = 0.0, *, rngs: nnx.Rngs,
    ):
        self.embedding = nnx.Embed(
            vocab_size, embed_size, embedding_init=nnx.initializers.normal(1.0), rngs=rngs
        )
        self.rnn = StackedGRU(embed_size, num_hiddens, num_layers, dropout, rngs=rngs)

    def __call__(
        self, enc_x_BS: jax.Array, enc_valid_len_B: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        embs_BSE = self.embedding(enc_x_BS)
        outputs_BSH, state_LBH = self.rnn(embs_BSE)
        return {"outputs_BSH": outputs_BSH, "state_LBH": state_LBH}


class Seq2SeqDecoder(Decoder):
    """The RNN decoder of §10.7.2.

    The encoder's final top-layer state is the context ``c``; at every step the decoder's GRU
    reads ``[embed(y_{t-1}); c]`` and starts from the encoder's final state (all layers); a dense
    layer maps its top-layer output to vocabulary logits.

    Decode state: ``{"context_BH": c, "hidden_BLH": GRU state, batch-major}``.
    """

    def __init__(
        self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
        dropout: float = 0.0, *, rngs: nnx.Rngs,
    ):
        self.embedding = nnx.Embed(
            vocab_size, embed_size, embedding_init=nnx.initializers.normal(1.0), rngs=rngs
        )
        self.rnn = StackedGRU(
            embed_size + num_hiddens, num_hiddens, num_layers, dropout, rngs=rngs
        )
        self.dense = nnx.Linear(num_hiddens, vocab_size, kernel_init=_xavier, rngs=rngs)

    def init_state(
        self, enc_outputs: dict, enc_valid_len_B: jax.Array | None = None, max_len: int = 0
    ) -> dict[str, jax.Array]:
        state_LBH = enc_outputs["state_LBH"]
        return {
            "context_BH": enc_outputs["outputs_BSH"][:, -1],  # = state_LBH[-1]
            "hidden_BLH": jnp.swapaxes(state_LBH, 0, 1),
        }

    def __call__(
        self, dec_x_BT: jax.Array, state: dict[str, jax.Array]
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        embs_BTE = self.embedding(dec_x_BT)
        context_BTH = jnp.broadcast_to(
            state["context_BH"][:, None, :],
            (*dec_x_BT.shape, state["context_BH"].shape[-1]),
        )
        x_BTD = jnp.concatenate([embs_BTE, context_BTH], axis=-1)
        outputs_BTH, h_LBH = self.rnn(x_BTD, jnp.swapaxes(state["hidden_BLH"], 0, 1))
        logits_BTV = self.dense(outputs_BTH)
        new_state = {"context_BH": state["context_BH"], "hidden_BLH": jnp.swapaxes(h_LBH, 0, 1)}
        return logits_BTV, new_state


@register("seq2seq", description="§10.7 RNN encoder-decoder (GRU) for machine translation")
class Seq2Seq(EncoderDecoder):
    """RNN encoder-decoder for machine translation (§10.7): a :class:`Seq2SeqEncoder` and a
    :class:`Seq2SeqDecoder`, defaults as the book trains it on English-French.

    Args:
      src_vocab_size, tgt_vocab_size: vocabulary sizes (filled from the dataset's ``_info``).
      embed_size, num_hiddens, num_layers, dropout: shared by the encoder and the decoder.
      rngs: ``nnx.Rngs(params=..., dropout=...)``.

    Subclasses with another RNN decoder of the same constructor (``(vocab_size, embed_size,
    num_hiddens, num_layers, dropout, *, rngs)``) only set :attr:`decoder_class`.
    """

    decoder_class: type[Decoder] = Seq2SeqDecoder

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embed_size: int = 256,
        num_hiddens: int = 256,
        num_layers: int = 2,
        dropout: float = 0.2,
        *,
        rngs: nnx.Rngs,
    ):
        self.encoder = Seq2SeqEncoder(
            src_vocab_size, embed_size, num_hiddens, num_layers, dropout, rngs=rngs
        )
        self.decoder = self.decoder_class(
            tgt_vocab_size, embed_size, num_hiddens, num_layers, dropout, rngs=rngs
        )
