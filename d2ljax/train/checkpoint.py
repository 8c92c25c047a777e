"""Checkpoints with orbax-checkpoint: the train state's arrays plus JSON metadata (history, epoch).

Typed PRNG keys are stored as their raw ``key_data`` and re-wrapped on restore, so any NNX model
(dropout streams included) round-trips exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _unwrap_keys(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _abstract(tree):
    def leaf(x):
        if _is_key(x):
            x = jax.random.key_data(x)
        return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=getattr(x, "sharding", None))

    return jax.tree.map(leaf, tree)


def _rewrap_keys(template, restored):
    def leaf(t, r):
        return jax.random.wrap_key_data(r, impl=jax.random.key_impl(t)) if _is_key(t) else r

    return jax.tree.map(leaf, template, restored)


class Checkpointer:
    """Saves and restores ``(arrays, metadata)`` under ``directory`` keyed by epoch.

    ``arrays`` is any pytree (e.g. :meth:`TrainState.arrays`); ``metadata`` a JSON-able dict.
    Saving is asynchronous; :meth:`close` (or the context manager) waits for it.
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int | None = 3):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def all_epochs(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, epoch: int, arrays: Any, metadata: dict | None = None) -> None:
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(_unwrap_keys(arrays)),
            meta=ocp.args.JsonSave(metadata or {}),
        )
        self._manager.save(int(epoch), args=args, force=True)

    def restore(self, template: Any, epoch: int | None = None) -> tuple[Any, dict]:
        """Restore into the structure (and shardings) of ``template``; latest epoch by default."""
        restored = self._restore(_abstract(template), epoch)
        return _rewrap_keys(template, restored.state), dict(restored.meta or {})

    def restore_raw(self, epoch: int | None = None) -> tuple[Any, dict]:
        """The saved arrays as written (nested dicts of host arrays), without a template: for
        reading part of a run (e.g. only its ``params``) whose full state is not known here."""
        restored = self._restore(None, epoch)
        return restored.state, dict(restored.meta or {})

    def _restore(self, abstract_state: Any, epoch: int | None):
        epoch = self.latest_epoch() if epoch is None else epoch
        if epoch is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
        )
        return self._manager.restore(int(epoch), args=args)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
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
