"""The Transformer (book §11.7), as Flax NNX modules.

- :class:`PositionWiseFFN` -- §11.7.2: ``Linear -> ReLU -> Linear`` applied at every position.
- :class:`AddNorm` -- §11.7.3: residual connection then layer normalization (post-norm).
- :class:`TransformerEncoderBlock`, :class:`TransformerEncoder` -- §11.7.4.
- :class:`TransformerDecoderBlock`, :class:`TransformerDecoder` -- §11.7.5.
- :class:`Transformer` -- the encoder–decoder (registered as ``"transformer"``), with
  incremental decoding through a fixed-size cache (see :meth:`Transformer.init_decode_state`).

Attention is :class:`d2ljax.models.attention.MultiHeadAttention` (the math of
:mod:`d2ljax.nn.attention`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx

from d2ljax.models.attention import MultiHeadAttention, PositionalEncoding
from d2ljax.models.registry import register
from d2ljax.models.seq2seq import Decoder, Encoder, EncoderDecoder

__all__ = [
    "AddNorm",
    "PositionWiseFFN",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderBlock",
    "TransformerEncoder",
    "TransformerEncoderBlock",
]


class PositionWiseFFN(nnx.Module):
    """Position-wise feed-forward network (§11.7.2): ``dense2(relu(dense1(x)))`` on the last axis.

    Args:
      num_inputs: input feature size.
      ffn_num_hiddens: hidden size.
      ffn_num_outputs: output size (default ``num_inputs``).
    """

    def __init__(
        self,
        num_inputs: int,
        ffn_num_hiddens: int,
        ffn_num_outputs: int | None = None,
        *,
        rngs: nnx.Rngs,
    ):
        self.dense1 = nnx.Linear(num_inputs, ffn_num_hiddens, rngs=rngs)
        self.dense2 = nnx.Linear(ffn_num_hiddens, ffn_num_outputs or num_inputs, rngs=rngs)

    def __call__(self, x):
        return self.dense2(nnx.relu(self.dense1(x)))


class AddNorm(nnx.Module):
    """Residual connection followed by layer normalization (§11.7.3): ``LN(dropout(Y) + X)``."""

    def __init__(self, num_hiddens: int, dropout: float = 0.0, *, rngs: nnx.Rngs):
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.ln = nnx.LayerNorm(num_hiddens, rngs=rngs)

    def __call__(self, x, y):
        return self.ln(self.dropout(y) + x)


class TransformerEncoderBlock(nnx.Module):
    """Transformer encoder block (§11.7.4): multi-head self-attention and a position-wise FFN,
    each followed by :class:`AddNorm`.

    ``__call__(x_BTD, valid_lens_B=None, *, causal=False, return_weights=False)`` returns
    ``(B, T, D)`` (and the self-attention weights ``(B, H, T, T)`` when ``return_weights``).
    ``valid_lens_B`` hides padded keys; ``causal=True`` hides later positions (GPT-style).
    """

    def __init__(
        self,
        num_hiddens: int,
        ffn_num_hiddens: int,
        num_heads: int,
        dropout: float,
        use_bias: bool = False,
        *,
        rngs: nnx.Rngs,
    ):
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout, use_bias, rngs=rngs)
        self.addnorm1 = AddNorm(num_hiddens, dropout, rngs=rngs)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens, rngs=rngs)
        self.addnorm2 = AddNorm(num_hiddens, dropout, rngs=rngs)

    def __call__(self, x_BTD, valid_lens_B=None, *, causal=False, return_weights=False):
        h_BTD, w_BHTT = self.attention(
            x_BTD, x_BTD, x_BTD, valid_lens_B, causal=causal, return_weights=True
        )
        y_BTD = self.addnorm1(x_BTD, h_BTD)
        out_BTD = self.addnorm2(y_BTD, self.ffn(y_BTD))
        return (out_BTD, w_BHTT) if return_weights else out_BTD


class TransformerEncoder(Encoder):
    """Transformer encoder (§11.7.4): embedding scaled by ``sqrt(D)``, positional encoding, then
    ``num_blks`` :class:`TransformerEncoderBlock` s.

    ``__call__(x_BS, valid_lens_B=None, *, return_weights=False)`` returns ``(B, S, D)`` (and the
    self-attention weights of every block, ``(num_blks, B, H, S, S)``). ``max_len`` bounds the
    sequence length (positional-encoding table).
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int,
        ffn_num_hiddens: int,
        num_heads: int,
        num_blks: int,
        dropout: float,
        use_bias: bool = False,
        max_len: int = 1000,
        *,
        rngs: nnx.Rngs,
    ):
        self.num_hiddens = num_hiddens
        self.embedding = nnx.Embed(vocab_size, num_hiddens, rngs=rngs)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout, max_len, rngs=rngs)
        self.blks = nnx.List(
            [
                TransformerEncoderBlock(
                    num_hiddens, ffn_num_hiddens, num_heads, dropout, use_bias, rngs=rngs
                )
                for _ in range(num_blks)
            ]
        )

    def __call__(self, x_BS, valid_lens_B=None, *, return_weights=False):
        x_BSD = self.pos_encoding(self.embedding(x_BS) * math.sqrt(self.num_hiddens))
        weights = []
        for blk in self.blks:
            x_BSD, w = blk(x_BSD, valid_lens_B, return_weights=True)
            weights.append(w)
        return (x_BSD, jnp.stack(weights)) if return_weights else x_BSD


class TransformerDecoderBlock(nnx.Module):
    """Transformer decoder block (§11.7.5): masked self-attention, encoder–decoder attention and
    a position-wise FFN, each followed by :class:`AddNorm`.

    ``__call__(x_BTD, enc_outputs_BSD, enc_valid_lens_B, *, kv_BKD=None, kv_valid_lens=None,
    return_weights=False)``:

    - teacher forcing (``kv_BKD=None``): self-attention over ``x_BTD`` with a causal mask;
    - incremental decoding: the queries ``x_BTD`` attend over ``kv_BKD`` (this block's inputs at
      the positions decoded so far, the newest included) limited by ``kv_valid_lens`` (``(B,)`` or
      ``(B, T)``).

    Returns ``(B, T, D)`` (and ``(self_weights (B, H, T, K), cross_weights (B, H, T, S))``).
    """

    def __init__(
        self,
        num_hiddens: int,
        ffn_num_hiddens: int,
        num_heads: int,
        dropout: float,
        use_bias: bool = False,
        *,
        rngs: nnx.Rngs,
    ):
        self.attention1 = MultiHeadAttention(num_hiddens, num_heads, dropout, use_bias, rngs=rngs)
        self.addnorm1 = AddNorm(num_hiddens, dropout, rngs=rngs)
        self.attention2 = MultiHeadAttention(num_hiddens, num_heads, dropout, use_bias, rngs=rngs)
        self.addnorm2 = AddNorm(num_hiddens, dropout, rngs=rngs)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens, rngs=rngs)
        self.addnorm3 = AddNorm(num_hiddens, dropout, rngs=rngs)

    def __call__(
        self,
        x_BTD,
        enc_outputs_BSD,
        enc_valid_lens_B=None,
        *,
        kv_BKD=None,
        kv_valid_lens=None,
        return_weights=False,
    ):
        if kv_BKD is None:
            h_BTD, w_self = self.attention1(x_BTD, x_BTD, x_BTD, causal=True, return_weights=True)
        else:
            h_BTD, w_self = self.attention1(
                x_BTD, kv_BKD, kv_BKD, kv_valid_lens, return_weights=True
            )
        y_BTD = self.addnorm1(x_BTD, h_BTD)
        h2_BTD, w_cross = self.attention2(
            y_BTD, enc_outputs_BSD, enc_outputs_BSD, enc_valid_lens_B, return_weights=True
        )
        z_BTD = self.addnorm2(y_BTD, h2_BTD)
        out_BTD = self.addnorm3(z_BTD, self.ffn(z_BTD))
        return (out_BTD, (w_self, w_cross)) if return_weights else out_BTD




class TransformerDecoder(Decoder):
    """Transformer decoder (§11.7.5): embedding ``* sqrt(D)``, positional encoding,
    ``num_blks`` :class:`TransformerDecoderBlock` s and a dense layer to the vocabulary.

    Decode state (:meth:`init_state`), every leaf batch-major and of fixed shape:

    - ``enc_outputs_BSD``, ``enc_valid_len_B``: what the encoder–decoder attention reads;
    - ``cache_BLMD``: for each of the ``L`` blocks, that block's *inputs* at the ``M = max_len``
      positions (the book's ``state[2]``, here preallocated; the keys and values of the block's
      self-attention are projected from it);
    - ``step_B``: how many positions are filled (the position of the next token).

    ``__call__(dec_x_BT, state, *, return_weights=False)`` is teacher forcing from position 0
    (causal self-attention over the ``T`` inputs; it also fills cache positions ``0 .. T-1`` and
    sets ``step_B = T``, so it doubles as a prefill); :meth:`step` decodes one token through the
    cache. Both give the same logits for the same prefix (tested).
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int,
        ffn_num_hiddens: int,
        num_heads: int,
        num_blks: int,
        dropout: float,
        use_bias: bool = False,
        max_len: int = 1000,
        *,
        rngs: nnx.Rngs,
    ):
        self.num_hiddens = num_hiddens
        self.num_blks = num_blks
        self.max_len = max_len
        self.embedding = nnx.Embed(vocab_size, num_hiddens, rngs=rngs)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout, max_len, rngs=rngs)
        self.blks = nnx.List(
            [
                TransformerDecoderBlock(
                    num_hiddens, ffn_num_hiddens, num_heads, dropout, use_bias, rngs=rngs
                )
                for _ in range(num_blks)
            ]
        )
        self.dense = nnx.Linear(num_hiddens, vocab_size, rngs=rngs)

    def init_state(self, enc_outputs_BSD, enc_valid_len_B=None, max_len: int = 0) -> dict:
        B, S, D = enc_outputs_BSD.shape
        max_len = int(max_len)
        if not 0 < max_len <= self.max_len:
            raise ValueError(
                f"max_len must be in 1..{self.max_len} (the positional-encoding table), "
                f"got {max_len}"
            )
        if enc_valid_len_B is None:
            enc_valid_len_B = jnp.full((B,), S, jnp.int32)
        return {
            "enc_outputs_BSD": enc_outputs_BSD,
            "enc_valid_len_B": jnp.asarray(enc_valid_len_B, jnp.int32),
            "cache_BLMD": jnp.zeros((B, self.num_blks, max_len, D), enc_outputs_BSD.dtype),
            "step_B": jnp.zeros((B,), jnp.int32),
        }

    def _embed(self, tokens_BT, offset=0):
        return self.pos_encoding(self.embedding(tokens_BT) * math.sqrt(self.num_hiddens), offset)

    def __call__(self, dec_x_BT, state: dict, *, return_weights: bool = False):
        B, T = dec_x_BT.shape
        cache_BLMD = state["cache_BLMD"]
        if T > cache_BLMD.shape[2]:
            raise ValueError(
                f"{T} decoder inputs do not fit the state's cache of {cache_BLMD.shape[2]} "
                "positions; build the state with a larger max_len"
            )
        x_BTD = self._embed(dec_x_BT)
        w_self, w_cross = [], []
        for i, blk in enumerate(self.blks):
            cache_BLMD = cache_BLMD.at[:, i, :T].set(x_BTD)
            x_BTD, (ws, wc) = blk(
                x_BTD, state["enc_outputs_BSD"], state["enc_valid_len_B"], return_weights=True
            )
            w_self.append(ws)
            w_cross.append(wc)
        logits_BTV = self.dense(x_BTD)
        new_state = {**state, "cache_BLMD": cache_BLMD, "step_B": jnp.full((B,), T, jnp.int32)}
        if return_weights:
            return logits_BTV, new_state, (jnp.stack(w_self), jnp.stack(w_cross))
        return logits_BTV, new_state

    def step(self, token_B, state: dict, *, return_weights: bool = False):
        """Decode one token per sequence through the cache.

        The token sits at position ``state["step_B"]``: its block inputs are written there and it
        attends to positions ``0 .. step_B``. Returns ``(logits_BV, new_state)`` (and the
        weights ``(L, B, H, 1, M)`` and ``(L, B, H, 1, S)`` when ``return_weights``).
        """
        cache_BLMD, step_B = state["cache_BLMD"], state["step_B"]
        M = cache_BLMD.shape[2]
        x_B1D = self._embed(token_B[:, None], step_B)
        write_BM1 = (jnp.arange(M)[None, :] == step_B[:, None])[..., None]
        kv_lens_B = step_B + 1
        new_cache, w_self, w_cross = [], [], []
        for i, blk in enumerate(self.blks):
            kv_BMD = jnp.where(write_BM1, x_B1D, cache_BLMD[:, i])
            new_cache.append(kv_BMD)
            x_B1D, (ws, wc) = blk(
                x_B1D,
                state["enc_outputs_BSD"],
                state["enc_valid_len_B"],
                kv_BKD=kv_BMD,
                kv_valid_lens=kv_lens_B,
                return_weights=True,
            )
            w_self.append(ws)
            w_cross.append(wc)
        logits_BV = self.dense(x_B1D[:, 0])
        new_state = {**state, "cache_BLMD": jnp.stack(new_cache, axis=1), "step_B": step_B + 1}
        if return_weights:
            return logits_BV, new_state, (jnp.stack(w_self), jnp.stack(w_cross))
        return logits_BV, new_state


@register("transformer", description="§11.7 Transformer encoder-decoder for machine translation")
class Transformer(EncoderDecoder):
    """The Transformer encoder–decoder (§11.7), defaults as the book trains it on English–French
    (``num_hiddens=256, ffn_num_hiddens=64, num_heads=4, num_blks=2, dropout=0.2``).

    Args:
      src_vocab_size, tgt_vocab_size: vocabulary sizes (filled from the dataset's ``_info``).
      num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout: shared by encoder and decoder.
      use_bias: biases in the attention projections (the book: no).
      max_len: longest source / target sequence (positional-encoding table).
      rngs: ``nnx.Rngs(params=..., dropout=...)``.

    Beyond :class:`~d2ljax.models.seq2seq.EncoderDecoder`'s three calls,
    :meth:`attention_weights` returns every attention map of a teacher-forced pass.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        num_hiddens: int = 256,
        ffn_num_hiddens: int = 64,
        num_heads: int = 4,
        num_blks: int = 2,
        dropout: float = 0.2,
        use_bias: bool = False,
        max_len: int = 1000,
        *,
        rngs: nnx.Rngs,
    ):
        self.encoder = TransformerEncoder(
            src_vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
            use_bias, max_len, rngs=rngs,
        )
        self.decoder = TransformerDecoder(
            tgt_vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
            use_bias, max_len, rngs=rngs,
        )

    def attention_weights(self, enc_x_BS, dec_x_BT, enc_valid_len_B=None) -> dict:
        """Attention maps of a teacher-forced pass: ``{"encoder": (L, B, H, S, S),
        "decoder_self": (L, B, H, T, T), "decoder_cross": (L, B, H, T, S)}``."""
        enc_BSD, w_enc = self.encoder(enc_x_BS, enc_valid_len_B, return_weights=True)
        state = self.decoder.init_state(enc_BSD, enc_valid_len_B, dec_x_BT.shape[1])
        _, _, (w_self, w_cross) = self.decoder(dec_x_BT, state, return_weights=True)
        return {"encoder": w_enc, "decoder_self": w_self, "decoder_cross": w_cross}
