"""Multi-process (multi-host) training: one Python process per host, all running the same program.

JAX's multi-controller model: every process calls :func:`initialize` first (before any JAX
computation), then builds the same global mesh over ``jax.devices()`` (all processes' devices) and
runs the same compiled steps in the same order. Each process addresses only its local devices, so
each one feeds only its own rows of every global batch (:class:`ProcessLocalLoader`, built on
``jax.make_array_from_process_local_data``); the gradient all-reduce crosses processes inside the
compiled step (ICI/DCN on TPU, NCCL on GPU, gloo on CPU).

Who writes what: only process 0 prints, writes ``metrics.json``, ``config.json`` and plots
(:func:`is_primary`); checkpoints are collective: every process calls Orbax's save, each writes
the shards it owns, and Orbax lets the primary process write the metadata and finalise the step
(so the checkpoint directory must be shared storage, e.g. a GCS bucket, on a real pod).

Where the settings come from, in order: the arguments (``d2ljax train --coordinator HOST:PORT
--num-processes N --process-id I``), the environment (``D2LJAX_COORDINATOR``,
``D2LJAX_NUM_PROCESSES``, ``D2LJAX_PROCESS_ID``), and on a Cloud TPU VM
(``--distributed`` or a multi-worker TPU environment) JAX's own cluster detection
(``jax.distributed.initialize()`` with no arguments). Without any of them: one process, nothing
to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import jax
import numpy as np

ENV_COORDINATOR = "D2LJAX_COORDINATOR"
ENV_NUM_PROCESSES = "D2LJAX_NUM_PROCESSES"
ENV_PROCESS_ID = "D2LJAX_PROCESS_ID"

_initialized = False


def on_cloud_tpu_pod() -> bool:
    """A multi-worker Cloud TPU environment (``TPU_WORKER_HOSTNAMES`` lists several workers)."""
    hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return "," in hosts


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"${name} must be an integer, got {value!r}") from None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool | None = None,
    local_device_ids: list[int] | None = None,
    cpu_collectives: str = "gloo",
) -> bool:
    """Join a multi-process JAX run; returns True when this is one (several processes).

    Arguments fall back to ``$D2LJAX_COORDINATOR``, ``$D2LJAX_NUM_PROCESSES``,
    ``$D2LJAX_PROCESS_ID``. With a coordinator, all three are required (the coordinator is
    process 0's ``host:port``). ``auto=True`` (or, by default, a multi-worker Cloud TPU) calls
    ``jax.distributed.initialize()`` without arguments, which finds the TPU pod's workers itself.
    Otherwise it does nothing: a single process. On CPU, cross-process collectives use
    ``cpu_collectives`` (gloo), so the whole thing runs on one machine over 127.0.0.1.

    Call it before anything touches a device (``jax.devices()``, creating an array).
    """
    global _initialized
    if _initialized:
        return jax.process_count() > 1
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR) or None
    if num_processes is None:
        num_processes = _env_int(ENV_NUM_PROCESSES)
    if process_id is None:
        process_id = _env_int(ENV_PROCESS_ID)
    if coordinator_address is not None:
        if num_processes is None or process_id is None:
            raise ValueError(
                f"a coordinator ({coordinator_address}) needs the number of processes and this "
                f"process's id too: --num-processes/--process-id or ${ENV_NUM_PROCESSES}/"
                f"${ENV_PROCESS_ID}"
            )
        if not 0 <= process_id < num_processes:
            raise ValueError(f"process id {process_id} is not in [0, {num_processes})")
        if num_processes == 1:
            _initialized = True
            return False
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
        jax.distributed.initialize(
            coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            local_device_ids=local_device_ids,
        )
        _initialized = True
        return True
    if num_processes not in (None, 1) or process_id not in (None, 0):
        raise ValueError(
            f"{num_processes} processes (id {process_id}) need a coordinator address: "
            f"--coordinator HOST:PORT or ${ENV_COORDINATOR}"
        )
    if auto or (auto is None and on_cloud_tpu_pod()):
        jax.distributed.initialize()
        _initialized = True
        return jax.process_count() > 1
    return False


def shutdown() -> None:
    """Leave the multi-process run (at the end of a program; optional)."""
    global _initialized
    if _initialized and jax.process_count() > 1:
        jax.distributed.shutdown()
    _initialized = False


def is_primary() -> bool:
    """True on process 0: the one that prints and writes logs, metrics and plots."""
    return jax.process_index() == 0


def process_rows(sharding: jax.sharding.Sharding, batch_size: int) -> tuple[int, int]:
    """The rows ``[start, stop)`` of a global batch of ``batch_size`` that this process's devices
    hold under ``sharding`` (contiguous for a batch sharded over the leading axis)."""
    index = sharding.addressable_devices_indices_map((batch_size,))
    starts, stops = [], []
    for idx in index.values():
        s = idx[0] if idx else slice(None)
        start, stop, _ = s.indices(batch_size)
        starts.append(start)
        stops.append(stop)
    start, stop = min(starts), max(stops)
    covered = sorted(set(zip(starts, stops, strict=True)))
    if sum(b - a for a, b in covered) != stop - start and len(covered) > 1:
        raise ValueError(f"this process's rows of the batch are not contiguous: {covered}")
    return start, stop


class ProcessLocalLoader:
    """Batches of a dataset for a multi-process run: each process holds the dataset's arrays on
    the host but puts only *its* rows of every global batch on its devices, and
    ``jax.make_array_from_process_local_data`` assembles them into one global, batch-sharded
    ``jax.Array``. Every process draws the same permutation from ``(seed, epoch)``, so the global
    batches are exactly those of a single-process :class:`d2ljax.data.ArrayLoader` with the same
    arguments (and a multi-process run computes the same steps as a single-process one).

    ``transform`` (e.g. uint8 -> float images) runs on the devices on the global batch.
    """

    def __init__(
        self,
        data: Mapping[str, np.ndarray],
        batch_size: int,
        *,
        sharding: jax.sharding.NamedSharding,
        shuffle: bool = True,
        seed: int = 0,
        drop_remainder: bool = False,
        transform: Callable | None = None,
    ):
        from d2ljax.parallel.mesh import check_batch_size

        sizes = {k: len(v) for k, v in data.items()}
        if not sizes or len(set(sizes.values())) != 1:
            raise ValueError(f"all arrays must have the same number of examples, got {sizes}")
        self.num_examples = next(iter(sizes.values()))
        self.batch_size = int(batch_size)
        self.sharding = sharding
        self.shuffle, self.seed, self.drop_remainder = shuffle, seed, drop_remainder
        self.transform = transform
        self.epoch = 0
        check_batch_size(self.batch_size, sharding.mesh)
        rem = self.num_examples % self.batch_size
        if rem and not drop_remainder:
            check_batch_size(rem, sharding.mesh, "last batch (use drop_remainder=True)")
        self._host = {k: np.asarray(v) for k, v in data.items()}
        self._finish = jax.jit(lambda b: transform(b) if transform else b, out_shardings=sharding)

    @property
    def num_batches(self) -> int:
        full, rem = divmod(self.num_examples, self.batch_size)
        return full + (1 if rem and not self.drop_remainder else 0)

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        from d2ljax.data.pipeline import epoch_permutation

        epoch = self.epoch
        self.epoch += 1
        if self.shuffle:
            order = epoch_permutation(self.num_examples, self.seed, epoch)
        else:
            order = np.arange(self.num_examples)
        for i in range(self.num_batches):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            start, stop = process_rows(self.sharding, len(idx))
            local = {k: v[idx[start:stop]] for k, v in self._host.items()}
            batch = {
                k: jax.make_array_from_process_local_data(
                    self.sharding, v, (len(idx), *v.shape[1:])
                )
                for k, v in local.items()
            }
            yield self._finish(batch)
