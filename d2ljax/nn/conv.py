"""Convolution and pooling from scratch (chapter 7), in plain ``jax.numpy``.

The book's §7.2 ``corr2d`` loops over output pixels; here every function loops only over the
(small, static) kernel window and adds whole shifted slices of the input, so the traced program
has ``kh * kw`` slice operations whatever the image size, and nothing is unrolled per pixel.

Single images, channels first as in the book:

- :func:`corr2d` -- §7.2.1 two-dimensional cross-correlation ``[H, W] x [h, w] -> [H-h+1, W-w+1]``.
- :func:`corr2d_multi_in` -- §7.4.1 several input channels ``[C, H, W] x [C, h, w]``, summed.
- :func:`corr2d_multi_in_out` -- §7.4.2 several output channels ``[C, H, W] x [O, C, h, w]``.
- :func:`corr2d_multi_in_out_1x1` -- §7.4.3 the 1x1 convolution as one matrix product.
- :func:`pool2d` -- §7.5.1 max or average pooling of ``[H, W]`` (stride 1, no padding).
- :func:`conv_output_shape` -- §7.3 output size ``floor((n - k + p + s) / s)``.
- :class:`Conv2D` -- §7.2.3 a learnable kernel plus a scalar bias, as an NNX module.
- :func:`learn_edge_kernel` -- §7.2.4 learn the edge detector ``[[1, -1]]`` back from data.

Batched NHWC versions with padding and stride, built on the same idea (:func:`extract_patches`
gathers the ``kh * kw`` shifted, strided slices; a contraction or a reduction over them finishes
the job):

- :func:`conv2d` -- ``[B, H, W, I] x [h, w, I, O] (+ [O]) -> [B, H', W', O]``, the layout of
  ``nnx.Conv`` (its ``kernel`` and ``bias`` plug straight in).
- :func:`max_pool2d`, :func:`avg_pool2d` -- ``[B, H, W, C] -> [B, H', W', C]``; the stride
  defaults to the window (the book's and PyTorch's convention; ``nnx.max_pool`` defaults to 1).
  Average pooling counts padded zeros, like ``nnx.avg_pool`` and PyTorch's default.

And :func:`conv2d_toeplitz`, the same convolution (stride 1) as dense products with the kernel
laid out as a banded matrix: much faster than XLA's convolution on CPU for thin layers (LeNet).

``padding`` is an int (all four sides), a pair ``(ph, pw)`` (both sides of each axis), a pair of
pairs ``((top, bottom), (left, right))``, or ``"VALID"`` / ``"SAME"``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = [
    "Conv2D",
    "avg_pool2d",
    "conv2d",
    "conv2d_toeplitz",
    "conv_output_shape",
    "corr2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "edge_detection_data",
    "extract_patches",
    "learn_edge_kernel",
    "max_pool2d",
    "pool2d",
]

Padding = int | str | Sequence[int] | Sequence[Sequence[int]]
Pair = tuple[int, int]


# --------------------------------------------------------------------------------------------
# Shape arithmetic (§7.3)
# --------------------------------------------------------------------------------------------


def conv_output_shape(n: int, k: int, p: int = 0, s: int = 1) -> int:
    """Output length of a convolution or pooling along one axis (§7.3.2).

    ``n`` is the input length, ``k`` the kernel (window) length, ``p`` the *total* padding added
    to that axis (both sides together) and ``s`` the stride: ``floor((n - k + p + s) / s)``.
    """
    for name, v in (("n", n), ("k", k), ("p", p), ("s", s)):
        if int(v) != v:
            raise TypeError(f"conv_output_shape: {name} must be an integer, got {v!r}")
    if k < 1 or s < 1 or p < 0 or n < 0:
        raise ValueError(
            f"conv_output_shape: need n >= 0, k >= 1, p >= 0, s >= 1; got {n=}, {k=}, {p=}, {s=}"
        )
    if n + p < k:
        raise ValueError(
            f"the window ({k}) is larger than the padded input ({n} + {p} padding): no output"
        )
    return (n - k + p + s) // s


def _pair(v: int | Sequence[int], what: str) -> Pair:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    if len(t) != 2:
        raise ValueError(f"{what} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def _padding(padding: Padding, in_hw: Pair, window: Pair, stride: Pair) -> tuple[Pair, Pair]:
    """Normalize ``padding`` to ``((top, bottom), (left, right))``."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0), (0, 0))
        if mode == "SAME":
            pads = []
            for n, k, s in zip(in_hw, window, stride, strict=True):
                total = max((-(-n // s) - 1) * s + k - n, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)  # type: ignore[return-value]
        raise ValueError(f"padding string must be 'VALID' or 'SAME', got {padding!r}")
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    items = list(padding)
    if len(items) == 2 and all(isinstance(p, int) for p in items):
        return ((items[0], items[0]), (items[1], items[1]))
    if len(items) == 2 and all(len(p) == 2 for p in items):
        return (tuple(items[0]), tuple(items[1]))  # type: ignore[return-value]
    raise ValueError(
        f"padding must be an int, (ph, pw), ((top, bottom), (left, right)), 'SAME' or 'VALID'; "
        f"got {padding!r}"
    )


# --------------------------------------------------------------------------------------------
# Single images, channels first (§7.2, §7.4, §7.5)
# --------------------------------------------------------------------------------------------


def _window_slices(X_HW: jax.Array, window: Pair):
    """Yield ``(i, j, X[i:i+H', j:j+W'])`` for each kernel offset: the input seen by ``K[i, j]``."""
    h, w = window
    H, W = X_HW.shape[-2:]
    Ho, Wo = conv_output_shape(H, h), conv_output_shape(W, w)
    for i in range(h):
        for j in range(w):
            yield i, j, X_HW[..., i : i + Ho, j : j + Wo]


def corr2d(X_HW: jax.Array, K_hw: jax.Array) -> jax.Array:
    """Two-dimensional cross-correlation (§7.2.1), no padding, stride 1.

    ``Y[a, b] = sum_{i, j} X[a + i, b + j] K[i, j]``. The book computes each output pixel in turn;
    swapping the loops gives the same sum as ``kh * kw`` whole-image terms ``K[i, j] * X`` shifted
    by ``(i, j)``, which is what runs here.
    """
    X_HW, K_hw = jnp.asarray(X_HW), jnp.asarray(K_hw)
    if X_HW.ndim != 2 or K_hw.ndim != 2:
        raise ValueError(f"corr2d expects 2-D X and K, got shapes {X_HW.shape} and {K_hw.shape}")
    Y = None
    for i, j, X_shift in _window_slices(X_HW, K_hw.shape):
        term = K_hw[i, j] * X_shift
        Y = term if Y is None else Y + term
    return Y


def corr2d_multi_in(X_CHW: jax.Array, K_Chw: jax.Array) -> jax.Array:
    """Cross-correlation with several input channels (§7.4.1): one ``corr2d`` per channel,
    summed over channels. ``[C, H, W] x [C, h, w] -> [H', W']``."""
    X_CHW, K_Chw = jnp.asarray(X_CHW), jnp.asarray(K_Chw)
    if X_CHW.ndim != 3 or K_Chw.ndim != 3 or X_CHW.shape[0] != K_Chw.shape[0]:
        raise ValueError(
            f"corr2d_multi_in expects X [C, H, W] and K [C, h, w] with the same C, got "
            f"{X_CHW.shape} and {K_Chw.shape}"
        )
    return jnp.sum(jax.vmap(corr2d)(X_CHW, K_Chw), axis=0)


def corr2d_multi_in_out(X_CHW: jax.Array, K_OChw: jax.Array) -> jax.Array:
    """Several input and output channels (§7.4.2): output channel ``o`` is
    ``corr2d_multi_in(X, K[o])``. ``[C, H, W] x [O, C, h, w] -> [O, H', W']``."""
    K_OChw = jnp.asarray(K_OChw)
    if K_OChw.ndim != 4:
        raise ValueError(f"corr2d_multi_in_out expects K [O, C, h, w], got {K_OChw.shape}")
    return jax.vmap(corr2d_multi_in, in_axes=(None, 0))(X_CHW, K_OChw)


def corr2d_multi_in_out_1x1(X_CHW: jax.Array, K_OC11: jax.Array) -> jax.Array:
    """The 1x1 convolution as a fully connected layer over channels (§7.4.3).

    Every pixel's channel vector is multiplied by the same ``[O, C]`` matrix: reshape ``X`` to
    ``[C, H*W]``, one matrix product, reshape back to ``[O, H, W]``. ``K`` may be ``[O, C, 1, 1]``
    (the book's shape) or ``[O, C]``.
    """
    X_CHW, K_OC11 = jnp.asarray(X_CHW), jnp.asarray(K_OC11)
    C, H, W = X_CHW.shape
    O = K_OC11.shape[0]
    if K_OC11.shape[1] != C or K_OC11.size != O * C:
        raise ValueError(f"1x1 kernel must be [O, {C}, 1, 1] or [O, {C}], got {K_OC11.shape}")
    Y_OP = jnp.matmul(K_OC11.reshape(O, C), X_CHW.reshape(C, H * W))
    return Y_OP.reshape(O, H, W)


def pool2d(X_HW: jax.Array, pool_size: int | Sequence[int], mode: str = "max") -> jax.Array:
    """Max or average pooling of one 2-D array (§7.5.1): stride 1, no padding.

    Like :func:`corr2d` with the weighted sum replaced by a maximum or a mean over the window,
    computed slice by slice over the window offsets.
    """
    X_HW = jnp.asarray(X_HW)
    if X_HW.ndim != 2:
        raise ValueError(f"pool2d expects a 2-D array, got shape {X_HW.shape}")
    window = _pair(pool_size, "pool_size")
    if mode == "max":
        Y = None
        for _, _, X_shift in _window_slices(X_HW, window):
            Y = X_shift if Y is None else jnp.maximum(Y, X_shift)
        return Y
    if mode == "avg":
        Y = None
        for _, _, X_shift in _window_slices(X_HW, window):
            Y = X_shift if Y is None else Y + X_shift
        return Y / (window[0] * window[1])
    raise ValueError(f"pool2d mode must be 'max' or 'avg', got {mode!r}")


# --------------------------------------------------------------------------------------------
# Batched NHWC with padding and stride
# --------------------------------------------------------------------------------------------


def extract_patches(
    x_BHWC: jax.Array,
    window: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: Padding = 0,
    pad_value: float = 0.0,
) -> jax.Array:
    """Every ``window`` of the padded input, by strides: ``[B, H, W, C] -> [B, H', W', kh*kw, C]``.

    Entry ``[:, a, b, i*kw + j, :]`` is the input pixel that kernel offset ``(i, j)`` sees at
    output position ``(a, b)``. It is built from ``kh * kw`` strided slices of the padded input
    (one per kernel offset), stacked: the "im2col" matrix, without a Python loop over outputs.
    """
    x_BHWC = jnp.asarray(x_BHWC)
    if x_BHWC.ndim != 4:
        raise ValueError(f"expected an NHWC batch [B, H, W, C], got shape {x_BHWC.shape}")
    kh, kw = _pair(window, "window")
    sh, sw = _pair(stride, "stride")
    (pt, pb), (pl, pr) = _padding(padding, x_BHWC.shape[1:3], (kh, kw), (sh, sw))
    B, H, W, C = x_BHWC.shape
    Ho = conv_output_shape(H, kh, pt + pb, sh)
    Wo = conv_output_shape(W, kw, pl + pr, sw)
    if pt or pb or pl or pr:
        x_BHWC = jnp.pad(x_BHWC, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    slices = [
        jax.lax.slice(
            x_BHWC,
            (0, i, j, 0),
            (B, i + (Ho - 1) * sh + 1, j + (Wo - 1) * sw + 1, C),
            (1, sh, sw, 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.stack(slices, axis=3)


def conv2d(
    x_BHWC: jax.Array,
    w_hwIO: jax.Array,
    b_O: jax.Array | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Padding = 0,
) -> jax.Array:
    """Batched multi-channel 2-D convolution (cross-correlation) from scratch.

    :func:`extract_patches` gives ``[B, H', W', kh*kw, I]``; contracting the window and input
    channel axes with the kernel ``[kh, kw, I, O]`` (one ``einsum``, i.e. a matrix product of the
    im2col matrix with the flattened kernel) gives ``[B, H', W', O]``; then the bias is added.
    """
    w_hwIO = jnp.asarray(w_hwIO)
    if w_hwIO.ndim != 4:
        raise ValueError(f"conv2d kernel must be [kh, kw, in, out], got shape {w_hwIO.shape}")
    kh, kw, I, O = w_hwIO.shape
    if jnp.ndim(x_BHWC) != 4 or x_BHWC.shape[-1] != I:
        raise ValueError(
            f"conv2d expects input [B, H, W, {I}] for a kernel {w_hwIO.shape}, got "
            f"{jnp.shape(x_BHWC)}"
        )
    patches_BHWKI = extract_patches(x_BHWC, (kh, kw), stride, padding)
    y_BHWO = jnp.einsum("bhwki,kio->bhwo", patches_BHWKI, w_hwIO.reshape(kh * kw, I, O))
    if b_O is not None:
        y_BHWO = y_BHWO + b_O
    return y_BHWO


def _pool_args(window, stride) -> tuple[Pair, Pair]:
    window = _pair(window, "window")
    stride = window if stride is None else _pair(stride, "stride")
    return window, stride


def max_pool2d(
    x_BHWC: jax.Array,
    window: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Padding = 0,
) -> jax.Array:
    """Batched max pooling from scratch: the maximum over the window axis of
    :func:`extract_patches` (padding counts as ``-inf``). ``stride`` defaults to ``window``."""
    window, stride = _pool_args(window, stride)
    x_BHWC = jnp.asarray(x_BHWC)
    if jnp.issubdtype(x_BHWC.dtype, jnp.floating):
        lowest = -jnp.inf
    else:
        lowest = jnp.iinfo(x_BHWC.dtype).min
    return jnp.max(extract_patches(x_BHWC, window, stride, padding, lowest), axis=3)


def avg_pool2d(
    x_BHWC: jax.Array,
    window: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Padding = 0,
) -> jax.Array:
    """Batched average pooling from scratch: the mean over the window axis of
    :func:`extract_patches` (padded zeros are counted). ``stride`` defaults to ``window``."""
    window, stride = _pool_args(window, stride)
    return jnp.mean(extract_patches(x_BHWC, window, stride, padding), axis=3)


# --------------------------------------------------------------------------------------------
# A fast CPU convolution for small CNNs: row-Toeplitz matrix products
# --------------------------------------------------------------------------------------------


def _toeplitz_kernel(w_hwIO: jax.Array, in_width: int, out_width: int) -> jax.Array:
    """The kernel as a ``[kh * in_width * I, out_width * O]`` banded (Toeplitz) matrix.

    Entry ``[(i, u, c), (v, o)]`` is ``w[i, u - v, c, o]`` when ``0 <= u - v < kw``, else 0: one
    input strip of ``kh`` rows and ``in_width = out_width + kw - 1`` columns times this matrix is
    ``out_width`` adjacent output pixels of one output row.
    """
    kh, kw, I, O = w_hwIO.shape
    d_UV = np.arange(in_width)[:, None] - np.arange(out_width)[None, :]
    band_UV = (d_UV >= 0) & (d_UV < kw)
    T = w_hwIO[:, np.clip(d_UV, 0, kw - 1)]  # [kh, in_width, out_width, I, O]
    T = jnp.where(band_UV[None, :, :, None, None], T, jnp.zeros((), T.dtype))
    return T.transpose(0, 1, 3, 2, 4).reshape(kh * in_width * I, out_width * O)


def _row_strips(x_BHWC: jax.Array, kh: int, kw: int, block: int) -> jax.Array:
    """``[B, H, W, I] -> [B * Ho * nb, kh * (block + kw - 1) * I]``: for each output row and each
    block of ``block`` output columns, the ``kh`` input rows it reads (``kh * nb`` slices)."""
    B, H, W, I = x_BHWC.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    width = block + kw - 1
    strips = [
        jnp.stack([x_BHWC[:, i : i + Ho, n * block : n * block + width] for i in range(kh)], 2)
        for n in range(Wo // block)
    ]
    return jnp.stack(strips, 2).reshape(B * Ho * (Wo // block), kh * width * I)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _toeplitz_conv(x_BHWC, w_hwIO, b_O, block):
    y_BHWO, _ = _toeplitz_conv_fwd(x_BHWC, w_hwIO, b_O, block)
    return y_BHWO


def _toeplitz_conv_fwd(x_BHWC, w_hwIO, b_O, block):
    kh, kw, I, O = w_hwIO.shape
    B, H, W, _ = x_BHWC.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    strips_MK = _row_strips(x_BHWC, kh, kw, block)
    y_MN = strips_MK @ _toeplitz_kernel(w_hwIO, block + kw - 1, block)
    y_BHWO = y_MN.reshape(B, Ho, Wo, O) + b_O
    return y_BHWO, (strips_MK, w_hwIO, x_BHWC.shape)


def _toeplitz_conv_bwd(block, res, dy_BHWO):
    strips_MK, w_hwIO, x_shape = res
    kh, kw, I, O = w_hwIO.shape
    B, H, W, _ = x_shape
    Ho, Wo = H - kh + 1, W - kw + 1
    # Kernel: the gradient of the banded matrix, folded back onto its kh*kw*I*O free entries.
    dT_KN = strips_MK.T @ dy_BHWO.reshape(strips_MK.shape[0], block * O)
    _, fold = jax.vjp(lambda w: _toeplitz_kernel(w, block + kw - 1, block), w_hwIO)
    (dw_hwIO,) = fold(dT_KN)
    # Input: one product with the full-width banded matrix gives, for every output row, the
    # gradient of the kh input rows it read; adding those rows back in place is kh shifted sums
    # (cheaper than undoing the block strips, whose overlaps would need kh * nb of them).
    dstrips = dy_BHWO.reshape(B * Ho, Wo * O) @ _toeplitz_kernel(w_hwIO, W, Wo).T
    dstrips = dstrips.reshape(B, Ho, kh, W, I)
    dx_BHWC = sum(
        jnp.pad(dstrips[:, :, i], ((0, 0), (i, kh - 1 - i), (0, 0), (0, 0))) for i in range(kh)
    )
    return dx_BHWC, dw_hwIO, jnp.sum(dy_BHWO, axis=(0, 1, 2))


_toeplitz_conv.defvjp(_toeplitz_conv_fwd, _toeplitz_conv_bwd)


def _default_block(out_width: int, min_block: int = 4) -> int:
    """The smallest divisor of ``out_width`` that is at least ``min_block`` (28 -> 4, 10 -> 5)."""
    for d in range(min(min_block, out_width), out_width + 1):
        if out_width % d == 0:
            return d
    return out_width


def conv2d_toeplitz(
    x_BHWC: jax.Array,
    w_hwIO: jax.Array,
    b_O: jax.Array | None = None,
    *,
    padding: Padding = 0,
    block: int | None = None,
) -> jax.Array:
    """Stride-1 convolution as one dense matrix product per pass; same result as :func:`conv2d`.

    XLA's CPU convolution is slow for the thin layers of small CNNs (LeNet's 1 -> 6 and 6 -> 16
    channels), and im2col (:func:`conv2d`) makes skinny ``[N, kh*kw*I] x [kh*kw*I, O]`` products.
    Here each output row is cut into blocks of ``block`` columns; the ``kh`` input rows a block
    reads form one row of a "strips" matrix, and the kernel is laid out as a banded (Toeplitz)
    matrix (:func:`_toeplitz_kernel`), so the convolution is ``strips @ T`` with
    ``K = kh * (block + kw - 1) * I`` and ``N = block * O``: wider, better-shaped products at the
    price of multiplying some zeros. A custom VJP computes the input gradient with the full-width
    banded matrix, which avoids scattering the overlapping strips back. Being a custom VJP, it
    supports reverse-mode differentiation only (``jax.grad``, not ``jax.jvp``/``jax.hessian``).

    Args:
      x_BHWC: input batch.
      w_hwIO: kernel ``[kh, kw, I, O]`` (``nnx.Conv``'s layout).
      b_O: optional bias ``[O]``.
      padding: as for :func:`conv2d`.
      block: output columns per strip; must divide the output width. ``None`` picks the smallest
        divisor that is at least 4 (measured fastest for LeNet on a 2-core CPU).
    """
    w_hwIO = jnp.asarray(w_hwIO)
    if w_hwIO.ndim != 4:
        raise ValueError(f"kernel must be [kh, kw, in, out], got shape {w_hwIO.shape}")
    kh, kw, I, O = w_hwIO.shape
    if jnp.ndim(x_BHWC) != 4 or x_BHWC.shape[-1] != I:
        raise ValueError(
            f"conv2d_toeplitz expects input [B, H, W, {I}] for a kernel {w_hwIO.shape}, got "
            f"{jnp.shape(x_BHWC)}"
        )
    (pt, pb), (pl, pr) = _padding(padding, x_BHWC.shape[1:3], (kh, kw), (1, 1))
    if pt or pb or pl or pr:
        x_BHWC = jnp.pad(x_BHWC, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    Wo = conv_output_shape(x_BHWC.shape[2], kw)
    conv_output_shape(x_BHWC.shape[1], kh)  # raises if the kernel is taller than the input
    block = _default_block(Wo) if block is None else int(block)
    if block < 1 or Wo % block:
        raise ValueError(f"block must divide the output width {Wo}, got {block}")
    if b_O is None:
        b_O = jnp.zeros((O,), w_hwIO.dtype)
    return _toeplitz_conv(x_BHWC, w_hwIO, jnp.asarray(b_O), block)


# --------------------------------------------------------------------------------------------
# §7.2.3-§7.2.4: a convolutional layer and learning a kernel
# --------------------------------------------------------------------------------------------


class Conv2D(nnx.Module):
    """Scratch 2-D convolutional layer (§7.2.3): ``corr2d(X, weight) + bias``.

    One input and one output channel, no padding, stride 1, on a single ``[H, W]`` array. As in the
    book the kernel starts uniform in ``[0, 1)`` and the scalar bias at zero.

    Args:
      kernel_size: ``(h, w)`` or an int for a square kernel.
      use_bias: learn the scalar bias (the book's edge-detection example leaves it out).
      rngs: draws the kernel from ``rngs.params()``.
    """

    def __init__(self, kernel_size: int | Sequence[int], *, use_bias: bool = True, rngs):
        shape = _pair(kernel_size, "kernel_size")
        self.weight = nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros((1,), jnp.float32)) if use_bias else None

    def __call__(self, X_HW: jax.Array) -> jax.Array:
        Y_HW = corr2d(X_HW, self.weight[...])
        if self.bias is not None:
            Y_HW = Y_HW + self.bias[...]
        return Y_HW


def edge_detection_data() -> tuple[jax.Array, jax.Array]:
    """§7.2.2's example: ``X`` is a 6x8 image of ones with a black (zero) band in columns 2-5;
    ``Y = corr2d(X, [[1, -1]])`` marks its edges with ``1`` (white to black) and ``-1``."""
    X = jnp.ones((6, 8), jnp.float32).at[:, 2:6].set(0.0)
    Y = corr2d(X, jnp.array([[1.0, -1.0]]))
    return X, Y


def learn_edge_kernel(
    steps: int = 10, lr: float = 3e-2, seed: int = 0
) -> tuple[jax.Array, list[float]]:
    """Learn the edge-detection kernel back from ``(X, Y)`` (§7.2.4).

    A bias-free :class:`Conv2D` with a 1x2 kernel (uniform ``[0, 1)`` init from ``seed``) is
    trained by plain gradient descent on the *summed* squared error ``sum((conv(X) - Y)^2)``, the
    book's loss, for ``steps`` steps at learning rate ``lr``; the whole loop is one
    ``jax.lax.scan``. Returns the learned ``[1, 2]`` kernel (close to ``[[1, -1]]``) and the loss
    at each step (before that step's update).
    """
    X, Y = edge_detection_data()
    layer = Conv2D((1, 2), use_bias=False, rngs=nnx.Rngs(params=seed))
    graphdef, params = nnx.split(layer, nnx.Param)

    def loss_of(params):
        return jnp.sum((nnx.merge(graphdef, params)(X) - Y) ** 2)

    def step(params, _):
        loss, grads = jax.value_and_grad(loss_of)(params)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        return params, loss

    params, losses = jax.jit(lambda p: jax.lax.scan(step, p, None, length=steps))(params)
    kernel = nnx.merge(graphdef, params).weight[...]
    return kernel, [float(v) for v in losses]
