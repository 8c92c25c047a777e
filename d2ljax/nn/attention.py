"""Attention from scratch (book chapter 11, §11.2–11.6), in plain ``jax.numpy``.

- :func:`nadaraya_watson` -- §11.2 attention pooling by similarity (Gaussian-kernel regression).
- :func:`masked_softmax` -- §11.3.2: masked positions get ``-1e6`` before the softmax.
- :func:`dot_product_attention`, :func:`additive_attention` -- §11.3.3 and §11.3.4 scoring.
- :func:`multi_head_attention` -- §11.5 with :func:`split_heads` / :func:`merge_heads`.
- :func:`positional_encoding` -- §11.6.3 sinusoidal positional encoding.

These functions are *the* attention math of the package: the NNX modules of
:mod:`d2ljax.models.attention` hold the parameters and call them (passing their dropout as the
``dropout`` callable, applied to the attention weights as the book does).

Shapes: queries ``(B, ..., Q, d)``, keys ``(B, ..., K, d)``, values ``(B, ..., K, v)``; the middle
axes (e.g. heads) are broadcast. Every function returns ``(output, attention_weights)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = [
    "MASK_VALUE",
    "additive_attention",
    "attention_mask",
    "dot_product_attention",
    "masked_softmax",
    "merge_heads",
    "multi_head_attention",
    "nadaraya_watson",
    "positional_encoding",
    "split_heads",
]

#: What masked scores are replaced with before the softmax (book §11.3.2). ``exp(-1e6 - max)``
#: underflows to exactly 0 in float32, so masked positions get exactly zero weight.
MASK_VALUE = -1e6

Dropout = Callable[[jax.Array], jax.Array]


def nadaraya_watson(
    x_train: jax.Array, y_train: jax.Array, x_query: jax.Array, w: jax.Array | float | None = None
) -> tuple[jax.Array, jax.Array]:
    """Nadaraya–Watson kernel regression as attention pooling (§11.2).

    The weight of training pair ``i`` for query ``q`` is
    ``softmax_i(-((q - x_i) * w)^2 / 2)``: a Gaussian kernel whose width is ``1 / w`` (``w=None``
    is the plain Gaussian kernel of the book, ``w=1``; a learned ``w`` is the parametric version).

    Args:
      x_train: keys, shape ``(n,)``.
      y_train: values, shape ``(n,)`` or ``(n, d)``.
      x_query: queries, shape ``(m,)``.
      w: kernel sharpness (scalar, or broadcastable to ``(m, n)``).

    Returns:
      ``(y_hat, weights)`` with ``y_hat`` of shape ``(m,)`` (or ``(m, d)``) and the attention
      weights of shape ``(m, n)`` (every row sums to one).
    """
    x_train, y_train, x_query = (jnp.asarray(a) for a in (x_train, y_train, x_query))
    if x_train.ndim != 1 or x_query.ndim != 1:
        raise ValueError(
            f"x_train and x_query must be 1-D, got shapes {x_train.shape} and {x_query.shape}"
        )
    if y_train.shape[0] != x_train.shape[0]:
        raise ValueError(
            f"x_train and y_train differ in length: {x_train.shape[0]} vs {y_train.shape[0]}"
        )
    diff_MN = x_query[:, None] - x_train[None, :]
    if w is not None:
        diff_MN = diff_MN * w
    weights_MN = jax.nn.softmax(-(diff_MN**2) / 2, axis=-1)
    return weights_MN @ y_train, weights_MN


def attention_mask(
    num_queries: int,
    num_keys: int,
    valid_lens: jax.Array | None = None,
    mask: jax.Array | None = None,
    *,
    causal: bool = False,
    batch_ndim: int = 1,
) -> jax.Array | None:
    """The boolean "may attend" mask, broadcastable to ``(B, ..., Q, K)``; ``None`` if no masking.

    ``valid_lens`` of shape ``(B,)`` keeps the first ``valid_lens[b]`` keys for every query;
    of shape ``(B, Q)`` it gives one length per query (the book's decoder self-attention during
    training). ``mask`` (True = keep) is combined with it. ``causal`` keeps key ``j`` for query
    ``i`` iff ``j <= i + K - Q`` (queries are the last ``Q`` positions of the keys' sequence).
    ``batch_ndim`` is the number of axes of the scores before ``(Q, K)``.
    """
    keep = None
    if valid_lens is not None:
        valid_lens = jnp.asarray(valid_lens)
        k_idx = jnp.arange(num_keys)
        middle = (1,) * (batch_ndim - 1)
        if valid_lens.ndim == 1:
            lens = valid_lens.reshape(valid_lens.shape + middle + (1, 1))
        elif valid_lens.ndim == 2:
            if valid_lens.shape[1] != num_queries:
                raise ValueError(
                    f"valid_lens of shape {valid_lens.shape} must be (B,) or (B, Q) with "
                    f"Q={num_queries}"
                )
            lens = valid_lens.reshape(valid_lens.shape[:1] + middle + (num_queries, 1))
        else:
            raise ValueError(f"valid_lens must be (B,) or (B, Q), got shape {valid_lens.shape}")
        keep = k_idx < lens
    if causal:
        q_pos = jnp.arange(num_queries)[:, None] + (num_keys - num_queries)
        tri = jnp.arange(num_keys)[None, :] <= q_pos
        keep = tri if keep is None else keep & tri
    if mask is not None:
        mask = jnp.asarray(mask, bool)
        keep = mask if keep is None else keep & mask
    return keep


def masked_softmax(
    scores: jax.Array, valid_lens: jax.Array | None = None, mask: jax.Array | None = None
) -> jax.Array:
    """Softmax over the last axis with masked positions set to ``-1e6`` first (§11.3.2).

    Args:
      scores: ``(B, ..., Q, K)``.
      valid_lens: ``(B,)`` (keys kept per sequence) or ``(B, Q)`` (per query); ``None``: all.
      mask: boolean, broadcastable to ``scores``, True where attending is allowed.

    Masked positions get exactly zero weight (a fully masked row is uniform, as in the book).
    """
    scores = jnp.asarray(scores)
    if scores.ndim < 2:
        raise ValueError(f"scores must be at least (Q, K), got shape {scores.shape}")
    keep = attention_mask(
        scores.shape[-2], scores.shape[-1], valid_lens, mask, batch_ndim=scores.ndim - 2
    )
    if keep is not None:
        scores = jnp.where(keep, scores, MASK_VALUE)
    return jax.nn.softmax(scores, axis=-1)


def _attend(
    scores: jax.Array,
    values: jax.Array,
    valid_lens: jax.Array | None,
    mask: jax.Array | None,
    dropout: Dropout | None,
) -> tuple[jax.Array, jax.Array]:
    weights = masked_softmax(scores, valid_lens, mask)
    dropped = weights if dropout is None else dropout(weights)
    return jnp.einsum("...qk,...kv->...qv", dropped, values), weights


def dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    valid_lens: jax.Array | None = None,
    mask: jax.Array | None = None,
    *,
    dropout: Dropout | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Scaled dot-product attention (§11.3.3): ``softmax(q k^T / sqrt(d)) v``.

    ``q`` is ``(B, ..., Q, d)``, ``k`` ``(B, ..., K, d)``, ``v`` ``(B, ..., K, v)``; ``dropout`` (if
    given) is applied to the attention weights before they pool the values. Returns
    ``(output (B, ..., Q, v), weights (B, ..., Q, K))``.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys differ in size: {q.shape} vs {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values differ in number: {k.shape} vs {v.shape}")
    scores = jnp.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])
    return _attend(scores, v, valid_lens, mask, dropout)


def additive_attention(
    params: dict,
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    valid_lens: jax.Array | None = None,
    mask: jax.Array | None = None,
    *,
    dropout: Dropout | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Additive attention (§11.3.4): score ``w_v^T tanh(W_q q + W_k k)``.

    ``params`` holds ``W_q`` ``(query_size, h)``, ``W_k`` ``(key_size, h)`` and ``w_v`` ``(h, 1)``
    (no biases, as in the book). ``q`` is ``(B, Q, query_size)``, ``k`` ``(B, K, key_size)``.
    Returns ``(output (B, Q, v), weights (B, Q, K))``.
    """
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values differ in number: {k.shape} vs {v.shape}")
    q_h = q @ params["W_q"]
    k_h = k @ params["W_k"]
    features = jnp.tanh(q_h[..., :, None, :] + k_h[..., None, :, :])
    scores = (features @ params["w_v"])[..., 0]
    return _attend(scores, v, valid_lens, mask, dropout)


def split_heads(x: jax.Array, num_heads: int) -> jax.Array:
    """``(B, T, H * d)`` -> ``(B, H, T, d)`` (§11.5.2 ``transpose_qkv``)."""
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"feature size {D} is not divisible by num_heads={num_heads}")
    return x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x: jax.Array) -> jax.Array:
    """``(B, H, T, d)`` -> ``(B, T, H * d)`` (§11.5.2 ``transpose_output``)."""
    B, H, T, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * d)


def _linear(params: dict, name: str, x: jax.Array) -> jax.Array:
    y = x @ params[f"W_{name}"]
    bias = params.get(f"b_{name}")
    return y if bias is None else y + bias


def multi_head_attention(
    params: dict,
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    num_heads: int,
    valid_lens: jax.Array | None = None,
    causal: bool = False,
    *,
    mask: jax.Array | None = None,
    dropout: Dropout | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Multi-head scaled dot-product attention (§11.5).

    ``params`` holds ``W_q`` ``(query_size, D)``, ``W_k`` ``(key_size, D)``, ``W_v``
    ``(value_size, D)``, ``W_o`` ``(D, D)`` and optionally biases ``b_q, b_k, b_v, b_o``. The
    projections are split into ``num_heads`` heads of size ``D / num_heads``, each attends with
    :func:`dot_product_attention`, and the concatenated heads go through ``W_o``.

    ``q`` is ``(B, Q, query_size)``, ``k`` ``(B, K, key_size)``, ``v`` ``(B, K, value_size)``;
    ``valid_lens`` ``(B,)`` or ``(B, Q)``; ``causal`` hides later keys (see
    :func:`attention_mask`); ``mask`` broadcastable to ``(B, H, Q, K)``. Returns
    ``(output (B, Q, D), weights (B, H, Q, K))``.
    """
    if q.ndim != 3 or k.ndim != 3 or v.ndim != 3:
        raise ValueError(
            f"queries, keys and values must be (B, T, D), got {q.shape}, {k.shape}, {v.shape}"
        )
    q_h = split_heads(_linear(params, "q", q), num_heads)
    k_h = split_heads(_linear(params, "k", k), num_heads)
    v_h = split_heads(_linear(params, "v", v), num_heads)
    keep = attention_mask(q.shape[1], k.shape[1], valid_lens, mask, causal=causal, batch_ndim=2)
    out_h, weights = dot_product_attention(q_h, k_h, v_h, mask=keep, dropout=dropout)
    return _linear(params, "o", merge_heads(out_h)), weights


def positional_encoding(max_len: int, num_hiddens: int) -> jax.Array:
    """Sinusoidal positional encoding ``P`` of shape ``(max_len, num_hiddens)`` (§11.6.3).

    ``P[i, 2j] = sin(i / 10000^(2j/d))`` and ``P[i, 2j+1] = cos(i / 10000^(2j/d))``.
    """
    if num_hiddens % 2 or num_hiddens <= 0:
        raise ValueError(f"num_hiddens must be a positive even number, got {num_hiddens}")
    if max_len <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    pos = jnp.arange(max_len, dtype=jnp.float32)[:, None]
    freq = jnp.power(10000.0, jnp.arange(0, num_hiddens, 2, dtype=jnp.float32) / num_hiddens)
    angles = pos / freq
    P = jnp.zeros((max_len, num_hiddens), jnp.float32)
    P = P.at[:, 0::2].set(jnp.sin(angles))
    return P.at[:, 1::2].set(jnp.cos(angles))
