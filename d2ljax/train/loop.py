"""``fit(task, data)``: the training loop (the book's ``Trainer``) over a Task's pure steps.

The Task (:mod:`d2ljax.train.task`) says what is trained and how one step goes; ``fit`` loops,
compiles (one train program and one eval program, :mod:`d2ljax.train.programs`), donates, places
the state and the batches on the devices, resumes, checkpoints and logs. Per epoch: one pass of
compiled train steps (state and metric sums donated and kept on the device),
one pass of eval steps, one device-to-host read of the sums, a line or a progress bar, the history
written to ``WORKDIR/metrics.json``, a checkpoint every ``checkpoint_every`` epochs and at the end,
and the callbacks (early stopping). A run interrupted at any point resumes from its last checkpoint
with ``resume=True`` and ends with exactly the parameters of an uninterrupted run.

When things go wrong: a damaged checkpoint is reported and passed over on resume (see
:mod:`d2ljax.train.checkpoint`); a non-finite loss or state stops the run (or warns, with
``on_nonfinite="warn"``) and is never checkpointed; the workdir is locked against a second run
(:mod:`d2ljax.train.lock`); Ctrl-C raises :class:`TrainingInterrupted`, which says where to
resume.

Devices (book chapter 13): by default ``fit`` trains data parallel over every local device (the
batch split over a ``data`` mesh axis, the gradient all-reduced by XLA); a mesh with an ``fsdp``
axis also shards the parameters and optimizer state (FSDP), and ``precision="bfloat16"`` computes
in bfloat16 with float32 master parameters. Across processes (multi-host, see
:mod:`d2ljax.parallel.distributed`) every process runs this same loop; only process 0 prints and
writes ``metrics.json``/``curves.png``, while all of them take part in the checkpoint (Orbax writes
each process's shards and process 0 the metadata).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from d2ljax.config import ConfigError
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
from d2ljax.train import programs
from d2ljax.train.checkpoint import Checkpointer, NoIntactCheckpoint, _agree, _unwrap_keys
from d2ljax.train.lock import WorkdirLock, WorkdirLocked
from d2ljax.train.task import Task

#: Default ``steps_per_call`` of :func:`fit`: compiled steps per host dispatch when the training
#: data is on the device (or the task reads none).
STEPS_PER_CALL = 16


class Callback:
    """Hooks called by :func:`fit`. ``on_epoch_end`` returns True to stop training."""

    def on_train_begin(self, history: dict[str, list]) -> None:
        pass

    def on_epoch_end(self, epoch: int, history: dict[str, list], state: Any) -> bool:
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
    state: Any
    history: dict[str, list] = field(default_factory=dict)
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the K-fold summary
    task: Task | None = None

    @property
    def model(self) -> nnx.Module:
        """The trained model in eval mode (the task's :meth:`~d2ljax.train.Task.model`)."""
        return self.task.model(self.state) if self.task is not None else self.state.model()


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` was interrupted (Ctrl-C, or SIGTERM in a one-process run) after it waited for the
    checkpoint being written and released the workdir.

    ``epoch``: the epoch being trained, from 1 (None: before training started); ``last_checkpoint``:
    the newest checkpoint's epoch (None: none); ``workdir``: the run's workdir (None: none);
    ``signum``: the signal (``signal.SIGINT`` or ``signal.SIGTERM``). ``str()`` is one line."""

    def __init__(self, epoch, last_checkpoint, workdir, signum=signal.SIGINT):
        self.epoch, self.last_checkpoint, self.workdir = epoch, last_checkpoint, workdir
        self.signum = signum
        where = f"in epoch {epoch}" if epoch is not None else "before training started"
        text = f"interrupted {where}"
        if workdir is not None:
            if last_checkpoint is None:
                text += f"; {workdir} has no checkpoint yet"
            else:
                text += f"; the last checkpoint is epoch {last_checkpoint}"
        super().__init__(text)

    def __str__(self) -> str:
        return self.args[0]


class TrainingDiverged(ConfigError):
    """The loss (or the state) became non-finite in ``epoch`` under ``on_nonfinite="stop"``;
    ``last_checkpoint`` is the newest (finite) checkpoint's epoch, or None.

    (A :class:`~d2ljax.config.ConfigError`: the remedy is in the config, e.g. a lower learning
    rate, and the command line prints it as ``d2ljax: error: ...``.)"""

    def __init__(self, message, epoch, last_checkpoint, workdir, history):
        super().__init__(message)
        self.epoch, self.last_checkpoint = epoch, last_checkpoint
        self.workdir, self.history = workdir, history


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread while ``fit`` runs."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While ``fit`` runs in one process on the main thread with SIGTERM at its default (the
    process dies at once), SIGTERM raises :class:`_Terminated` instead, so that ``fit`` ends as
    on Ctrl-C (waits for the checkpoint being written, releases the lock). A second SIGTERM
    kills as before."""
    if (
        jax.process_count() > 1
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise _Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _lock(workdir: Path, log) -> WorkdirLock | None:
    """The workdir's lock: process 0 takes it, and every process fails if it could not."""
    lock, error = None, None
    if jax.process_index() == 0:
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            lock = WorkdirLock(workdir, log).acquire()
        except WorkdirLocked as e:
            error = e
    if not _agree(error is None) and error is None:
        if lock is not None:
            lock.release()
        raise WorkdirLocked(f"{workdir} is in use by another run (see process 0's error)")
    if error is not None:
        raise error
    return lock


@jax.jit
def _all_finite(tree):
    flags = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jax.dtypes.issubdtype(x.dtype, jnp.inexact)
    ]
    return jnp.stack(flags).all() if flags else jnp.asarray(True)


def _state_finite(state) -> bool:
    """Whether every floating array of the state (parameters, model and optimizer state) is
    finite: one reduction on the devices, one scalar read."""
    flag = _all_finite(state.arrays())
    return bool(jax.device_get(flag.addressable_data(0)))


def _nonfinite_message(epoch, what, last_checkpoint, workdir) -> str:
    text = f"the {what} became non-finite in epoch {epoch} (lower the learning rate?)"
    if workdir is not None:
        if last_checkpoint is None:
            text += "; no finite checkpoint was saved"
        else:
            text += f"; the last finite checkpoint is epoch {last_checkpoint}"
    return text


#: A train loss above this (or above ten times its first epoch's) is reported as divergence.
HUGE_LOSS = 1e12


def _divergence_hint(history) -> str | None:
    """A warning when the (finite) train loss looks like divergence: huge, or well above where
    the run started."""
    losses = history.get("train_loss") or []
    if not losses:
        return None
    loss, first = losses[-1], losses[0]
    if abs(loss) > HUGE_LOSS:
        why = "is huge"
    elif len(losses) > 1 and loss > 10 * abs(first):
        why = f"is {loss / abs(first):.0f}x that of epoch 1" if first else "rose from 0"
    else:
        return None
    return (
        f"warning: train_loss {loss:.3g} in epoch {len(losses)} {why}: the run may be "
        "diverging (lower the learning rate?)"
    )


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


def _zeros_like(fn: Callable, *args, placement=None) -> Any:
    shapes = jax.eval_shape(fn, *args)
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


def _scan_source(loader, mesh, placement):
    """``loader`` when ``fit`` can run its epochs as compiled scans over device-resident data
    (an on-device :class:`~d2ljax.data.ArrayLoader` on the devices ``fit`` trains on, in one
    process), else None: then every batch is its own call."""
    if loader is None or jax.process_count() > 1 or not getattr(loader, "on_device", False):
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


def _log_on_primary(log):
    if jax.process_index() == 0:
        return log
    return lambda line: None


@dataclass
class _Placement:
    """Where ``fit`` (or ``evaluate``) puts things: the state's shardings, the metric sums'
    placement and the batch sharding (None on one device)."""

    mesh: Any
    state: Any  # a pytree of shardings, or None (one device: ``sums``)
    sums: Any  # a device or a replicated sharding
    batch: Any
    limit: int

    @classmethod
    def of(cls, state, mesh, rules=(), min_size=2**14):
        if mesh is None:
            return cls(None, None, jax.local_devices()[0], None, 0)
        shardings = state_shardings(state, mesh, rules=tuple(rules), min_size=min_size)
        return cls(
            mesh,
            shardings,
            replicated(mesh),
            data_sharding(mesh),
            in_flight_limit(mesh.devices.flat),
        )

    @property
    def sums_sharding(self):
        return self.sums if self.mesh is not None else None

    def put_state(self, state):
        return put_global(state, self.state if self.state is not None else self.sums)

    def put(self, host_array):
        """A host array of per-step inputs (indices, masks, flags), replicated."""
        return jax.device_put(host_array, self.sums)


def _batch_spec(data):
    """Shapes and dtypes of one batch of ``data`` as a step sees it, ``"mask"`` included (None
    without data or when the loader cannot say)."""
    spec = getattr(data, "element_spec", None)
    if spec is None:
        return None
    rows = jax.tree.leaves(spec)[0].shape[0]
    return {**spec, programs.MASK: jax.ShapeDtypeStruct((rows,), np.float32)}


class _Source:
    """One side of an epoch (train or eval): where its batches come from and the programs that
    consume them. Three kinds: an on-device loader (chunks of gathered steps), a host loader (one
    call per padded batch) and no data at all (a task whose step reads only its state)."""

    def __init__(self, task, data, where: _Placement, *, train: bool, steps=None, length=1):
        self.task, self.data, self.where, self.train = task, data, where, train
        self.scan = _scan_source(data, where.mesh, where.sums) if data is not None else None
        self.free = data is None
        self.steps, self.length = steps, length
        self.rows = getattr(data, "batch_size", None) if jax.process_count() == 1 else None
        sums = where.sums_sharding
        if self.scan is not None or self.free:
            take = None if self.free else self.scan.take
            if train:
                self.program = programs.train_chunk(task, take, where.state, sums, where.batch)
            else:
                self.program = programs.eval_chunk(task, take, sums, where.batch)
        elif train:
            self.program = programs.train_batch(task, where.state, sums)
        else:
            self.program = programs.eval_batch(task, sums)

    def spec(self):
        """Shapes of one training batch as a step sees it (None for a task without data)."""
        return _batch_spec(None if self.free else (self.scan or self.data))

    def __len__(self):
        if self.free:
            return self.steps
        return len(self.data) if hasattr(self.data, "__len__") else 0

    def items(self):
        """The epoch's calls: ``(args, steps)`` pairs, ``args`` what the program takes after the
        state and the sums."""
        put = self.where.put
        if self.free:
            for _, _, valid in programs.epoch_chunks(
                [np.zeros(0, np.int32)] * self.steps, 0, self.length
            ):
                yield (None, None, None, put(valid)), int(valid.sum())
            return
        if self.scan is not None:
            arrays, rows = self.scan.device_arrays(), self.scan.batch_size
            length = self.length if self.train else len(self.scan)
            for idx, mask, valid in programs.epoch_chunks(self.scan.next_indices(), rows, length):
                args = (arrays, put(idx), put(mask))
                yield (args + (put(valid),) if self.train else args), int(valid.sum())
            return
        for batch in self.data:
            if self.rows is not None:
                batch = programs.pad_batch(batch, self.rows)
            if self.where.batch is not None:
                batch = _on_mesh(batch, self.where.batch)
            yield (batch,), 1

    def zeros(self, state, first_args):
        """Zero metric sums of the right structure, on the sums' devices."""
        if self.train:
            fn = self.task.train_step
            batch = self._batch_spec(first_args)
            return _zeros_like(lambda s, b: fn(s, b)[1], state, batch, placement=self.where.sums)
        batch = self._batch_spec(first_args)
        return _zeros_like(self.task.eval_step, state, batch, placement=self.where.sums)

    def _batch_spec(self, first_args):
        if self.free:
            return {}
        if self.scan is not None:
            return _batch_spec(self.scan)
        return first_args[0]


def _setup(
    run,
    task,
    train_data,
    val_data,
    mesh,
    seed,
    steps_per_epoch,
    steps_per_call,
    rules,
    min_size,
    workdir,
    resume,
    overwrite,
    log,
):
    """The state on its devices, the train and eval sources, and the checkpointer (also set on
    ``run``, which closes it) with what it restored. Transfers here are setup
    (``jax.transfer_guard("allow")``); the epochs that follow make none that is not explicit."""
    primary = jax.process_index() == 0
    with jax.transfer_guard("allow"):
        state = task.init(jax.random.key(seed), _batch_spec(train_data))
        # Commit the state (and the metric sums) to their devices: the step's outputs are
        # committed, and uncommitted inputs to the first call would compile the step again.
        where = _Placement.of(state, mesh, rules, min_size)
        state = where.put_state(state)
        train_src = _Source(
            task, train_data, where, train=True, steps=steps_per_epoch, length=steps_per_call
        )
        val_src = None
        if val_data is not None and task.has_eval:
            val_src = _Source(task, val_data, where, train=False)
        history: dict[str, list] = {}
        start_epoch = 0
        ckpt = None
        if workdir is not None:
            ckpt_dir = workdir / "checkpoints"
            if ckpt_dir.exists() and overwrite and not resume and primary:
                shutil.rmtree(ckpt_dir)
            _sync("d2ljax_fit_overwrite")
            ckpt = run.ckpt = Checkpointer(ckpt_dir, cleanup=True)
            state, history, start_epoch = _resume(ckpt, state, workdir, resume, log)
        elif resume:
            raise ValueError("resume=True needs a workdir to find checkpoints in")
    return state, where, train_src, val_src, ckpt, history, start_epoch


def _resume(ckpt: Checkpointer, state, workdir: Path, resume: bool, log):
    """``(state, history, start_epoch)``: restored from the newest intact checkpoint when
    resuming (damaged newer ones are reported and set aside), else as given."""
    latest = ckpt.latest_epoch()
    if latest is None:
        return state, {}, 0
    if not resume:
        raise FileExistsError(
            f"{workdir} already has checkpoints (epochs {ckpt.all_epochs()}): resume them "
            "with resume=True (--resume), start over with overwrite=True (--overwrite), or "
            "pick another workdir"
        )
    found = ckpt.restore_newest_intact(state.arrays())
    if found.epoch is None:
        raise NoIntactCheckpoint(
            ckpt.directory,
            found.damaged,
            "start over with overwrite=True (--overwrite), or pick another workdir",
        )
    for damaged in found.damaged:
        kept = ckpt.set_aside(damaged.epoch)
        log(f"{damaged}; resuming from checkpoint {found.epoch} (the damaged one is now {kept})")
    start_epoch = int(found.metadata.get("epoch", found.epoch))
    log(f"resumed from {ckpt.directory} at epoch {start_epoch}")
    return state.replace_arrays(found.arrays), found.metadata.get("history", {}), start_epoch


def fit(
    task: Task,
    train_data: Iterable[dict] | None = None,
    *,
    epochs: int,
    val_data: Iterable[dict] | None = None,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    workdir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    mesh: jax.sharding.Mesh | dict | str | None = "auto",
    partition_rules: Sequence[tuple[str, tuple]] = (),
    fsdp_min_size: int = 2**14,
    plot: bool = True,
    log: Callable[[str], None] | None = None,
    steps_per_call: int = STEPS_PER_CALL,
    on_nonfinite: str = "stop",
) -> FitResult:
    """Train ``task`` for ``epochs`` epochs and return the trained state and the history.

    Args:
      task: a :class:`~d2ljax.train.Task`, e.g. ``SupervisedTask(model, optimizer, loss)``.
      train_data, val_data: iterables of batches (e.g. :class:`d2ljax.data.ArrayLoader`); an object
        with ``set_epoch(e)`` is told the epoch first, so shuffling depends on (seed, epoch).
        ``train_data=None``: a task that reads no data (its step samples from its own state, e.g.
        an environment); then ``steps_per_epoch`` says how many steps an epoch has.
      seed: the run's key is ``jax.random.key(seed)``; ``task.init`` gets it.
      workdir: where ``metrics.json``, ``curves.png`` and ``checkpoints/`` go (None: nowhere).
      checkpoint_every: save every N epochs (0: only at the end); requires ``workdir``.
      resume: continue from the newest intact checkpoint in ``workdir`` (start fresh if there is
        none). A damaged checkpoint (unreadable, incomplete, or an array that does not match the
        digest saved with it) is reported in one line, moved to ``checkpoints.damaged/`` and
        passed over; if none is intact, :class:`~d2ljax.train.checkpoint.NoIntactCheckpoint`.
      overwrite: delete existing checkpoints in ``workdir`` instead of refusing to start.
      progress: a live progress bar (default: only on a terminal and not in CI); it shows the
        metrics of one log interval ago, so reading them never waits for the device.
      mesh: the device mesh: ``"auto"`` (default: the loader's mesh, else data parallel over all
        local devices), None (one device), a shape dict (``{"data": -1}``, ``{"data": 2, "fsdp":
        4}``) or a ``jax.sharding.Mesh``. The batch is split over the ``data`` and ``fsdp`` axes
        (its size must divide evenly); batches not yet on the mesh are moved there.
      partition_rules: ``[(regex, spec), ...]`` on state paths (``params/.../kernel``) ahead of
        the default rule: with an ``fsdp`` mesh axis, arrays of at least ``fsdp_min_size``
        elements have their largest divisible dimension sharded over it; the rest is replicated.
      steps_per_call: when the data is an on-device :class:`~d2ljax.data.ArrayLoader` (on the
        devices of the mesh, one process) or there is none, run this many train steps per call,
        as one compiled ``lax.scan`` that gathers its own batches (the whole validation pass is
        one call); the results equal one step per call. Other loaders: one call per batch.
      on_nonfinite: what a non-finite train loss, or a non-finite array in the state, at the end
        of an epoch does: ``"stop"`` raises :class:`TrainingDiverged` (naming the epoch and the
        last finite checkpoint) after writing ``metrics.json``; ``"warn"`` logs a warning and
        trains on. Either way a non-finite state is never checkpointed, so the newest checkpoint
        (the one rotation keeps) is finite. A finite but huge or fast-growing train loss logs a
        warning.

    A workdir is locked while ``fit`` uses it (``WORKDIR/.lock``, see :mod:`d2ljax.train.lock`):
    a second run on it raises :class:`~d2ljax.train.lock.WorkdirLocked` naming the holder and
    changes nothing; a stale lock (its run killed) is reported and taken over. Across processes
    process 0 takes it. Ctrl-C (and SIGTERM, in one process) waits for the checkpoint being
    written, releases the lock and raises :class:`TrainingInterrupted` (epoch, last checkpoint).

    Every epoch runs one compiled train program and one eval program: the last, smaller batch is
    padded to the batch size with a ``"mask"`` (the task's losses weight rows by it, so loss,
    gradients and metrics are those of the real rows) and the last chunk of steps with steps that
    do nothing.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if steps_per_call < 1:
        raise ValueError(f"steps_per_call must be >= 1, got {steps_per_call}")
    if train_data is None and (steps_per_epoch is None or steps_per_epoch < 1):
        raise ValueError("a task without training data needs steps_per_epoch >= 1")
    if not isinstance(task, Task):
        raise TypeError(
            f"fit trains a Task (e.g. d2ljax.tasks.SupervisedTask(model, optimizer, loss)), "
            f"got {type(task).__name__}"
        )
    if on_nonfinite not in ("stop", "warn"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'warn', got {on_nonfinite!r}")
    log = _log_on_primary(log or (lambda s: print(s, flush=True)))
    mesh = resolve_mesh(mesh, train_data)
    if mesh is not None and hasattr(train_data, "batch_size"):
        check_batch_size(train_data.batch_size, mesh)
    workdir = Path(workdir) if workdir is not None else None
    lock = _lock(workdir, log) if workdir is not None else None
    run = _Run(workdir)
    try:
        with _sigterm_as_interrupt():
            return _fit(
                run,
                task,
                train_data,
                val_data,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                seed=seed,
                checkpoint_every=checkpoint_every,
                resume=resume,
                overwrite=overwrite,
                callbacks=callbacks,
                progress=progress,
                mesh=mesh,
                partition_rules=partition_rules,
                fsdp_min_size=fsdp_min_size,
                plot=plot,
                log=log,
                steps_per_call=steps_per_call,
                on_nonfinite=on_nonfinite,
            )
    except KeyboardInterrupt as e:
        last = run.close()
        signum = signal.SIGTERM if isinstance(e, _Terminated) else signal.SIGINT
        raise TrainingInterrupted(run.epoch, last, workdir, signum) from None
    finally:
        try:
            run.close()
        finally:
            if lock is not None:
                lock.release()


@dataclass
class _Run:
    """What :func:`fit` needs to end a run however it ends: the checkpointer (closed once: it
    waits for the save in flight) and the epoch being trained (from 1; None before training)."""

    workdir: Path | None
    ckpt: Checkpointer | None = None
    epoch: int | None = None
    _last: int | None = None
    _closed: bool = False

    def close(self) -> int | None:
        """Wait for the checkpoint being written; the newest checkpoint's epoch (None: none)."""
        if not self._closed:
            self._closed = True
            if self.ckpt is not None:
                self.ckpt.wait()
                self._last = self.ckpt.latest_epoch()
                self.ckpt.close()
        return self._last


def _fit(
    run: _Run,
    task,
    train_data,
    val_data,
    *,
    epochs,
    steps_per_epoch,
    seed,
    checkpoint_every,
    resume,
    overwrite,
    callbacks,
    progress,
    mesh,
    partition_rules,
    fsdp_min_size,
    plot,
    log,
    steps_per_call,
    on_nonfinite,
) -> FitResult:
    primary = jax.process_index() == 0
    workdir = run.workdir
    state, where, train_src, val_src, ckpt, history, start_epoch = _setup(
        run,
        task,
        train_data,
        val_data,
        mesh,
        seed,
        steps_per_epoch,
        steps_per_call,
        partition_rules,
        fsdp_min_size,
        workdir,
        resume,
        overwrite,
        log,
    )
    if start_epoch >= epochs:  # resumed from an intact checkpoint of the last epoch
        log(f"{workdir} already has all {epochs} epochs: nothing to train")
    for cb in callbacks:
        cb.on_train_begin(history)

    use_bar = _use_bar(progress) and primary
    stopped = False
    for epoch in range(start_epoch, epochs):
        run.epoch = epoch + 1
        t0 = time.perf_counter()
        if hasattr(train_data, "set_epoch"):
            train_data.set_epoch(epoch)
        bar = _bar(len(train_src), epoch, epochs) if use_bar else None
        totals, pending, n = None, None, 0
        for calls, (args, done) in enumerate(train_src.items(), 1):
            if totals is None:
                totals = train_src.zeros(state, args)
            state, totals = train_src.program(state, totals, *args)
            n += done
            throttle(calls, where.limit, totals)
            if bar is not None:
                bar.update(done)
                if pending is not None:  # the sums of one log interval ago: ready by now
                    bar.set_postfix_str(_format(task.summarize(pending)), refresh=False)
                    pending = None
                if n // bar.log_every > (n - done) // bar.log_every:
                    pending = jax.tree.map(jnp.copy, totals)
        if n == 0:
            raise ValueError("the training data produced no batch")
        logs = {"epoch": epoch + 1}
        logs.update({f"train_{k}": v for k, v in task.summarize(totals).items()})
        if val_src is not None:
            if hasattr(val_data, "set_epoch"):
                val_data.set_epoch(0)
            vtotals = _eval_pass(state, val_src)
            logs.update({f"val_{k}": v for k, v in task.summarize(vtotals).items()})
        if val_data is not None:
            if hasattr(val_data, "set_epoch"):
                val_data.set_epoch(0)
            extra = task.epoch_metrics(state, val_data)
            logs.update({f"val_{k}": v for k, v in extra.items()})
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
        loss_finite = all(
            math.isfinite(v)
            for k, v in logs.items()
            if k.startswith("train_") and k.endswith("loss")
        )
        finite = loss_finite and _state_finite(state)
        if not finite:
            last_ckpt = ckpt.latest_epoch() if ckpt is not None else None
            what = "loss" if not loss_finite else "state (parameters or optimizer state)"
            message = _nonfinite_message(epoch + 1, what, last_ckpt, workdir)
            if on_nonfinite == "stop":
                if workdir is not None and primary:
                    _write_json(workdir / "metrics.json", history)
                raise TrainingDiverged(message, epoch + 1, last_ckpt, workdir, history)
            log(f"warning: {message}; this epoch is not checkpointed")
        elif any(not math.isfinite(v) for k, v in logs.items() if k.endswith("loss")):
            log("warning: the validation loss is not finite; lower the learning rate?")
        elif hint := _divergence_hint(history):
            log(hint)
        stop = any(cb.on_epoch_end(epoch, history, state) for cb in callbacks)
        last = stop or epoch + 1 == epochs
        if workdir is not None:
            if primary:
                _write_json(workdir / "metrics.json", history)
            if finite and (last or (checkpoint_every and (epoch + 1) % checkpoint_every == 0)):
                ckpt.save(
                    epoch + 1,
                    _snapshot(state.arrays()),
                    {"epoch": epoch + 1, "history": history},
                )
        if stop:
            stopped = True
            log(f"early stopping after epoch {epoch + 1}")
            break

    run.close()
    if workdir is not None and plot and history and primary:
        from d2ljax.plot import plot_history

        plot_history(history, workdir / "curves.png")
    return FitResult(state=state, history=history, stopped_early=stopped, task=task)


def _eval_pass(state, src: _Source):
    """Metric sums of one pass of the task's eval step over ``src``."""
    totals = None
    for calls, (args, _) in enumerate(src.items(), 1):
        if totals is None:
            totals = src.zeros(state, args)
        totals = src.program(state, totals, *args)
        throttle(calls, src.where.limit, totals)
    return totals


def _snapshot(arrays):
    """What an (asynchronous) checkpoint save may keep while the next steps donate the state's
    buffers: host copies in one process (PRNG keys as their raw data: a host key array would be
    put back on the device); across processes, device copies of the global arrays (each process
    holds only its shards, and Orbax saves each shard from its owner)."""
    if jax.process_count() == 1:
        return jax.device_get(_unwrap_keys(arrays))
    return jax.tree.map(lambda x: x.copy() if isinstance(x, jax.Array) else x, arrays)


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _bar(total: int, epoch: int, epochs: int):
    from tqdm.auto import tqdm

    total = total or None
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
    The forward pass is compiled once per (architecture, transform, batch size, input shape) and
    kept: the last batch is padded to ``batch_size`` and its padding dropped from the outputs.
    """
    model.eval()
    graphdef, weights = nnx.split(model)

    def build():
        def forward(weights, xb):
            m = nnx.merge(graphdef, weights, copy=True)
            if transform is not None:
                xb = transform({"x": xb})["x"]
            return m(xb)

        return jax.jit(forward)

    forward = programs.cached(("predict", graphdef, transform), build)
    x = np.asarray(x)
    size = min(batch_size, len(x))
    outs = []
    for i in range(0, len(x), size):
        xb = x[i : i + size]
        n = len(xb)
        if n < size:
            xb = np.concatenate([xb, np.zeros((size - n, *xb.shape[1:]), xb.dtype)])
        outs.append(np.asarray(forward(weights, xb))[:n])
    return np.concatenate(outs)


def evaluate(task: Task, state: Any, data: Iterable[dict]) -> dict[str, float]:
    """The task's eval metrics of ``state`` over ``data`` (eval mode), with the compiled eval
    program ``fit`` uses (kept across calls)."""
    leaf = jax.tree.leaves(state)[0]
    devices = getattr(leaf, "sharding", None)
    mesh = devices.mesh if isinstance(devices, jax.sharding.NamedSharding) else None
    where = _Placement.of(state, mesh)
    if mesh is None and devices is not None:
        where.sums = next(iter(devices.device_set))
    if hasattr(data, "set_epoch"):
        data.set_epoch(0)
    src = _Source(task, data, where, train=False)
    metrics = task.summarize(_eval_pass(state, src))
    if hasattr(data, "set_epoch"):
        data.set_epoch(0)
    metrics.update(task.epoch_metrics(state, data))
    return metrics
