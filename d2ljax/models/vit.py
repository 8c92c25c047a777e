"""Vision Transformer (book §11.8, "Transformers for Vision").

An image is cut into ``p x p`` patches; each patch is flattened and projected linearly to
``num_hiddens`` (:class:`PatchEmbedding`), a learned ``<cls>`` token is put in front, learned
position embeddings are added, and a stack of pre-norm Transformer encoder blocks
(:class:`ViTBlock`) processes the ``m + 1`` vectors. The ``<cls>`` output, layer-normed, goes
through a dense head (:class:`ViT`).

- :class:`PatchEmbedding` -- the convolution with kernel = stride = patch size, stored with
  ``nnx.Conv``'s parameters (``kernel [p, p, C, D]``, ``bias [D]``). Because the patches do not
  overlap, that convolution *is* a reshape into ``[B, m, p*p*C]`` and one matrix product;
  ``impl="matmul"`` (default) computes it that way, ``impl="conv"`` with
  ``lax.conv_general_dilated``. Both give the same numbers (tested).
- :class:`ViTMLP` -- dense -> GELU -> dropout -> dense -> dropout (§11.8.2).
- :class:`ViTBlock` -- ``x + MHA(LN(x))`` then ``x + MLP(LN(x))``: normalization *before* each
  sub-layer (pre-norm), unlike the post-norm "add & norm" of the original Transformer (§11.7).
  The attention is :class:`d2ljax.models.attention.MultiHeadAttention`; ``causal=True`` turns
  the block into a decoder block. Both are shared with the GPT (§11.9), so they live in
  :mod:`d2ljax.nn.prenorm` (``GeluMLP``, ``PreNormBlock``); this module gives them the book's
  names.
- :class:`ViT` -- registered as ``"vit"``.

Book setting (§11.8.4): Fashion-MNIST resized to 96 x 96, ``patch_size=16`` (36 patches),
``num_hiddens=512``, ``mlp_num_hiddens=2048``, ``num_heads=8``, ``num_blks=2``,
``emb_dropout=blk_dropout=0.1``, SGD lr 0.1, batch 128, 10 epochs; the attention has no biases
(``use_bias=False``). That is 6,457,866 parameters (:func:`num_params_formula`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.attention import MultiHeadAttention
from d2ljax.models.registry import register
from d2ljax.nn.prenorm import LN_EPS, GeluMLP, PreNormBlock

__all__ = ["PatchEmbedding", "ViT", "ViTBlock", "ViTMLP", "num_params_formula", "patchify"]

PATCH_IMPLS = ("matmul", "conv")


def _pair(x) -> tuple[int, int]:
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"expected an int or a pair of ints, got {x!r}")
        return int(x[0]), int(x[1])
    return int(x), int(x)


def patchify(x_BHWC: jax.Array, patch_size) -> jax.Array:
    """``[B, H, W, C]`` -> ``[B, m, p_h * p_w * C]``: the non-overlapping patches, row by row,
    each flattened in ``(p_h, p_w, C)`` order (the order of a ``[p_h, p_w, C, D]`` kernel)."""
    ph, pw = _pair(patch_size)
    B, H, W, C = x_BHWC.shape
    if H % ph or W % pw:
        raise ValueError(f"image size {(H, W)} is not a multiple of the patch size {(ph, pw)}")
    x = x_BHWC.reshape(B, H // ph, ph, W // pw, pw, C)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(B, (H // ph) * (W // pw), ph * pw * C)


class PatchEmbedding(nnx.Module):
    """Split ``[B, H, W, C]`` images into patches and project each to ``num_hiddens`` (§11.8.1).

    Args:
      img_size: image side (int) or ``(height, width)``; must be a multiple of ``patch_size``.
      patch_size: patch side (int) or ``(height, width)``.
      num_hiddens: output width ``D``.
      in_channels: image channels ``C`` (1 for Fashion-MNIST).
      impl: ``"matmul"`` (reshape + one matrix product) or ``"conv"`` (a strided convolution).
      rngs: the kernel uses ``nnx.Conv``'s default initializer; the bias starts at zero.

    Returns ``[B, m, D]`` with ``m = (H / p_h) * (W / p_w)``, patches in row-major order.
    """

    def __init__(
        self,
        img_size=96,
        patch_size=16,
        num_hiddens: int = 512,
        in_channels: int = 1,
        *,
        impl: str = "matmul",
        rngs: nnx.Rngs,
    ):
        if impl not in PATCH_IMPLS:
            raise ValueError(f"PatchEmbedding impl must be one of {PATCH_IMPLS}, got {impl!r}")
        self.img_size = _pair(img_size)
        self.patch_size = _pair(patch_size)
        (h, w), (ph, pw) = self.img_size, self.patch_size
        if min(h, w, ph, pw) <= 0 or h % ph or w % pw:
            raise ValueError(
                f"img_size {self.img_size} must be a positive multiple of patch_size "
                f"{self.patch_size}"
            )
        self.num_patches = (h // ph) * (w // pw)
        self.in_channels = in_channels
        self.impl = impl
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (ph, pw, in_channels, num_hiddens)))
        self.bias = nnx.Param(jnp.zeros((num_hiddens,)))

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        shape = tuple(x_BHWC.shape)
        expected = (*self.img_size, self.in_channels)
        if len(shape) != 4 or shape[1:] != expected:
            raise ValueError(
                f"PatchEmbedding expects images [B, {expected[0]}, {expected[1]}, {expected[2]}] "
                f"(NHWC), got {list(shape)}"
            )
        kernel = self.kernel[...]
        if self.impl == "conv":
            y = jax.lax.conv_general_dilated(
                x_BHWC,
                kernel,
                window_strides=self.patch_size,
                padding="VALID",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
            y_BND = y.reshape(shape[0], self.num_patches, -1)
        else:
            y_BND = patchify(x_BHWC, self.patch_size) @ kernel.reshape(-1, kernel.shape[-1])
        return y_BND + self.bias[...]


ViTMLP = GeluMLP  # the book's name (§11.8.2): dense -> GELU -> dropout -> dense -> dropout


class ViTBlock(PreNormBlock):
    """Pre-norm Transformer encoder block (§11.8.2): ``x + MHA(LN(x))``, ``x + MLP(LN(x))``;
    :class:`~d2ljax.nn.prenorm.PreNormBlock` (its arguments) with §11.5's
    :class:`MultiHeadAttention`. ``__call__(x_BTD, valid_lens=None) -> [B, T, D]``.
    """

    attention_cls = MultiHeadAttention


@register("vit", description="§11.8 Vision Transformer: patches, <cls>, pre-norm encoder")
class ViT(nnx.Module):
    """Vision Transformer (§11.8.3) for ``[B, H, W, C]`` float images; returns ``[B, classes]``.

    Args:
      img_size: image side (int or pair); inputs must have exactly this size.
      patch_size: patch side (int or pair).
      num_hiddens: width ``D`` of every token.
      mlp_num_hiddens: hidden width of each block's MLP.
      num_heads: attention heads.
      num_blks: encoder blocks.
      emb_dropout: dropout on the embeddings (patches + ``<cls>`` + positions).
      blk_dropout: dropout inside the blocks (attention weights, MLP).
      use_bias: biases in the attention projections (the book: ``False``).
      num_classes: outputs of the head.
      in_channels: image channels (1 for Fashion-MNIST).
      patch_impl: :class:`PatchEmbedding`'s ``impl``.
      rngs: ``params`` and ``dropout`` streams.

    As in the book, the ``<cls>`` token starts at zero and the position embeddings are drawn from
    a standard normal; the head is ``LayerNorm`` then ``Linear`` on the ``<cls>`` output.
    """

    def __init__(
        self,
        img_size=96,
        patch_size=16,
        num_hiddens: int = 512,
        mlp_num_hiddens: int = 2048,
        num_heads: int = 8,
        num_blks: int = 2,
        emb_dropout: float = 0.1,
        blk_dropout: float = 0.1,
        use_bias: bool = False,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        patch_impl: str = "matmul",
        rngs: nnx.Rngs,
    ):
        if num_hiddens % num_heads:
            raise ValueError(
                f"num_hiddens ({num_hiddens}) must be divisible by num_heads ({num_heads})"
            )
        self.patch_embedding = PatchEmbedding(
            img_size, patch_size, num_hiddens, in_channels, impl=patch_impl, rngs=rngs
        )
        num_steps = self.patch_embedding.num_patches + 1  # + <cls>
        self.cls_token = nnx.Param(jnp.zeros((1, 1, num_hiddens)))
        self.pos_embedding = nnx.Param(
            jax.random.normal(rngs.params(), (1, num_steps, num_hiddens))
        )
        self.dropout = nnx.Dropout(emb_dropout, rngs=rngs)
        self.blks = nnx.List(
            [
                ViTBlock(num_hiddens, mlp_num_hiddens, num_heads, blk_dropout, use_bias, rngs=rngs)
                for _ in range(num_blks)
            ]
        )
        self.head_norm = nnx.LayerNorm(num_hiddens, epsilon=LN_EPS, rngs=rngs)
        self.head = nnx.Linear(num_hiddens, num_classes, rngs=rngs)

    def features(self, x_BHWC: jax.Array) -> jax.Array:
        """Every token's output of the last block, ``[B, m + 1, D]`` (``<cls>`` first)."""
        x_BND = self.patch_embedding(x_BHWC)
        B, _, D = x_BND.shape
        cls_B1D = jnp.broadcast_to(self.cls_token[...], (B, 1, D))
        x_BTD = jnp.concatenate([cls_B1D, x_BND], axis=1)
        x_BTD = self.dropout(x_BTD + self.pos_embedding[...])
        for blk in self.blks:
            x_BTD = blk(x_BTD)
        return x_BTD

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        return self.head(self.head_norm(self.features(x_BHWC)[:, 0]))


def num_params_formula(
    img_size=96,
    patch_size=16,
    num_hiddens: int = 512,
    mlp_num_hiddens: int = 2048,
    num_blks: int = 2,
    use_bias: bool = False,
    num_classes: int = 10,
    in_channels: int = 1,
) -> int:
    """The parameter count of :class:`ViT`, written out from the architecture."""
    (h, w), (ph, pw) = _pair(img_size), _pair(patch_size)
    D, M = num_hiddens, mlp_num_hiddens
    patch = ph * pw * in_channels * D + D
    tokens = D + ((h // ph) * (w // pw) + 1) * D  # <cls> + positions
    attention = 4 * D * D + (4 * D if use_bias else 0)
    mlp = D * M + M + M * D + D
    block = 2 * (2 * D) + attention + mlp
    head = 2 * D + D * num_classes + num_classes
    return patch + tokens + num_blks * block + head
