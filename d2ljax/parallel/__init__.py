"""Meshes, shardings and multi-device helpers (book chapter 13).

``mesh``: meshes, batch and parameter (FSDP) shardings; ``pmap``: the classic data-parallel
algorithm written out (§13.5) next to the one-``jit`` mesh version (§13.6); ``collectives``:
reduce-scatter, all-gather and ring all-reduce with ``shard_map`` (§13.7); ``distributed``:
multi-process (multi-host) initialisation and per-process data loading.
"""

from d2ljax.parallel.mesh import (
    batch_sharding,
    check_batch_size,
    data_axes,
    data_parallel_size,
    data_sharding,
    in_flight_limit,
    make_mesh,
    param_spec,
    put_global,
    replicated,
    state_shardings,
    throttle,
)

__all__ = [
    "batch_sharding",
    "check_batch_size",
    "data_axes",
    "data_parallel_size",
    "data_sharding",
    "in_flight_limit",
    "make_mesh",
    "param_spec",
    "put_global",
    "replicated",
    "state_shardings",
    "throttle",
]
