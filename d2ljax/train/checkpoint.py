"""Checkpoints with orbax-checkpoint: the train state's arrays plus JSON metadata (history, epoch).

Typed PRNG keys are stored as their raw ``key_data`` and re-wrapped on restore, so any NNX model
(dropout streams included) round-trips exactly.

Integrity: every checkpoint's metadata carries a record of its arrays (path, dtype, shape and,
in a one-process run, a BLAKE2b digest of the bytes), written in the same atomic Orbax commit as
the arrays: a checkpoint directory either holds arrays and record or does not exist (a save
killed before the commit leaves only a temporary directory, which counts as no checkpoint).
Restoring checks the record and the arrays against it; a checkpoint with missing or unreadable
parts, no record, or an array that does not match its digest raises :class:`CheckpointDamaged`,
never a raw Orbax error, and :meth:`Checkpointer.restore_newest_intact` falls back to the newest
checkpoint that is intact. Across processes each process holds only its shards, so the record
has no digests and only the structure is checked.

Signals: while a save is handed to Orbax and while a save in flight is waited for, Ctrl-C
(SIGINT) and SIGTERM are held back and raised as soon as that is done (a second one is not held),
so an interrupt never breaks Orbax's commit halfway and the checkpoint being written survives.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

#: The metadata key of the integrity record (kept out of the metadata :meth:`restore` returns).
INTEGRITY = "integrity"
_SCHEME = "blake2b-256"


class CheckpointError(FileExistsError):
    """A checkpoint in a run's directory stops the run: the message says which one and why.

    (A ``FileExistsError``, like a workdir that already has checkpoints: what is on disk is the
    problem, and the command line prints it as ``d2ljax: error: ...``.)"""


class CheckpointDamaged(CheckpointError):
    """Checkpoint ``epoch`` in ``directory`` cannot be trusted; ``reason`` says what is wrong."""

    def __init__(self, directory: Path, epoch: int | None, reason: str):
        self.directory, self.epoch, self.reason = directory, epoch, reason
        what = f"checkpoint {epoch}" if epoch is not None else "a checkpoint"
        super().__init__(f"{what} in {directory} is damaged ({reason})")


class NoIntactCheckpoint(CheckpointError):
    """Every checkpoint in ``directory`` is damaged; ``damaged`` lists them, newest first."""

    def __init__(self, directory: Path, damaged: list[CheckpointDamaged], hint: str = ""):
        self.directory, self.damaged = directory, damaged
        each = "; ".join(f"checkpoint {e.epoch} is damaged ({e.reason})" for e in damaged)
        super().__init__(
            f"no checkpoint in {directory} is intact: {each}" + (f"; {hint}" if hint else "")
        )


class CheckpointMismatch(CheckpointError):
    """Checkpoint ``epoch`` holds other arrays than the state it is restored into (another
    model, width or optimizer): ``differences`` lists them."""

    def __init__(self, directory: Path, epoch: int, differences: list[str]):
        self.directory, self.epoch, self.differences = directory, epoch, differences
        shown = "; ".join(differences[:6]) + ("; ..." if len(differences) > 6 else "")
        super().__init__(
            f"checkpoint {epoch} in {directory} was written for a different state (another "
            f"model, width or optimizer?): {shown}"
        )


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _unwrap_keys(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _abstract(tree):
    def leaf(x):
        if _is_key(x):
            x = jax.random.key_data(x)
        dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
        return jax.ShapeDtypeStruct(np.shape(x), dtype, sharding=getattr(x, "sharding", None))

    return jax.tree.map(leaf, tree)


def _rewrap_keys(template, restored):
    def leaf(t, r):
        return jax.random.wrap_key_data(r, impl=jax.random.key_impl(t)) if _is_key(t) else r

    return jax.tree.map(leaf, template, restored)


def _leaves(tree) -> list[tuple[str, Any]]:
    """``(path, leaf)`` pairs, the path as ``params/l1/kernel/value``: the same for the tree that
    was saved, the tree restored into a template and the raw (nested dict) tree."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [(jax.tree_util.keystr(p, simple=True, separator="/"), x) for p, x in flat]


def _digest(x: np.ndarray) -> str:
    data = np.ascontiguousarray(x).reshape(-1).view(np.uint8)
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def _record(tree, *, digests: bool) -> dict[str, dict]:
    """Path -> ``{"dtype", "shape"[, "digest"]}`` of the leaves of ``tree`` (host arrays when
    ``digests``)."""
    out = {}
    for path, x in _leaves(tree):
        entry = {"dtype": np.dtype(x.dtype).name, "shape": list(np.shape(x))}
        if digests:
            entry["digest"] = _digest(np.asarray(x))
        out[path] = entry
    return out


def _differences(saved: dict[str, dict], expected: dict[str, dict]) -> list[str]:
    out = []
    for path in sorted(set(saved) | set(expected)):
        s, e = saved.get(path), expected.get(path)
        if s is None:
            out.append(f"{path} is not in the checkpoint")
        elif e is None:
            out.append(f"{path} is in the checkpoint but not in this state")
        elif (s["dtype"], list(s["shape"])) != (e["dtype"], list(e["shape"])):
            out.append(
                f"{path} is {s['dtype']}{tuple(s['shape'])} in the checkpoint, "
                f"{e['dtype']}{tuple(e['shape'])} here"
            )
    return out


def _describe(e: BaseException) -> str:
    """One short line for an error Orbax or TensorStore raised while reading."""
    text = (str(e).strip().splitlines() or [""])[0].split(" [tensorstore_spec")[0]
    text = re.sub(r' (at|of) local file "[^"]*"', "", text).split(". See full TensorStore")[0]
    if len(text) > 160:
        text = text[:157] + "..."
    if not text:
        return type(e).__name__
    return text if type(e) is ValueError else f"{type(e).__name__}: {text}"


def _read_store(state_dir: Path) -> None:
    """Read every key of the OCDBT store Orbax wrote in ``state_dir`` (TensorStore, waiting on
    each read), raising what a read raises: a damaged index or data file is found here, before
    Orbax's concurrent reads meet it (TensorStore then also prints the failures of the reads
    still in flight, after the fact, as asyncio tracebacks). Nothing to do for other layouts."""
    if not (state_dir / "manifest.ocdbt").exists():
        return
    try:
        import tensorstore as ts
    except ImportError:
        return
    store = ts.KvStore.open({"driver": "ocdbt", "base": f"file://{state_dir}/"}).result()
    keys = store.list().result()
    for i in range(0, len(keys), 16):  # a few reads in flight, each awaited
        for read in [store.read(key) for key in keys[i : i + 16]]:
            read.result()


def _agree(ok: bool) -> bool:
    """Whether every process says ``ok`` (so that all of them take the same path)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.int32(ok))))


@dataclass
class Restored:
    """What :meth:`Checkpointer.restore_newest_intact` found: the epoch restored (None: no
    intact checkpoint), its arrays and metadata, and the newer checkpoints that are damaged."""

    epoch: int | None
    arrays: Any
    metadata: dict
    damaged: list[CheckpointDamaged]


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM back until the block ends, then raise the first one caught (the
    handler in place before runs). A second signal in the block is raised at once. Only the
    main thread can install handlers; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}

    def restore():
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def hold(signum, frame):
        if caught:  # asked twice: stop holding
            restore()
            signal.raise_signal(signum)
        else:
            caught.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is not None and handler is not signal.SIG_IGN:
            previous[signum] = handler
            signal.signal(signum, hold)
    try:
        yield
    finally:
        restore()
        if caught:
            signal.raise_signal(caught[0])


class Checkpointer:
    """Saves and restores ``(arrays, metadata)`` under ``directory`` keyed by epoch.

    ``arrays`` is any pytree (e.g. :meth:`TrainState.arrays`); ``metadata`` a JSON-able dict
    (its key ``"integrity"`` is reserved). Saving is asynchronous; :meth:`close` (or the context
    manager) waits for it. Restoring verifies the checkpoint (see the module docstring) and
    raises :class:`CheckpointDamaged` or :class:`CheckpointMismatch`.

    ``cleanup``: remove the temporary directories of saves that never committed (a killed run's)
    when opening; only for the one writer of ``directory`` (``fit`` holds the workdir's lock).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        max_to_keep: int | None = 3,
        cleanup: bool = False,
    ):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=cleanup
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def all_epochs(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, epoch: int, arrays: Any, metadata: dict | None = None) -> None:
        with _signals_held():
            self._save(epoch, arrays, metadata)

    def _save(self, epoch, arrays, metadata):
        arrays = _unwrap_keys(arrays)
        one_process = jax.process_count() == 1
        if one_process:  # host copies: what is hashed is what is written
            arrays = jax.device_get(arrays)
        record = {"scheme": _SCHEME if one_process else "none"}
        record["arrays"] = _record(arrays, digests=one_process)
        # Saving runs in the background: the metadata is copied now, so a caller that goes on
        # changing it (fit appends the next epoch to its history) cannot change what is written.
        meta = {**copy.deepcopy(metadata or {}), INTEGRITY: record}
        args = ocp.args.Composite(state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta))
        self._manager.save(int(epoch), args=args, force=True)

    def restore(self, template: Any, epoch: int | None = None) -> tuple[Any, dict]:
        """Restore into the structure (and shardings) of ``template``; latest epoch by default."""
        state, meta = self._restore(template, self._epoch(epoch))
        return _rewrap_keys(template, state), meta

    def restore_raw(self, epoch: int | None = None) -> tuple[Any, dict]:
        """The saved arrays as written (nested dicts of host arrays), without a template: for
        reading part of a run (e.g. only its ``params``) whose full state is not known here."""
        return self._restore(None, self._epoch(epoch))

    def restore_newest_intact(self, template: Any) -> Restored:
        """Restore the newest checkpoint that is not damaged, newest first; the damaged ones
        passed over are listed (and left in place: see :meth:`set_aside`). A
        :class:`CheckpointMismatch` is raised at once: an older checkpoint of the same run
        would not match either."""
        damaged = []
        for epoch in sorted(self.all_epochs(), reverse=True):
            error = None
            try:
                state, meta = self._restore(template, epoch)
            except CheckpointDamaged as e:
                error = e
            if _agree(error is None):
                return Restored(epoch, _rewrap_keys(template, state), meta, damaged)
            damaged.append(error or CheckpointDamaged(self.directory, epoch, "on another process"))
        return Restored(None, None, {}, damaged)

    def set_aside(self, epoch: int) -> Path:
        """Move checkpoint ``epoch`` out of the way (into ``DIRECTORY.damaged/``), so that the
        epoch can be saved again; returns where it went. Call it on every process."""
        target = self.directory.with_name(self.directory.name + ".damaged") / str(epoch)
        if target.exists():
            target = target.with_name(f"{epoch}-{time.strftime('%Y%m%d-%H%M%S')}")
        if jax.process_index() == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            (self.directory / str(epoch)).rename(target)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"d2ljax_set_aside_{epoch}")
        self._manager.reload()
        return target

    def _epoch(self, epoch: int | None) -> int:
        epoch = self.latest_epoch() if epoch is None else epoch
        if epoch is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return int(epoch)

    def _restore(self, template: Any, epoch: int) -> tuple[Any, dict]:
        """The verified ``(state, metadata)`` of ``epoch``: restored into ``template``'s
        structure (keys still raw), or as written when ``template`` is None."""

        def damaged(reason):
            return CheckpointDamaged(self.directory, epoch, reason)

        step = self.directory / str(epoch)
        for part in ("meta/metadata", "state/", "state/_METADATA"):
            if not (step / part).exists():
                raise damaged(f"{part} is missing")
        try:
            meta = self._manager.restore(
                epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            ).meta
        except Exception as e:  # Orbax raises whatever its readers raise
            raise damaged(f"meta/metadata is unreadable: {_describe(e)}") from None
        record = meta.get(INTEGRITY) if isinstance(meta, dict) else None
        if not isinstance(record, dict) or not isinstance(record.get("arrays"), dict):
            raise damaged("meta/metadata has no integrity record")
        saved = record["arrays"]
        abstract = None
        if template is not None:
            abstract = _abstract(template)
            differences = _differences(saved, _record(abstract, digests=False))
            if differences:
                raise CheckpointMismatch(self.directory, epoch, differences)
        try:
            if jax.process_count() == 1:
                _read_store(step / "state")
            state = self._manager.restore(
                epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            ).state
        except Exception as e:
            raise damaged(f"state/ is unreadable: {_describe(e)}") from None
        if record.get("scheme") == _SCHEME and jax.process_count() == 1:
            for path, x in _leaves(jax.device_get(state)):
                entry = saved.get(path)
                if entry is None or entry.get("digest") != _digest(np.asarray(x)):
                    raise damaged(f"{path} does not match its digest")
        meta = {k: v for k, v in meta.items() if k != INTEGRITY}
        return state, meta

    def wait(self) -> None:
        with _signals_held():
            self._manager.wait_until_finished()

    def close(self) -> None:
        with _signals_held():
            self._manager.wait_until_finished()
            self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def save_params(path: str | os.PathLike, tree: Any) -> None:
    """Save a pytree of arrays (e.g. ``nnx.state(model)``) to ``path`` (book §6.6, file I/O)."""
    path = Path(path).absolute()
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(path, _unwrap_keys(tree), force=True)


def load_params(path: str | os.PathLike, template: Any) -> Any:
    """Load what :func:`save_params` wrote, into the structure of ``template``."""
    path = Path(path).absolute()
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(path, _abstract(template))
    return _rewrap_keys(template, restored)
