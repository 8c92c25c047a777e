"""Device meshes and shardings. Parallelism is configuration: data parallel, FSDP and tensor
parallel differ only in how arrays are partitioned over the mesh's named axes."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec


def make_mesh(shape: dict[str, int] | None = None, *, devices=None) -> Mesh:
    """A mesh over ``devices`` (default: all devices) with named axes.

    ``shape`` maps axis names to sizes; one size may be -1 (the rest of the devices). The default
    is one ``data`` axis over every device. Axis types are given explicitly (Auto), so the
    compiler propagates shardings from the inputs.
    """
    devices = list(devices if devices is not None else jax.devices())
    shape = dict(shape or {"data": -1})
    known = int(np.prod([s for s in shape.values() if s != -1]))
    if list(shape.values()).count(-1) > 1:
        raise ValueError(f"at most one mesh axis may be -1, got {shape}")
    for name, size in shape.items():
        if size == -1:
            if len(devices) % known:
                raise ValueError(f"{len(devices)} devices do not divide into mesh {shape}")
            shape[name] = len(devices) // known
    total = int(np.prod(list(shape.values())))
    if total != len(devices):
        raise ValueError(f"mesh {shape} needs {total} devices, have {len(devices)}")
    return jax.make_mesh(
        tuple(shape.values()),
        tuple(shape),
        devices=devices,
        axis_types=(AxisType.Auto,) * len(shape),
    )


def batch_sharding(mesh: Mesh, axis: str | tuple[str, ...] = "data") -> NamedSharding:
    """Shard the leading (batch) axis over ``axis``; the rest is replicated."""
    return NamedSharding(mesh, PartitionSpec(axis))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())
