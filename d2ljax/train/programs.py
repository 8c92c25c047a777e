"""The compiled programs ``fit``, ``evaluate`` and ``predict`` run, built once and kept.

A task's steps are compiled into a few programs, each kept in one process-wide cache under a
key made of the task's :meth:`~d2ljax.train.Task.program_key`, the shardings and the data
source's gather; a later ``fit`` (another trial, another learning rate) or ``evaluate`` call
with an equal key runs the already compiled program. Every epoch has one shape:

* ``train_chunk(state, sums, data, idx_LB, mask_LB, valid_L)``: ``L`` train steps as one
  ``lax.scan``; step ``l`` gathers its batch ``take(data, idx_LB[l])`` from the device-resident
  dataset, with ``mask_LB[l]`` as its ``"mask"`` (0 on the rows that pad the epoch's last
  batch); a step with ``valid_L[l]`` false (the ones that pad the epoch's last chunk) leaves the
  state as it is. So an epoch of ``n`` batches is ``ceil(n / L)`` calls of one program.
* ``eval_chunk(state, sums, data, idx_LB, mask_LB)``: the same for the eval step (a whole pass).
* ``train_batch(state, sums, batch)`` / ``eval_batch``: one step on a batch the host feeds (a
  loader that is not on the device); the last batch is padded to the full size with a mask.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

MASK = "mask"

_CACHE: collections.OrderedDict[Any, Callable] = collections.OrderedDict()
_CACHE_SIZE = 64


def cached(key: Any, build: Callable[[], Callable]) -> Callable:
    """The program under ``key``, built by ``build()`` the first time (least recently used
    programs beyond 64 are dropped)."""
    try:
        fn = _CACHE.pop(key)
    except KeyError:
        fn = build()
    _CACHE[key] = fn
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return fn


def compiled_programs() -> list[tuple[str, int]]:
    """``(kind, number of compiled executables)`` for every kept program, oldest first: a run
    that compiled once shows 1 for each program it used."""
    return [(key[0], fn._cache_size()) for key, fn in _CACHE.items()]


def clear() -> None:
    """Forget every kept program (the next call compiles again)."""
    _CACHE.clear()


def sharding_key(shardings) -> Any:
    """A hashable stand-in for a pytree of shardings (or one sharding, or None)."""
    if shardings is None or isinstance(shardings, jax.sharding.Sharding):
        return shardings
    leaves, treedef = jax.tree.flatten(shardings)
    return (treedef, tuple(leaves))


def _pin(tree, sharding):
    if sharding is None:
        return tree
    if isinstance(sharding, jax.sharding.Sharding):
        sharding = jax.tree.map(lambda _: sharding, tree)
    return jax.lax.with_sharding_constraint(tree, sharding)


def _add(sums, metrics):
    return jax.tree.map(jnp.add, sums, metrics)


def train_chunk(task, take, state_sharding, sums_sharding, batch_sharding) -> Callable:
    key = (
        "train_chunk",
        task.program_key(),
        take,
        sharding_key(state_sharding),
        sums_sharding,
        batch_sharding,
    )

    def build():
        def chunk(state, sums, data, idx_LB, mask_LB, valid_L):
            def body(carry, xs):
                idx_B, mask_B, valid = xs
                batch = _gather(take, data, idx_B, mask_B, batch_sharding)

                def step(carry):
                    state, sums = carry
                    state, metrics = task.train_step(state, batch)
                    return _pin(state, state_sharding), _pin(_add(sums, metrics), sums_sharding)

                return jax.lax.cond(valid, step, lambda carry: carry, carry), None

            return jax.lax.scan(body, (state, sums), (idx_LB, mask_LB, valid_L))[0]

        return jax.jit(chunk, donate_argnums=(0, 1))

    return cached(key, build)


def eval_chunk(task, take, sums_sharding, batch_sharding) -> Callable:
    key = ("eval_chunk", task.program_key(), take, sums_sharding, batch_sharding)

    def build():
        def chunk(state, sums, data, idx_LB, mask_LB):
            def body(sums, xs):
                batch = _gather(take, data, *xs, batch_sharding)
                return _pin(_add(sums, task.eval_step(state, batch)), sums_sharding), None

            return jax.lax.scan(body, sums, (idx_LB, mask_LB))[0]

        return jax.jit(chunk, donate_argnums=(1,))

    return cached(key, build)


def train_batch(task, state_sharding, sums_sharding) -> Callable:
    key = ("train_batch", task.program_key(), sharding_key(state_sharding), sums_sharding)

    def build():
        def one(state, sums, batch):
            state, metrics = task.train_step(state, batch)
            return _pin(state, state_sharding), _pin(_add(sums, metrics), sums_sharding)

        return jax.jit(one, donate_argnums=(0, 1))

    return cached(key, build)


def eval_batch(task, sums_sharding) -> Callable:
    key = ("eval_batch", task.program_key(), sums_sharding)

    def build():
        def one(state, sums, batch):
            return _pin(_add(sums, task.eval_step(state, batch)), sums_sharding)

        return jax.jit(one, donate_argnums=(1,))

    return cached(key, build)


def _gather(take, data, idx_B, mask_B, batch_sharding):
    batch = {} if take is None else dict(take(data, idx_B))
    if mask_B is not None:  # padding rows are zeros, as pad_batch makes them
        batch = {k: _zero_rows(v, mask_B) for k, v in batch.items()}
        batch[MASK] = mask_B
    if batch_sharding is not None and batch:
        batch = jax.lax.with_sharding_constraint(
            batch, jax.tree.map(lambda _: batch_sharding, batch)
        )
    return batch


def _zero_rows(x, mask_B):
    keep = (mask_B > 0).reshape((-1,) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x, jnp.zeros((), x.dtype))


def pad_batch(batch: dict, rows: int) -> dict:
    """``batch`` with its ``"mask"``, padded with zero rows to ``rows`` examples (a full batch:
    mask of ones). Compiled once per batch shape."""
    n = jax.tree.leaves(batch)[0].shape[0]
    return _pad(batch, n, rows)


@jax.jit
def _pad_impl(batch, mask_B):
    rows = mask_B.shape[0]

    def pad(x):
        return jnp.pad(x, [(0, rows - x.shape[0])] + [(0, 0)] * (x.ndim - 1))

    return {**jax.tree.map(pad, batch), MASK: mask_B}


def _pad(batch, n, rows):
    if n > rows:
        raise ValueError(f"a batch of {n} examples is larger than the batch size {rows}")
    leaf = jax.tree.leaves(batch)[0]
    mask = _mask_of(n, rows, getattr(leaf, "sharding", None))
    return _pad_impl(batch, mask)


_MASKS: dict = {}


def _mask_of(n: int, rows: int, sharding) -> jax.Array:
    key = (n, rows, sharding)
    if key not in _MASKS:
        mask = (np.arange(rows) < n).astype(np.float32)
        _MASKS[key] = jax.device_put(mask, sharding)
    return _MASKS[key]


def epoch_chunks(indices: list[np.ndarray], batch_size: int, length: int):
    """An epoch's batches (example indices, the last possibly smaller) as chunks of ``length``
    steps: ``(idx_LB, mask_LB, valid_L)`` NumPy arrays, the last batch and the last chunk
    padded (index 0, mask 0, valid False)."""
    n = len(indices)
    length = max(1, min(length, n))
    chunks = -(-n // length)
    idx = np.zeros((chunks * length, batch_size), np.int32)
    mask = np.zeros((chunks * length, batch_size), np.float32)
    for i, rows in enumerate(indices):
        idx[i, : len(rows)] = rows
        mask[i, : len(rows)] = 1.0
    valid = np.arange(chunks * length) < n
    return [
        (
            idx[c * length : (c + 1) * length],
            mask[c * length : (c + 1) * length],
            valid[c * length : (c + 1) * length],
        )
        for c in range(chunks)
    ]
