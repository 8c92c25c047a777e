"""The pre-norm Transformer block (book §11.8.2), shared by the ViT (§11.8) and the GPT (§11.9).

- :class:`GeluMLP` -- dense -> GELU -> dropout -> dense -> dropout: the book's ``ViTMLP``
  (§11.8.2; :mod:`d2ljax.models.vit` exports it under that name).
- :class:`PreNormBlock` -- ``x + MHA(LN(x))`` then ``x + MLP(LN(x))``: normalization *before*
  each sub-layer (pre-norm), unlike the post-norm "add & norm" of the original Transformer
  (§11.7). ``causal=True`` masks attention to earlier positions, which makes it a decoder block.
  The book's ``ViTBlock`` (:class:`d2ljax.models.vit.ViTBlock`) and the GPT's decoder block
  (:class:`d2ljax.models.gpt.GPTBlock`) are this block with §11.5's
  :class:`~d2ljax.models.attention.MultiHeadAttention`.

The attention layer is a class given by a subclass (``attention_cls``) or by the ``attention``
argument (``nn/`` builds nothing from ``models/``): it is built as ``attention(num_hiddens,
num_heads, dropout, use_bias, rngs=rngs)`` and called as ``attention(q, k, v, valid_lens,
causal=causal)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

__all__ = ["LN_EPS", "GeluMLP", "PreNormBlock"]

LN_EPS = 1e-5  # the book's PyTorch nn.LayerNorm


class GeluMLP(nnx.Module):
    """The Transformer block's MLP (§11.8.2): dense -> GELU -> dropout -> dense -> dropout.

    Args:
      num_inputs: input width (NNX builds eagerly, so it is needed here).
      mlp_num_hiddens: hidden width.
      mlp_num_outputs: output width.
      dropout: rate after each dense layer.
      rngs: ``params`` and ``dropout`` streams.
    """

    def __init__(
        self,
        num_inputs: int,
        mlp_num_hiddens: int,
        mlp_num_outputs: int,
        dropout: float = 0.5,
        *,
        rngs: nnx.Rngs,
    ):
        self.dense1 = nnx.Linear(num_inputs, mlp_num_hiddens, rngs=rngs)
        self.dropout1 = nnx.Dropout(dropout, rngs=rngs)
        self.dense2 = nnx.Linear(mlp_num_hiddens, mlp_num_outputs, rngs=rngs)
        self.dropout2 = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        # PyTorch's nn.GELU (the book's) is the exact erf form, not the tanh approximation.
        h = self.dropout1(jax.nn.gelu(self.dense1(x), approximate=False))
        return self.dropout2(self.dense2(h))


class PreNormBlock(nnx.Module):
    """Pre-norm Transformer block (§11.8.2): ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``.

    Args:
      num_hiddens: width ``D`` (input = output).
      mlp_num_hiddens: MLP hidden width.
      num_heads: attention heads (``D`` must be divisible by it).
      dropout: attention-weight and MLP dropout rate.
      use_bias: biases in the attention's four projections (the book: ``False``).
      attention: the multi-head attention class (see the module docstring); default: the
        class attribute ``attention_cls``.
      causal: mask attention to earlier positions only (a decoder block, as in GPT).
      rngs: ``params`` and ``dropout`` streams.

    ``__call__(x_BTD, valid_lens=None) -> [B, T, D]``.
    """

    attention_cls: Callable[..., nnx.Module] | None = None

    def __init__(
        self,
        num_hiddens: int,
        mlp_num_hiddens: int,
        num_heads: int,
        dropout: float,
        use_bias: bool = False,
        *,
        attention: Callable[..., nnx.Module] | None = None,
        causal: bool = False,
        rngs: nnx.Rngs,
    ):
        attention = attention or self.attention_cls
        if attention is None:
            raise TypeError("PreNormBlock needs an attention class (attention= or attention_cls)")
        self.causal = causal
        self.ln1 = nnx.LayerNorm(num_hiddens, epsilon=LN_EPS, rngs=rngs)
        self.attention = attention(num_hiddens, num_heads, dropout, use_bias, rngs=rngs)
        self.ln2 = nnx.LayerNorm(num_hiddens, epsilon=LN_EPS, rngs=rngs)
        self.mlp = GeluMLP(num_hiddens, mlp_num_hiddens, num_hiddens, dropout, rngs=rngs)

    def __call__(self, x_BTD: jax.Array, valid_lens: jax.Array | None = None) -> jax.Array:
        h_BTD = self.ln1(x_BTD)
        x_BTD = x_BTD + self.attention(h_BTD, h_BTD, h_BTD, valid_lens, causal=self.causal)
        return x_BTD + self.mlp(self.ln2(x_BTD))
