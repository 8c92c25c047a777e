"""``fit``: the training loop (the book's ``Trainer``) over the pure, compiled steps.

Per epoch: one pass of compiled train steps (state and metric sums donated and kept on the device),
one pass of eval steps, one device-to-host read of the sums, a line or a progress bar, the history
written to ``WORKDIR/metrics.json``, a checkpoint every ``checkpoint_every`` epochs and at the end,
and the callbacks (early stopping). A run interrupted at any point resumes from its last checkpoint
with ``resume=True`` and ends with exactly the parameters of an uninterrupted run.

Devices (book chapter 13): by default ``fit`` trains data parallel over every local device (the
batch split over a ``data`` mesh axis, the gradient all-reduced by XLA); a mesh with an ``fsdp``
axis also shards the parameters and optimizer state (FSDP), and ``precision="bfloat16"`` computes
in bfloat16 with float32 master parameters. Across processes (multi-host, see
:mod:`d2ljax.parallel.distributed`) every process runs this same loop; only process 0 prints and
writes ``metrics.json``/``curves.png``, while all of them take part in the checkpoint (Orbax writes
each process's shards and process 0 the metadata).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

from d2ljax.parallel.mesh import (
    check_batch_size,
    data_sharding,
    in_flight_limit,
    make_mesh,
    put_global,
    replicated,
    state_shardings,
    throttle,
)
from d2ljax.train.checkpoint import Checkpointer
from d2ljax.train.losses import LossFn
from d2ljax.train.state import TrainState
from d2ljax.train.steps import make_steps, scan_steps, summarize

#: Default ``steps_per_call`` of :func:`fit`: compiled steps per host dispatch when the training
#: data is on the device. LeNet on a 2-core CPU: 4.6 ms/step one step per call, 4.0 ms at 8-32.
STEPS_PER_CALL = 16


class Callback:
    """Hooks called by :func:`fit`. ``on_epoch_end`` returns True to stop training."""

    def on_train_begin(self, history: dict[str, list]) -> None:
        pass

    def on_epoch_end(self, epoch: int, history: dict[str, list], state: TrainState) -> bool:
        return False


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    It decides from the history alone, so a resumed run stops at the same epoch as an
    uninterrupted one.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "min",
    ):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode

    def on_epoch_end(self, epoch, history, state) -> bool:
        if self.monitor not in history:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, but the history has only "
                f"{sorted(history)}"
            )
        values = history[self.monitor]
        sign = 1.0 if self.mode == "min" else -1.0
        best_i = 0
        for i, v in enumerate(values):
            if sign * (values[best_i] - v) > self.min_delta:
                best_i = i
        return len(values) - 1 - best_i >= self.patience


@dataclass
class FitResult:
    state: TrainState
    history: dict[str, list] = field(default_factory=dict)
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the K-fold summary

    @property
    def model(self) -> nnx.Module:
        """The trained model in eval mode."""
        return self.state.model()


def _use_bar(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return sys.stderr.isatty() and not os.environ.get("CI")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def _format(logs: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items())


def _zeros_like_metrics(fn: Callable, *args, placement=None, pick=None) -> Any:
    shapes = jax.eval_shape(fn, *args)
    if pick is not None:
        shapes = pick(shapes)
    return put_global(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes), placement)


def resolve_mesh(mesh, train_data=None):
    """The mesh ``fit`` trains on. ``"auto"``: the mesh of the loader's batch sharding if it has
    one, else a ``data`` mesh over all local devices when there are several, else None (one
    device). A dict is a mesh shape (``{"data": 2, "fsdp": 4}``); a Mesh is used as it is."""
    if isinstance(mesh, str):
        if mesh != "auto":
            raise ValueError(f"mesh must be 'auto', None, a shape dict or a Mesh, got {mesh!r}")
        sharding = getattr(train_data, "sharding", None)
        if isinstance(sharding, jax.sharding.NamedSharding):
            return sharding.mesh
        if jax.process_count() == 1 and jax.local_device_count() > 1:
            return make_mesh({"data": -1}, devices=jax.local_devices())
        return None
    if isinstance(mesh, dict):
        return make_mesh(mesh)
    return mesh


def _on_mesh(batch, sharding):
    """Move a batch that is not already laid out as ``sharding`` (e.g. a loader that puts batches
    on one device) onto the mesh."""
    leaf = jax.tree.leaves(batch)[0]
    current = getattr(leaf, "sharding", None)
    if current is not None and current.is_equivalent_to(sharding, leaf.ndim):
        return batch
    check_batch_size(leaf.shape[0], sharding.mesh, "batch")
    return jax.device_put(batch, sharding)


def _scan_source(loader, steps_per_call: int, mesh, placement):
    """``loader`` when ``fit`` can run its epochs as compiled scans over device-resident data
    (an on-device :class:`~d2ljax.data.ArrayLoader` on the devices ``fit`` trains on, in one
    process), else None: then every batch is its own call."""
    if steps_per_call <= 1 or jax.process_count() > 1 or not getattr(loader, "on_device", False):
        return None
    if not all(hasattr(loader, a) for a in ("take", "device_arrays", "next_indices")):
        return None
    sharding = getattr(loader, "sharding", None)
    if mesh is None:
        same = isinstance(sharding, jax.sharding.SingleDeviceSharding) and (
            sharding.device_set == {placement}
        )
    else:
        same = isinstance(sharding, jax.sharding.NamedSharding) and sharding.mesh == mesh
    return loader if same else None


def _chunks(loader, length: int | None):
    """An epoch's batch indices as ``[steps, batch]`` arrays: runs of ``length`` full batches
    (None: all of them in one), the leftover full batches, then the last, smaller batch."""
    indices = loader.next_indices()
    full = [i for i in indices if len(i) == loader.batch_size]
    rest = indices[len(full) :]
    length = length or max(len(full), 1)
    cut = len(full) - len(full) % length
    out = [np.stack(full[i : i + length]) for i in range(0, cut, length)]
    if cut < len(full):
        out.append(np.stack(full[cut:]))
    return out + [idx[None] for idx in rest]


def _log_on_primary(log):
    if jax.process_index() == 0:
        return log
    return lambda line: None


def fit(
    model: nnx.Module,
    train_data: Iterable[dict],
    *,
    optimizer: optax.GradientTransformation,
    epochs: int,
    val_data: Iterable[dict] | None = None,
    loss_fn: str | LossFn = "classification",
    seed: int = 0,
    workdir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    mesh: jax.sharding.Mesh | dict | str | None = "auto",
    precision: str = "float32",
    partition_rules: Sequence[tuple[str, tuple]] = (),
    fsdp_min_size: int = 2**14,
    plot: bool = True,
    log: Callable[[str], None] | None = None,
    steps_per_call: int = STEPS_PER_CALL,
) -> FitResult:
    """Train ``model`` for ``epochs`` epochs and return the trained state and the history.

    Args:
      model: any Flax NNX module; ``loss_fn(model, batch)`` defines what it is trained on.
      train_data, val_data: iterables of batches (e.g. :class:`d2ljax.data.ArrayLoader`); an object
        with ``set_epoch(e)`` is told the epoch first, so shuffling depends on (seed, epoch).
      optimizer: an optax transformation (gradient clipping and weight decay belong in its chain,
        see :func:`d2ljax.train.make_optimizer`).
      loss_fn: a registered loss name or ``fn(model, batch) -> (loss, metric_sums)``.
      workdir: where ``metrics.json``, ``curves.png`` and ``checkpoints/`` go (None: nowhere).
      checkpoint_every: save every N epochs (0: only at the end); requires ``workdir``.
      resume: continue from the latest checkpoint in ``workdir`` (start fresh if there is none).
      overwrite: delete existing checkpoints in ``workdir`` instead of refusing to start.
      progress: a live progress bar (default: only on a terminal and not in CI).
      mesh: the device mesh: ``"auto"`` (default: the loader's mesh, else data parallel over all
        local devices), None (one device), a shape dict (``{"data": -1}``, ``{"data": 2, "fsdp":
        4}``) or a ``jax.sharding.Mesh``. The batch is split over the ``data`` and ``fsdp`` axes
        (its size must divide evenly); batches not yet on the mesh are moved there.
      precision: ``"float32"`` or ``"bfloat16"`` (bf16 compute, float32 master params and loss).
      partition_rules: ``[(regex, spec), ...]`` on state paths (``params/.../kernel``) ahead of
        the default rule: with an ``fsdp`` mesh axis, arrays of at least ``fsdp_min_size``
        elements have their largest divisible dimension sharded over it; the rest is replicated.
      steps_per_call: when the data is an on-device :class:`~d2ljax.data.ArrayLoader` (on the
        devices of the mesh, one process), run this many train steps per call, as one compiled
        ``lax.scan`` that gathers its own batches (the whole validation pass is one call);
        the results equal one step per call. 1 (or any other loader): one call per batch.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if steps_per_call < 1:
        raise ValueError(f"steps_per_call must be >= 1, got {steps_per_call}")
    log = _log_on_primary(log or (lambda s: print(s, flush=True)))
    primary = jax.process_index() == 0
    state = TrainState.create(model, optimizer, seed=seed)
    mesh = resolve_mesh(mesh, train_data)
    # Commit the state (and below, the metric sums) to their devices: the step's outputs are
    # committed, and uncommitted inputs to the first call would compile the step a second time.
    if mesh is not None:
        placement = replicated(mesh)
        batch_placement = data_sharding(mesh)
        if hasattr(train_data, "batch_size"):
            check_batch_size(train_data.batch_size, mesh)
        shardings = state_shardings(
            state, mesh, rules=tuple(partition_rules), min_size=fsdp_min_size
        )
    else:
        placement = jax.local_devices()[0]
        batch_placement = None
        shardings = None
    limit = in_flight_limit(mesh.devices.flat) if mesh is not None else 0
    state = put_global(state, shardings if shardings is not None else placement)
    steps = make_steps(
        loss_fn,
        precision=precision,
        state_sharding=shardings,
        metrics_sharding=placement if mesh is not None else None,
    )
    train_src = _scan_source(train_data, steps_per_call, mesh, placement)
    val_src = _scan_source(val_data, steps_per_call, mesh, placement)
    many = {
        src: scan_steps(steps, src.take, batch_placement)
        for src in (train_src, val_src)
        if src is not None
    }

    history: dict[str, list] = {}
    start_epoch = 0
    ckpt = None
    workdir = Path(workdir) if workdir is not None else None
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        ckpt_dir = workdir / "checkpoints"
        if ckpt_dir.exists() and overwrite and not resume and primary:
            shutil.rmtree(ckpt_dir)
        _sync("d2ljax_fit_overwrite")
        ckpt = Checkpointer(ckpt_dir)
        latest = ckpt.latest_epoch()
        if latest is not None and not resume:
            ckpt.close()
            raise FileExistsError(
                f"{workdir} already has checkpoints (epochs {ckpt.all_epochs()}): resume them with "
                "resume=True (--resume), start over with overwrite=True (--overwrite), or pick "
                "another workdir"
            )
        if latest is not None:
            arrays, meta = ckpt.restore(state.arrays())
            state = state.replace_arrays(arrays)
            history = meta.get("history", {})
            start_epoch = int(meta.get("epoch", latest))
            log(f"resumed from {ckpt_dir} at epoch {start_epoch}")
    elif resume:
        raise ValueError("resume=True needs a workdir to find checkpoints in")

    for cb in callbacks:
        cb.on_train_begin(history)

    if train_src is not None:  # an item: [steps, batch] example indices, one scanned call
        train_many = many[train_src][0]

        def train_call(state, totals, idx):
            return (*train_many(state, totals, train_src.device_arrays(), idx), len(idx))
    else:  # an item: one batch, one call

        def train_call(state, totals, batch):
            return (*steps.train(state, totals, batch), 1)

    use_bar = _use_bar(progress) and primary
    stopped = False
    totals = None
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            bar = _bar(train_data, epoch, epochs) if use_bar else None
            totals = None
            n = 0
            if train_src is not None:
                items = _chunks(train_src, steps_per_call)
            else:
                items = (
                    b if batch_placement is None else _on_mesh(b, batch_placement)
                    for b in train_data
                )
            for calls, item in enumerate(items, 1):
                if totals is None:
                    spec = item if train_src is None else train_src.element_spec
                    totals = _zeros_like_metrics(
                        steps.train, state, None, spec, placement=placement, pick=lambda o: o[1]
                    )
                state, totals, done = train_call(state, totals, item)
                n += done
                throttle(calls, limit, totals)
                if bar is not None:
                    bar.update(done)
                    if n // bar.log_every > (n - done) // bar.log_every:
                        bar.set_postfix_str(_format(summarize(totals)), refresh=False)
            if n == 0:
                raise ValueError("the training data produced no batch")
            logs = {"epoch": epoch + 1}
            logs.update({f"train_{k}": v for k, v in summarize(totals).items()})
            if val_data is not None:
                if hasattr(val_data, "set_epoch"):
                    val_data.set_epoch(0)
                vtotals = _eval_pass(
                    state, val_data, val_src, steps, many, placement, batch_placement, limit
                )
                logs.update({f"val_{k}": v for k, v in summarize(vtotals).items()})
            logs["epoch_time"] = time.perf_counter() - t0
            if bar is not None:
                bar.set_postfix_str(_format({k: v for k, v in logs.items() if k != "epoch"}))
                bar.close()
            else:
                log(
                    f"epoch {epoch + 1}/{epochs} "
                    + _format({k: v for k, v in logs.items() if k != "epoch"})
                )
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            if any(not math.isfinite(v) for k, v in logs.items() if k.endswith("loss")):
                log("warning: the loss is not finite; lower the learning rate?")
            stop = any(cb.on_epoch_end(epoch, history, state) for cb in callbacks)
            last = stop or epoch + 1 == epochs
            if workdir is not None:
                if primary:
                    _write_json(workdir / "metrics.json", history)
                if last or (checkpoint_every and (epoch + 1) % checkpoint_every == 0):
                    ckpt.save(
                        epoch + 1,
                        _snapshot(state.arrays()),
                        {"epoch": epoch + 1, "history": history},
                    )
            if stop:
                stopped = True
                log(f"early stopping after epoch {epoch + 1}")
                break
    finally:
        if ckpt is not None:
            ckpt.close()

    if workdir is not None and plot and history and primary:
        from d2ljax.plot import plot_history

        plot_history(history, workdir / "curves.png")
    return FitResult(state=state, history=history, stopped_early=stopped)


def _eval_pass(state, data, src, steps, many, placement, batch_placement, limit):
    """Metric sums of one pass over ``data``: one compiled scan when ``src`` (its on-device
    loader) is given, else one call per batch."""
    if src is not None:
        arrays, eval_many = src.device_arrays(), many[src][1]
        totals = _zeros_like_metrics(steps.eval, state, None, src.element_spec, placement=placement)
        for calls, idx in enumerate(_chunks(src, None), 1):
            totals = eval_many(state, totals, arrays, idx)
            throttle(calls, limit, totals)
        return totals
    totals = None
    for i, batch in enumerate(data, 1):
        if batch_placement is not None:
            batch = _on_mesh(batch, batch_placement)
        if totals is None:
            totals = _zeros_like_metrics(steps.eval, state, None, batch, placement=placement)
        totals = steps.eval(state, totals, batch)
        throttle(i, limit, totals)
    return totals


def _snapshot(arrays):
    """What an (asynchronous) checkpoint save may keep while the next steps donate the state's
    buffers: host copies in one process; across processes, device copies of the global arrays
    (each process holds only its shards, and Orbax saves each shard from its owner)."""
    if jax.process_count() == 1:
        return jax.device_get(arrays)
    return jax.tree.map(lambda x: x.copy() if isinstance(x, jax.Array) else x, arrays)


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _bar(loader, epoch: int, epochs: int):
    from tqdm.auto import tqdm

    total = len(loader) if hasattr(loader, "__len__") else None
    wide = shutil.get_terminal_size((0, 0)).columns >= 40  # a pty may report 0 columns
    bar = tqdm(
        total=total,
        desc=f"epoch {epoch + 1}/{epochs}",
        leave=True,
        dynamic_ncols=wide,
        ncols=None if wide else 100,
    )
    bar.log_every = max(1, (total or 100) // 20)
    return bar


def predict(model: nnx.Module, x, *, transform: Callable | None = None, batch_size: int = 1024):
    """The model's outputs on raw inputs ``x`` (NumPy or jax), in eval mode, batch by batch.

    ``transform`` is the loader's (e.g. ``image_transform()`` to turn uint8 images into floats).
    """
    import numpy as np

    model.eval()
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, xb):
        m = nnx.merge(graphdef, state, copy=True)
        if transform is not None:
            xb = transform({"x": xb})["x"]
        return m(xb)

    outs = [forward(state, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate([np.asarray(o) for o in outs])


def evaluate(
    state: TrainState,
    data: Iterable[dict],
    loss_fn: str | LossFn = "classification",
    *,
    precision: str = "float32",
) -> dict[str, float]:
    """Average metrics of the eval-mode model over ``data``."""
    steps = make_steps(loss_fn, precision=precision)
    limit = in_flight_limit(state.step.sharding.device_set)
    totals = None
    for i, batch in enumerate(data, 1):
        if totals is None:
            totals = _zeros_like_metrics(
                steps.eval, state, None, batch, placement=state.step.sharding
            )
        totals = steps.eval(state, totals, batch)
        throttle(i, limit, totals)
    return summarize(totals)
