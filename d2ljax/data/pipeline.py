"""The input pipeline: in-memory arrays -> shuffled, batched, transformed, sharded device batches.

One class, :class:`ArrayLoader`, serves every dataset of the course that fits in host memory
(Fashion-MNIST, the time machine, house prices, fra-eng, ...). A dataset is a dict of NumPy arrays
that share their leading (example) axis; a batch is the same dict with ``batch_size`` rows.

* Shuffling is a pure function of ``(seed, epoch)``, so a run that resumes at epoch 3 sees exactly
  the batches an uninterrupted run sees at epoch 3.
* ``on_device=True`` copies the arrays to the device(s) once; every batch is then gathered,
  converted and sharded by one compiled function, and only the batch's indices cross from the
  host per step. Use it for small datasets (Fashion-MNIST is 47 MB as uint8).
* Otherwise batches are gathered on the host and moved to the device by a background thread
  that keeps ``prefetch`` batches in flight.
* ``transform`` runs on the device inside the same compiled function (e.g. uint8 -> float32 / 255
  and an optional resize, see :func:`image_transform`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

Batch = dict[str, jax.Array]


def image_transform(
    resize: int | tuple[int, int] | None = None, *, key: str = "x", method: str = "bilinear"
) -> Callable[[Batch], Batch]:
    """uint8 NHWC images -> float32 in [0, 1], optionally resized (the book's ``Resize`` and
    ``ToTensor``)."""
    if isinstance(resize, int):
        resize = (resize, resize)

    def transform(batch: Batch) -> Batch:
        x_BHWC = batch[key].astype(jnp.float32) / 255.0
        if resize is not None and tuple(x_BHWC.shape[1:3]) != tuple(resize):
            b, _, _, c = x_BHWC.shape
            x_BHWC = jax.image.resize(x_BHWC, (b, *resize, c), method=method)
        return {**batch, key: x_BHWC}

    return transform


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the examples in ``epoch``: a function of ``(seed, epoch)`` only."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class ArrayLoader:
    """Minibatches over a dict of equally long arrays.

    Args:
      data: ``{name: array}``, all arrays with the same leading dimension.
      batch_size: global batch size (split over the devices of ``sharding``).
      shuffle: reshuffle every epoch, with a permutation drawn from ``(seed, epoch)``.
      seed: the run's seed.
      drop_remainder: drop the last, smaller batch.
      transform: a jax-traceable ``batch -> batch`` applied on the device.
      on_device: keep the whole dataset on the device(s) and gather batches there.
      sharding: where batches go: a ``jax.sharding.Sharding`` for the leading axis (e.g.
        ``NamedSharding(mesh, P('data'))``). Default: the first local device.
      prefetch: batches kept in flight by the host-side producer thread (host mode only).
    """

    def __init__(
        self,
        data: Mapping[str, np.ndarray],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_remainder: bool = False,
        transform: Callable[[Batch], Batch] | None = None,
        on_device: bool = False,
        sharding: jax.sharding.Sharding | None = None,
        prefetch: int = 2,
    ):
        if not data:
            raise ValueError("ArrayLoader needs at least one array")
        sizes = {k: len(v) for k, v in data.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"all arrays must have the same number of examples, got {sizes}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.num_examples = next(iter(sizes.values()))
        if self.num_examples == 0:
            raise ValueError("the dataset is empty")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_remainder = drop_remainder
        self.transform = transform
        self.on_device = on_device
        self.prefetch = max(int(prefetch), 0)
        self.sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        self.epoch = 0
        self._check_divisible(self.batch_size, "batch_size")
        remainder = self.num_examples % self.batch_size
        if remainder and not drop_remainder:
            self._check_divisible(remainder, "the last batch", hint=True)
        if self.num_batches == 0:
            raise ValueError(
                f"batch_size {batch_size} > {self.num_examples} examples with "
                "drop_remainder=True leaves no batch"
            )
        self._host = {k: np.asarray(v) for k, v in data.items()}
        self._device = None
        self._gather = jax.jit(self.take, out_shardings=self.sharding)
        self._finish = jax.jit(self._finish_impl, out_shardings=self.sharding)

    # -- sizes -------------------------------------------------------------------------------
    def _num_shards(self) -> int:
        spec = getattr(self.sharding, "spec", None)
        if spec is None or len(spec) == 0 or spec[0] is None:
            return 1
        mesh = self.sharding.mesh
        names = spec[0] if isinstance(spec[0], tuple) else (spec[0],)
        return int(np.prod([mesh.shape[n] for n in names]))

    def _check_divisible(self, size: int, what: str, hint: bool = False) -> None:
        shards = self._num_shards()
        if size % shards:
            extra = " (use drop_remainder=True or a dataset size that divides)" if hint else ""
            raise ValueError(
                f"{what} ({size}) must be divisible by the {shards} devices the batch "
                f"is sharded over{extra}"
            )

    @property
    def num_batches(self) -> int:
        full, rem = divmod(self.num_examples, self.batch_size)
        return full + (1 if rem and not self.drop_remainder else 0)

    def __len__(self) -> int:
        return self.num_batches

    @property
    def element_spec(self) -> dict[str, jax.ShapeDtypeStruct]:
        """Shapes and dtypes of one full batch after ``transform``."""
        spec = {
            k: jax.ShapeDtypeStruct((self.batch_size, *v.shape[1:]), v.dtype)
            for k, v in self._host.items()
        }
        return jax.eval_shape(self._finish_impl, spec)

    # -- batches -------------------------------------------------------------------------------
    def _finish_impl(self, batch):
        return self.transform(batch) if self.transform is not None else batch

    def take(self, data: Mapping[str, jax.Array], idx: jax.Array) -> Batch:
        """Rows ``idx`` of ``data`` (:meth:`device_arrays`) after ``transform``: traceable, so a
        compiled loop over many steps can gather its own batches (see ``fit``'s
        ``steps_per_call``); every on-device batch is this, compiled."""
        return self._finish_impl(jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data))

    def device_arrays(self) -> dict[str, jax.Array]:
        """The whole dataset on the device(s), replicated over the batch sharding's devices
        (copied there once)."""
        if self._device is None:
            self._device = jax.device_put(self._host, _replicated_like(self.sharding))
        return self._device

    def next_indices(self) -> list[np.ndarray]:
        """The example indices of each batch of the next epoch; advances the epoch as ``iter``
        does."""
        epoch = self.epoch
        self.epoch += 1
        return self._index_batches(self._order(epoch))

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce the batches of ``epoch``."""
        self.epoch = int(epoch)

    def _order(self, epoch: int) -> np.ndarray:
        if self.shuffle:
            return epoch_permutation(self.num_examples, self.seed, epoch).astype(np.int32)
        return np.arange(self.num_examples, dtype=np.int32)

    def _index_batches(self, order: np.ndarray) -> list[np.ndarray]:
        return [
            order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(self.num_batches)
        ]

    def __iter__(self) -> Iterator[Batch]:
        indices = self.next_indices()
        if self.on_device:
            return self._device_batches(indices)
        return self._host_batches(indices)

    def _device_batches(self, indices):
        data = self.device_arrays()
        for idx in indices:
            yield self._gather(data, idx)

    def _host_batch(self, idx):
        batch = {k: v[idx] for k, v in self._host.items()}
        return self._finish(jax.device_put(batch, self.sharding))

    def _host_batches(self, indices):
        if self.prefetch == 0:
            for idx in indices:
                yield self._host_batch(idx)
            return
        yield from _prefetched(map(self._host_batch, indices), self.prefetch)


def _replicated_like(sharding: jax.sharding.Sharding) -> jax.sharding.Sharding:
    if isinstance(sharding, jax.sharding.NamedSharding):
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    return sharding


_DONE = object()


def _prefetched(iterator, size: int):
    """Run ``iterator`` in a daemon thread, ``size`` items ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def produce():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
