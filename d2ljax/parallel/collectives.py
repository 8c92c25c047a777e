"""Collective operations written out with ``jax.shard_map`` (book §13.7 "Parameter Servers").

Every device of a ring holds a vector of the same length; ``lax.psum`` adds them up. The book
explains how that sum is done without a central server: a **reduce-scatter** (after ``n-1`` steps
around the ring, device ``i`` holds the full sum of the ``i``-th of ``n`` chunks) followed by an
**all-gather** (another ``n-1`` steps pass the reduced chunks around until every device has all of
them). Each step every device sends one chunk to its right-hand neighbour
(``lax.ppermute``), so every link carries ``2 (n-1)/n`` of the vector in total, whatever ``n``:
the **ring all-reduce** bandwidth argument of the section.

The functions take a global array ``x_ND`` of shape ``(n, D)`` sharded over one mesh axis (row
``i`` is device ``i``'s vector) and return the collective's result laid out the same way; tests
compare them with ``lax.psum``, ``lax.psum_scatter`` and ``lax.all_gather``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec


def _ring(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)]


def ring_reduce_scatter_local(v_D: jax.Array, axis: str, n: int) -> jax.Array:
    """Inside ``shard_map``: this device's vector ``(D,)`` -> its reduced chunk ``(D/n,)``.

    Chunk ``k``'s partial sum starts at device ``k+1`` and travels the ring, each device adding
    its own chunk ``k``; after ``n-1`` hops it arrives, complete, at device ``k``.
    """
    if v_D.shape[0] % n:
        raise ValueError(f"vector length {v_D.shape[0]} is not divisible by {n} devices")
    chunks = v_D.reshape(n, -1)
    i = lax.axis_index(axis)
    buf = chunks[(i - 1) % n]
    for s in range(n - 1):
        buf = lax.ppermute(buf, axis, _ring(n)) + chunks[(i - 2 - s) % n]
    return buf


def ring_all_gather_local(c_K: jax.Array, axis: str, n: int) -> jax.Array:
    """Inside ``shard_map``: this device's chunk ``(K,)`` -> all ``n`` chunks ``(n*K,)``, in
    device order, passed around the ring in ``n-1`` hops."""
    i = lax.axis_index(axis)
    out = jnp.zeros((n, *c_K.shape), c_K.dtype).at[i].set(c_K)
    buf = c_K
    for s in range(n - 1):
        buf = lax.ppermute(buf, axis, _ring(n))
        out = out.at[(i - s - 1) % n].set(buf)
    return out.reshape(-1)


def _mapped(fn, mesh: Mesh, axis: str):
    n = mesh.shape[axis]

    def per_device(x_1D):
        return fn(x_1D[0], axis, n)[None]

    return jax.jit(
        jax.shard_map(
            per_device, mesh=mesh, in_specs=PartitionSpec(axis), out_specs=PartitionSpec(axis)
        )
    )


def reduce_scatter(x_ND: jax.Array, mesh: Mesh, axis: str = "data") -> jax.Array:
    """``(n, D)`` (row ``i`` on device ``i``) -> ``(n, D/n)``: row ``i`` is chunk ``i`` of the sum
    of all rows (``lax.psum_scatter(..., tiled=True)``), by a ring of ``ppermute`` s."""
    return _mapped(ring_reduce_scatter_local, mesh, axis)(x_ND)


def all_gather(x_NK: jax.Array, mesh: Mesh, axis: str = "data") -> jax.Array:
    """``(n, K)`` -> ``(n, n*K)``: every device gets every device's row (``lax.all_gather``)."""
    return _mapped(ring_all_gather_local, mesh, axis)(x_NK)


def ring_all_reduce(x_ND: jax.Array, mesh: Mesh, axis: str = "data") -> jax.Array:
    """``(n, D)`` -> ``(n, D)``: every row becomes the sum of all rows (``lax.psum``), as a
    reduce-scatter followed by an all-gather."""

    def local(v_D, axis, n):
        return ring_all_gather_local(ring_reduce_scatter_local(v_D, axis, n), axis, n)

    return _mapped(local, mesh, axis)(x_ND)


def psum_reference(x_ND: jax.Array, mesh: Mesh, axis: str = "data") -> jax.Array:
    """The library all-reduce (``lax.psum``) with the same layout, for comparison."""
    return _mapped(lambda v, a, n: lax.psum(v, a), mesh, axis)(x_ND)


def ring_traffic(num_devices: int, nbytes: int) -> dict[str, float]:
    """Bytes each device sends in a ring all-reduce of ``nbytes`` versus sending everything to
    one server and back (book §13.7): ``2 (n-1)/n * nbytes`` against ``2 nbytes`` per worker and
    ``2 (n-1) nbytes`` through the server's link."""
    n = num_devices
    return {
        "ring_per_device": 2 * (n - 1) / n * nbytes,
        "server_link": 2 * (n - 1) * nbytes,
    }
