"""Small CNNs on a CPU in a batch-minor, blocked layout (what ``LeNet(conv_impl="blocked")`` runs).

XLA's CPU convolution is slow for thin layers, and both ways of turning a convolution into one
matrix product lose something: im2col makes skinny products, a banded kernel multiplies zeros
(:func:`d2ljax.nn.conv.conv2d_toeplitz`). With the usual ``[B, H, W, C]`` layout the glue between
the products (gathering strips, sigmoid, pooling and their gradients) then costs as much as the
products, because its innermost axis is a handful of channels.

Here activations are ``[(p, p, C), Hb, Wb, B]``: the image is cut into ``p x p`` blocks, the
first axis holds a block's pixels and channels, and the batch is the last, contiguous axis. Every
elementwise operation and every slice then moves whole vectors of ``B`` examples, and

- a stride-1 convolution from ``p x p`` blocks to ``p x p`` blocks (:func:`block_conv`) is one
  product ``[(p, p, O), K] @ [K, (Ho/p)(Wo/p) B]`` whose ``K`` rows are the ``n x n`` neighbouring
  input blocks (``n = ceil((p + k - 1) / p)``), stacked by slicing (two passes: block rows, then
  block columns); the kernel is laid out to match (:func:`block_kernel`, zero where a block
  pixel falls outside the ``k x k`` window);
- a 2x2 average pool (:func:`block_avg_pool2`) adds the four pixels of each 2x2 sub-block,
  turning ``p x p`` blocks into ``p/2 x p/2`` blocks of the same grid.

LeNet (:func:`d2ljax.models.lenet.forward_in_blocked_cpu_layout`) uses blocks of 2 for both
convolutions; :func:`reblock` regroups conv1's pooled single pixels into conv2's blocks. The
results equal ``lax.conv_general_dilated`` and ``nnx.avg_pool`` (values and gradients, tested).
Why these choices (block size 2, slicing, the variants tried), with the training-step times, is
in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["block_avg_pool2", "block_conv", "block_kernel", "from_blocks", "reblock", "to_blocks"]


def to_blocks(x_BHWC: jax.Array, block: int, padding: int = 0) -> jax.Array:
    """``[B, H, W, C]`` -> zero-padded ``[(block, block, C), Hb, Wb, B]``.

    The padded height and width must divide by ``block``.
    """
    B, H, W, C = x_BHWC.shape
    H, W = H + 2 * padding, W + 2 * padding
    if H % block or W % block:
        raise ValueError(f"the padded image ({H}x{W}) must divide into {block}x{block} blocks")
    # Batch last first, then pad: XLA:CPU keeps the pad a separate kernel, so the transposed
    # image is written once instead of being re-read across the batch by every slice of it.
    pads = ((padding, padding), (padding, padding), (0, 0), (0, 0))
    x = jnp.pad(x_BHWC.transpose(1, 2, 3, 0), pads)  # [H, W, C, B]
    x = x.reshape(H // block, block, W // block, block, C, B).transpose(1, 3, 4, 0, 2, 5)
    return x.reshape(block * block * C, H // block, W // block, B)


def from_blocks(x: jax.Array, block: int) -> jax.Array:
    """The inverse of :func:`to_blocks` (without the padding): ``[B, H, W, C]``."""
    K, Hb, Wb, B = x.shape
    C = K // (block * block)
    x = x.reshape(block, block, C, Hb, Wb, B).transpose(5, 3, 0, 4, 1, 2)
    return x.reshape(B, Hb * block, Wb * block, C)


def reblock(x: jax.Array, block: int) -> jax.Array:
    """Single pixels ``[C, H, W, B]`` (what pooling ``2 x 2`` blocks leaves) -> ``[(block,
    block, C), H/block, W/block, B]``: one transposing copy, batch still last."""
    C, H, W, B = x.shape
    if H % block or W % block:
        raise ValueError(f"the image ({H}x{W}) must divide into {block}x{block} blocks")
    x = x.reshape(C, H // block, block, W // block, block, B).transpose(2, 4, 0, 1, 3, 5)
    return x.reshape(block * block * C, H // block, W // block, B)


@functools.lru_cache(maxsize=64)
def _kernel_index(kh: int, kw: int, I: int, O: int, p: int, n: int) -> np.ndarray:
    """For each entry of :func:`block_kernel`'s matrix, its index in the flattened ``[kh, kw, I,
    O]`` kernel, or ``kh * kw * I * O`` (a zero appended to it) outside the ``k x k`` window."""
    grids = np.meshgrid(*(np.arange(s) for s in (p, p, O, n, n, p, p, I)), indexing="ij")
    qr, qc, o, ch, rh, rl, cl, c = grids
    di, dj = p * rh + rl - qr, p * ch + cl - qc
    inside = (di >= 0) & (di < kh) & (dj >= 0) & (dj < kw)
    flat = ((di * kw + dj) * I + c) * O + o
    return np.where(inside, flat, kh * kw * I * O).reshape(p * p * O, -1).astype(np.int32)


def block_kernel(w_hwIO: jax.Array, block: int, n: int) -> jax.Array:
    """The kernel as ``[(qr, qc, o), (ch, rh, rl, cl, c)]``: output pixel ``(qr, qc)`` of a block
    from input pixel ``(rl, cl)`` of the neighbour block ``(rh, ch)``, that is
    ``w[block*rh + rl - qr, block*ch + cl - qc, c, o]``, or 0 outside the kernel: one gather
    with a precomputed index."""
    kh, kw, I, O = w_hwIO.shape
    padded = jnp.concatenate([w_hwIO.reshape(-1), jnp.zeros((1,), w_hwIO.dtype)])
    return padded[_kernel_index(kh, kw, I, O, block, n)]


def block_conv(x: jax.Array, w_hwIO: jax.Array, b_O: jax.Array | None, block: int) -> jax.Array:
    """Stride-1, unpadded convolution of blocked ``x`` (``[(block, block, I), Hb, Wb, B]``) with
    ``w_hwIO`` (``nnx.Conv``'s ``[kh, kw, I, O]``) plus ``b_O``: ``[(block, block, O), Ho/block,
    Wo/block, B]``. The output size (``block * Hb - kh + 1``) must divide by ``block``."""
    kh, kw, I, O = w_hwIO.shape
    K0, Hb, Wb, B = x.shape
    if K0 != block * block * I:
        raise ValueError(f"input rows {K0} are not {block}x{block} blocks of {I} channels")
    Ho, Wo = block * Hb - kh + 1, block * Wb - kw + 1
    if Ho % block or Wo % block:
        raise ValueError(f"the output ({Ho}x{Wo}) must divide into {block}x{block} blocks")
    Rb, Cb = Ho // block, Wo // block
    n = -(-(block + max(kh, kw) - 1) // block)
    x = jnp.pad(x, ((0, 0), (0, max(Rb + n - 1 - Hb, 0)), (0, max(Cb + n - 1 - Wb, 0)), (0, 0)))
    # The strips in two passes of n slices (block rows, then block columns): on XLA:CPU two
    # concatenations of n large slices are faster than one of n*n small slabs.
    rows = jnp.concatenate([x[:, i : i + Rb] for i in range(n)], 0)
    strips = jnp.concatenate([rows[:, :, j : j + Cb] for j in range(n)], 0)
    strips = strips.reshape(n * n * K0, Rb * Cb * B)  # rows (ch, rh, rl, cl, c)
    y = (block_kernel(w_hwIO, block, n) @ strips).reshape(block * block, O, Rb * Cb * B)
    if b_O is not None:
        y = y + b_O[None, :, None]
    return y.reshape(block * block * O, Rb, Cb, B)


def block_avg_pool2(x: jax.Array, block: int) -> jax.Array:
    """2x2 average pooling (stride 2) inside each block: ``block`` -> ``block // 2`` blocks."""
    if block % 2:
        raise ValueError(f"2x2 pooling needs an even block size, got {block}")
    K, R, C, B = x.shape
    channels = K // (block * block)
    h = block // 2
    s = x.reshape(h, 2, h, 2, channels, R, C, B)
    pooled = s[:, 0, :, 0] + s[:, 0, :, 1] + s[:, 1, :, 0] + s[:, 1, :, 1]
    return 0.25 * pooled.reshape(h * h * channels, R, C, B)
