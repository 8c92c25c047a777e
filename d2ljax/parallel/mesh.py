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


#: The most compiled steps :func:`in_flight_limit` lets a loop queue on a multi-device CPU mesh.
CPU_MAX_IN_FLIGHT = 8


def in_flight_limit(devices) -> int:
    """How many steps a training loop may queue before waiting for them (0: no limit).

    XLA:CPU can deadlock when a long queue of asynchronously dispatched multi-device steps (the
    simulated devices of ``--xla_force_host_platform_device_count``, or several CPU devices per
    process) waits in its all-reduces: measured on a 2-core machine with 2 CPU devices, a
    data-parallel loop ran 3,000 steps with at most 16 steps in flight and aborted ("Termination
    timeout for all reduce") with 64 in flight or with no limit. Loops over such a mesh therefore
    wait every :data:`CPU_MAX_IN_FLIGHT` steps (:func:`throttle`); one device, GPUs and TPUs are
    not limited.
    """
    devices = list(devices)
    if len(devices) > 1 and all(d.platform == "cpu" for d in devices):
        return CPU_MAX_IN_FLIGHT
    return 0


def throttle(steps_done: int, limit: int, outputs) -> None:
    """Wait for ``outputs`` every ``limit`` steps (see :func:`in_flight_limit`); no-op for 0."""
    if limit and steps_done % limit == 0:
        jax.block_until_ready(outputs)


def batch_sharding(mesh: Mesh, axis: str | tuple[str, ...] = "data") -> NamedSharding:
    """Shard the leading (batch) axis over ``axis``; the rest is replicated."""
    return NamedSharding(mesh, PartitionSpec(axis))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


# -- batch and parameter partitioning --------------------------------------------------------------

#: Mesh axes the batch is split over, in this order, where the mesh has them: FSDP is data
#: parallel too (each device sees its own examples), it only also shards the parameters.
BATCH_AXES = ("data", "fsdp")


def data_axes(mesh: Mesh) -> tuple[str, ...]:
    """The mesh axes the batch's leading axis is sharded over (``data`` and ``fsdp``)."""
    axes = tuple(a for a in BATCH_AXES if a in mesh.axis_names)
    if not axes:
        raise ValueError(
            f"mesh axes {mesh.axis_names} have no batch axis; name one of them {BATCH_AXES}"
        )
    return axes


def data_parallel_size(mesh: Mesh) -> int:
    """How many ways the batch is split: the product of the mesh's batch axes."""
    return int(np.prod([mesh.shape[a] for a in data_axes(mesh)]))


def data_sharding(mesh: Mesh) -> NamedSharding:
    """The batch sharding of ``mesh``: leading axis over every batch axis (``data``, ``fsdp``)."""
    axes = data_axes(mesh)
    return NamedSharding(mesh, PartitionSpec(axes if len(axes) > 1 else axes[0]))


def check_batch_size(batch_size: int, mesh: Mesh, what: str = "batch size") -> None:
    """A clear error when ``batch_size`` does not split evenly over the data-parallel devices."""
    n = data_parallel_size(mesh)
    if batch_size % n:
        raise ValueError(
            f"the {what} ({batch_size}) must be divisible by the data-parallel size {n} (mesh "
            f"{dict(mesh.shape)}, batch split over {data_axes(mesh)}); pick a batch size that is "
            f"a multiple of {n} or a smaller mesh (config key `mesh`)"
        )


def _path_str(path) -> str:
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def param_spec(
    shape: tuple[int, ...],
    mesh: Mesh,
    *,
    fsdp_axis: str = "fsdp",
    min_size: int = 2**14,
) -> PartitionSpec:
    """FSDP-style rule (ZeRO-3): shard the largest dimension that the ``fsdp`` axis divides over
    ``fsdp``; replicate arrays smaller than ``min_size`` elements (biases, norms, scalars) and
    everything when the mesh has no ``fsdp`` axis."""
    if fsdp_axis not in mesh.axis_names or mesh.shape[fsdp_axis] == 1:
        return PartitionSpec()
    n = mesh.shape[fsdp_axis]
    if int(np.prod(shape, dtype=np.int64)) < min_size:
        return PartitionSpec()
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[dim] % n == 0:
            spec = [None] * len(shape)
            spec[dim] = fsdp_axis
            return PartitionSpec(*spec)
    return PartitionSpec()


def state_shardings(
    tree,
    mesh: Mesh,
    *,
    rules: tuple[tuple[str, tuple], ...] | list = (),
    fsdp_axis: str = "fsdp",
    min_size: int = 2**14,
):
    """A sharding for every array leaf of ``tree`` (a train state, params, optimizer state).

    ``rules`` is a partition table ``[(regex, spec), ...]``: the first regex that matches (``re.
    search``) a leaf's path (``params/conv1/kernel``) gives its spec (a tuple of axis names or
    None per dimension). Leaves no rule matches follow :func:`param_spec` (FSDP when the mesh has an
    ``fsdp`` axis, else replicated). Because the rule is by path and shape, the optimizer's moments
    are sharded like the parameters they belong to.
    """
    import re

    compiled = [(re.compile(pattern), PartitionSpec(*spec)) for pattern, spec in rules]

    def one(path, leaf):
        shape = tuple(getattr(leaf, "shape", ()))
        name = _path_str(path)
        for pattern, spec in compiled:
            if pattern.search(name):
                if len(spec) > len(shape):
                    raise ValueError(
                        f"partition rule {pattern.pattern!r}: {spec} has more axes than "
                        f"{name} {shape}"
                    )
                return NamedSharding(mesh, spec)
        return NamedSharding(
            mesh, param_spec(shape, mesh, fsdp_axis=fsdp_axis, min_size=min_size)
        )

    return jax.tree_util.tree_map_with_path(one, tree)


def put_global(tree, shardings):
    """``jax.device_put(tree, shardings)`` that also works across processes (multi-host): there a
    sharding spans devices of other processes, which takes host (NumPy) values, identical on
    every process; typed PRNG keys travel as their raw key data."""
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def one(x, sharding):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = jax.device_put(np.asarray(jax.random.key_data(x)), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return jax.device_put(np.asarray(x), sharding)

    if isinstance(shardings, jax.sharding.Sharding):
        return jax.tree.map(lambda x: one(x, shardings), tree)
    return jax.tree.map(one, tree, shardings)
