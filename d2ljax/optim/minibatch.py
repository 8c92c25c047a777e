"""The minibatch trade-off (book §12.5, measured beyond the book): gradient noise vs throughput.

§12.5 argues both sides: a minibatch gradient is an unbiased estimate of the full gradient whose
variance falls like ``1 / batch_size``, while larger batches use vectorized hardware better, so
each example costs less time. These two functions measure both sides for any loss written as a
pure function ``loss_fn(params, batch) -> scalar mean loss``:

* :func:`gradient_noise`: ``E ||g_B - g||^2``, the mean squared distance between the gradient of
  a random minibatch of size ``B`` (drawn without replacement) and the gradient over all the
  given examples. For ``N`` examples it equals ``tr(Sigma) / B * (N - B) / (N - 1)``, with
  ``Sigma`` the covariance of the per-example gradients: a slope of -1 on a log-log plot until
  ``B`` approaches ``N``.
* :func:`examples_per_second`: training throughput of a jitted step (gradient + optax update)
  at a given batch size.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

__all__ = ["examples_per_second", "full_gradient", "gradient_noise"]

LossFn = Callable[[optax.Params, dict], jax.Array]


def _num_examples(data: dict) -> int:
    return len(next(iter(jax.tree.leaves(data))))


def full_gradient(loss_fn: LossFn, params, data: dict, chunk_size: int = 4096) -> jax.Array:
    """The flattened gradient of the mean loss over all of ``data``, computed chunk by chunk
    (each chunk weighted by its size, so it equals the gradient of the whole-data mean)."""
    n = _num_examples(data)
    grad = jax.jit(jax.grad(loss_fn))
    total = None
    for start in range(0, n, chunk_size):
        chunk = jax.tree.map(lambda a, s=start: a[s : s + chunk_size], data)
        m = _num_examples(chunk)
        g = ravel_pytree(grad(params, chunk))[0] * (m / n)
        total = g if total is None else total + g
    return total


def gradient_noise(
    loss_fn: LossFn,
    params,
    data: dict,
    batch_size: int,
    *,
    key: jax.Array,
    num_batches: int = 32,
    full_grad: jax.Array | None = None,
) -> float:
    """``E ||g_B - g||^2`` over ``num_batches`` random minibatches of ``batch_size`` examples.

    Args:
      loss_fn: ``loss_fn(params, batch) -> mean loss``.
      params: where the gradients are taken.
      data: a dict of equally long arrays (all the examples ``g`` is defined over).
      batch_size: ``B``; each minibatch is drawn without replacement.
      key: PRNG key for the draws.
      num_batches: how many minibatches the expectation averages.
      full_grad: the flattened full-data gradient, if already computed (:func:`full_gradient`).
    """
    n = _num_examples(data)
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    if full_grad is None:
        full_grad = full_gradient(loss_fn, params, data)

    idx_KB = _draw_minibatches(key, n, batch_size, num_batches)

    def sq_distance(idx_B):
        batch = jax.tree.map(lambda a: a[idx_B], data)
        g = ravel_pytree(jax.grad(loss_fn)(params, batch))[0]
        return jnp.sum((g - full_grad) ** 2)

    # lax.map in groups of 8: one compilation, and memory for 8 minibatches at a time.
    distances = jax.jit(lambda idx: jax.lax.map(sq_distance, idx, batch_size=8))(idx_KB)
    return float(jnp.mean(distances))


def _draw_minibatches(key, n: int, batch_size: int, num_batches: int) -> np.ndarray:
    """``[num_batches, batch_size]`` indices, each row drawn from ``range(n)`` without
    replacement. Drawn on the host from a seed taken from ``key``: a sort-based permutation on
    the device would cost a compilation per shape, longer than the whole measurement."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    return np.stack([rng.choice(n, batch_size, replace=False) for _ in range(num_batches)])


def examples_per_second(
    loss_fn: LossFn,
    params,
    data: dict,
    batch_size: int,
    optimizer: optax.GradientTransformation,
    *,
    num_steps: int = 20,
    repeats: int = 3,
) -> float:
    """Examples per second of a jitted training step at ``batch_size`` (best of ``repeats``).

    The step computes the gradient and applies ``optimizer``; the batches are consecutive slices
    of ``data`` already on the device, so the figure is compute only, without input pipeline.
    Compilation happens in a warm-up step that is not timed.
    """
    n = _num_examples(data)
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    starts = [(i * batch_size) % (n - batch_size + 1) for i in range(num_steps)]
    batches = [jax.tree.map(lambda a, s=s: a[s : s + batch_size], data) for s in starts]

    @jax.jit
    def step(params, opt_state, batch):
        grads = jax.grad(loss_fn)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    p, s = step(params, optimizer.init(params), batches[0])
    jax.block_until_ready(p)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for batch in batches:
            p, s = step(p, s, batch)
        jax.block_until_ready(p)
        best = min(best, time.perf_counter() - t0)
    return num_steps * batch_size / best
