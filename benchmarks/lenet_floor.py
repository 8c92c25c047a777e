"""How fast can a LeNet training step be on this CPU with XLA's matrix products? A lower bound.

    python benchmarks/lenet_floor.py [--rounds 7]

A training step of the book's LeNet (batch 128) needs, for each convolution, a forward product,
a weight-gradient product and (conv2 only) an input-gradient product, plus the three dense
layers. On a CPU each convolution becomes a matrix product in one of two ways, and both lose:

* im2col (``K = kh*kw*I``, ``N = O``): the products are skinny (``N`` = 6 or 16 columns), so XLA's
  GEMM runs far from peak, and the patch matrix is large;
* a banded (Toeplitz) kernel over a block of ``q`` output columns (``K = kh*(q+kw-1)*I``,
  ``N = q*O``, what ``conv2d_toeplitz`` does): better shapes, but ``(q+kw-1)/kw`` times the
  multiply-adds, the extra ones against zeros.

For each layout this script times exactly the products one step needs, each alone and compiled
(the fastest of ``--rounds``), and prints their sum: the step time if everything else (strip
gathers, sigmoid, pooling, the SGD update, dispatch) were free, and the epoch time (469 train
steps) it implies. It also prints the float32 peak of a large square product for reference.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

B = 128
STEPS = 469  # 60,000 / 128, rounded up


def best_ms(fn, *args, rounds: int, inner: int = 50) -> float:
    fn = jax.jit(fn)
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t0) / inner * 1e3)
    return best


def products(m: int, k: int, n: int, rounds: int, grad_input: bool) -> tuple[float, float]:
    """Time of ``[m, k] @ [k, n]`` (forward), ``[k, m] @ [m, n]`` (weight gradient) and, with
    ``grad_input``, ``[m, n] @ [n, k]`` (input gradient); returns (ms, multiply-adds)."""
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.random((m, k), np.float32))
    w = jnp.asarray(rng.random((k, n), np.float32))
    dy = jnp.asarray(rng.random((m, n), np.float32))
    ms = best_ms(lambda a, w: a @ w, a, w, rounds=rounds)
    ms += best_ms(lambda a, dy: a.T @ dy, a, dy, rounds=rounds)
    passes = 2
    if grad_input:
        ms += best_ms(lambda dy, w: dy @ w.T, dy, w, rounds=rounds)
        passes = 3
    return ms, passes * m * k * n


def conv_shape(layout: str, h_out: int, kh: int, cin: int, cout: int, q: int) -> tuple[int, ...]:
    """(M, K, N) of one convolution's product for batch B."""
    if layout == "im2col":
        return (B * h_out * h_out, kh * kh * cin, cout)
    return (B * h_out * (h_out // q), kh * (q + kh - 1) * cin, q * cout)


LAYOUTS = {  # name: (conv1 layout and block, conv2 layout and block)
    "im2col": (("im2col", 1), ("im2col", 1)),
    "banded q=4 / q=5 (d2ljax's conv2d_toeplitz)": (("banded", 4), ("banded", 5)),
    "banded q=4 / q=2": (("banded", 4), ("banded", 2)),
    "banded q=7 / q=10": (("banded", 7), ("banded", 10)),
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    r = args.rounds
    n = 2048
    big = jnp.ones((n, n), jnp.float32)
    peak = 2 * n**3 / best_ms(lambda a: a @ a, big, rounds=r, inner=5) / 1e6
    device = jax.devices()[0].device_kind
    print(f"jax {jax.__version__} on {device}; float32 peak {peak:.0f} GFLOP/s")
    dense_ms, dense_macs = 0.0, 0
    for k, n_ in ((400, 120), (120, 84), (84, 10)):
        ms, macs = products(B, k, n_, r, grad_input=True)
        dense_ms, dense_macs = dense_ms + ms, dense_macs + macs
    true_macs = 2 * B * 28 * 28 * 25 * 6 + 3 * B * 10 * 10 * 150 * 16 + dense_macs
    print(f"dense layers: {dense_ms:.2f} ms/step; the step's true work: {2 * true_macs / 1e9:.3f} "
          f"GFLOP ({2 * true_macs / (peak * 1e9) * STEPS:.2f} s/epoch at peak)")
    print(f"{'conv layouts':46s} {'GFLOP':>7s} {'products ms/step':>17s} {'GFLOP/s':>8s} "
          f"{'epoch floor':>12s}")
    for name, ((l1, q1), (l2, q2)) in LAYOUTS.items():
        ms1, macs1 = products(*conv_shape(l1, 28, 5, 1, 6, q1), r, grad_input=False)
        ms2, macs2 = products(*conv_shape(l2, 10, 5, 6, 16, q2), r, grad_input=True)
        ms = ms1 + ms2 + dense_ms
        flops = 2 * (macs1 + macs2 + dense_macs)
        print(f"{name:46s} {flops / 1e9:7.3f} {ms:17.2f} {flops / ms / 1e6:8.0f} "
              f"{ms * STEPS / 1e3:10.2f} s")


if __name__ == "__main__":
    main()
