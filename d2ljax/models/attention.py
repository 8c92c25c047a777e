"""Attention layers as Flax NNX modules (book §11.3, §11.5, §11.6).

The modules hold the parameters (``nnx.Linear``) and the dropout; the math is the scratch code of
:mod:`d2ljax.nn.attention`, called with the modules' weights (tests check they agree, jit and
no-jit).

- :class:`DotProductAttention` -- §11.3.3 scaled dot-product attention with dropout.
- :class:`AdditiveAttention` -- §11.3.4 additive (Bahdanau) attention.
- :class:`MultiHeadAttention` -- §11.5 multi-head attention.
- :class:`PositionalEncoding` -- §11.6.3 sinusoidal positional encoding plus dropout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.nn import attention as A

__all__ = [
    "AdditiveAttention",
    "DotProductAttention",
    "MultiHeadAttention",
    "PositionalEncoding",
]


def _result(out: jax.Array, weights: jax.Array, return_weights: bool):
    return (out, weights) if return_weights else out


class DotProductAttention(nnx.Module):
    """Scaled dot-product attention with dropout on the weights (§11.3.3).

    ``__call__(queries (B, ..., Q, d), keys (B, ..., K, d), values (B, ..., K, v), valid_lens=None,
    *, mask=None, return_weights=False)`` returns the output ``(B, ..., Q, v)`` (and the weights
    ``(B, ..., Q, K)`` when ``return_weights``).
    """

    def __init__(self, dropout: float = 0.0, *, rngs: nnx.Rngs):
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, queries, keys, values, valid_lens=None, *, mask=None, return_weights=False):
        out, w = A.dot_product_attention(
            queries, keys, values, valid_lens, mask, dropout=self.dropout
        )
        return _result(out, w, return_weights)


class AdditiveAttention(nnx.Module):
    """Additive attention (§11.3.4): ``w_v^T tanh(W_q q + W_k k)``, no biases, as in the book.

    ``kernel_init`` overrides ``nnx.Linear``'s default weight init (§11.4 uses Xavier).

    ``__call__(queries (B, Q, query_size), keys (B, K, key_size), values (B, K, v),
    valid_lens=None, *, mask=None, return_weights=False)``.
    """

    def __init__(
        self,
        key_size: int,
        query_size: int,
        num_hiddens: int,
        dropout: float = 0.0,
        *,
        rngs: nnx.Rngs,
        kernel_init=None,
    ):
        kw = {} if kernel_init is None else {"kernel_init": kernel_init}
        self.W_k = nnx.Linear(key_size, num_hiddens, use_bias=False, rngs=rngs, **kw)
        self.W_q = nnx.Linear(query_size, num_hiddens, use_bias=False, rngs=rngs, **kw)
        self.w_v = nnx.Linear(num_hiddens, 1, use_bias=False, rngs=rngs, **kw)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def scratch_params(self) -> dict:
        """The weights as the ``params`` of :func:`d2ljax.nn.attention.additive_attention`."""
        return {
            "W_q": self.W_q.kernel[...],
            "W_k": self.W_k.kernel[...],
            "w_v": self.w_v.kernel[...],
        }

    def __call__(self, queries, keys, values, valid_lens=None, *, mask=None, return_weights=False):
        out, w = A.additive_attention(
            self.scratch_params(), queries, keys, values, valid_lens, mask, dropout=self.dropout
        )
        return _result(out, w, return_weights)


class MultiHeadAttention(nnx.Module):
    """Multi-head attention (§11.5): ``num_heads`` scaled dot-product heads of size
    ``num_hiddens / num_heads`` on linear projections, concatenated and projected by ``W_o``.

    Args:
      num_hiddens: projection size ``D`` (also the output size).
      num_heads: number of heads (must divide ``num_hiddens``).
      dropout: dropout rate on the attention weights.
      use_bias: biases in the four projections (the book: no).
      key_size, query_size, value_size: input feature sizes (default ``num_hiddens``).

    ``__call__(queries_BQD, keys_BKD, values_BKD, valid_lens=None, *, causal=False, mask=None,
    return_weights=False)`` returns ``(B, Q, D)`` (and the weights ``(B, H, Q, K)``).
    ``valid_lens`` is ``(B,)`` or ``(B, Q)``; ``causal`` hides keys after each query.
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        dropout: float = 0.0,
        use_bias: bool = False,
        *,
        rngs: nnx.Rngs,
        key_size: int | None = None,
        query_size: int | None = None,
        value_size: int | None = None,
    ):
        if num_hiddens % num_heads:
            raise ValueError(
                f"num_hiddens={num_hiddens} is not divisible by num_heads={num_heads}"
            )
        self.num_heads = num_heads
        self.use_bias = use_bias

        def linear(n_in):
            return nnx.Linear(n_in or num_hiddens, num_hiddens, use_bias=use_bias, rngs=rngs)

        self.W_q = linear(query_size)
        self.W_k = linear(key_size)
        self.W_v = linear(value_size)
        self.W_o = linear(num_hiddens)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def scratch_params(self) -> dict:
        """The weights as the ``params`` of :func:`d2ljax.nn.attention.multi_head_attention`."""
        params = {}
        for name in ("q", "k", "v", "o"):
            layer = getattr(self, f"W_{name}")
            params[f"W_{name}"] = layer.kernel[...]
            if self.use_bias:
                params[f"b_{name}"] = layer.bias[...]
        return params

    def __call__(
        self,
        queries_BQD,
        keys_BKD,
        values_BKD,
        valid_lens=None,
        *,
        causal: bool = False,
        mask=None,
        return_weights: bool = False,
    ):
        out, w = A.multi_head_attention(
            self.scratch_params(),
            queries_BQD,
            keys_BKD,
            values_BKD,
            self.num_heads,
            valid_lens,
            causal,
            mask=mask,
            dropout=self.dropout,
        )
        return _result(out, w, return_weights)


class PositionalEncoding(nnx.Module):
    """Adds the sinusoidal positional encoding, then dropout (§11.6.3).

    ``__call__(x_BTD, offset=0)`` adds rows ``offset .. offset + T - 1`` of the table (``offset``
    may be a traced scalar, or a ``(B,)`` array of per-example offsets when ``T == 1``, as in
    incremental decoding).
    """

    def __init__(self, num_hiddens: int, dropout: float = 0.0, max_len: int = 1000, *, rngs):
        self.num_hiddens = num_hiddens
        self.max_len = max_len
        self.P = nnx.Variable(A.positional_encoding(max_len, num_hiddens))  # not trained
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x_BTD, offset=0):
        B, T, D = x_BTD.shape
        if D != self.num_hiddens:
            raise ValueError(f"expected {self.num_hiddens} features, got shape {x_BTD.shape}")
        if T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.max_len}")
        offset = jnp.asarray(offset, jnp.int32)
        table = self.P[...]
        if offset.ndim == 0:
            pos_TD = jax.lax.dynamic_slice_in_dim(table, offset, T, axis=0)
            x_BTD = x_BTD + pos_TD[None].astype(x_BTD.dtype)
        else:
            pos_BTD = table[offset[:, None] + jnp.arange(T)[None, :]]
            x_BTD = x_BTD + pos_BTD.astype(x_BTD.dtype)
        return self.dropout(x_BTD)
