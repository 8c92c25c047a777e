"""The book's tuning objective (§19.1.1, §19.2): LeNet on Fashion-MNIST, validation error after
``r`` epochs, for a learning rate and a batch size.

The contract every tuner here, and the Optuna engine, calls::

    run_trial(config_overrides, epochs, workdir, *, base="hpo_lenet", max_epochs=None,
              log=None) -> dict

* ``config_overrides``: ``{key: value}`` over the base experiment's config: dotted config keys
  (``"optimizer.learning_rate"``) or the book's names in :data:`SEARCH_KEYS` (``learning_rate``,
  ``batch_size``).
* ``epochs``: the resource level ``r``: the trial is trained until it has ``epochs`` epochs,
  ``1 <= epochs <= max_epochs``.
* ``workdir``: the trial's own folder (created if needed). Multi-fidelity by epochs: when it holds
  checkpoints of this same trial (the same config, up to the epochs) the run RESUMES its latest
  checkpoint and trains only the epochs it lacks -- a promoted trial is continued, never retrained.
  A trial that already has ``epochs`` or more trains nothing and reports its metrics at ``epochs``
  (from its ``metrics.json``). Checkpoints of another config: :class:`~d2ljax.config.ConfigError`.
  The folder is locked while the trial runs (a second process on it: ``WorkdirLocked``).
* ``base``: an experiment name (``"NAME"`` or ``"NAME:VARIANT"`` of ``configs/``) or a Config.
* ``max_epochs``: the most epochs any trial may get (``r_max``; default the base config's
  ``epochs``). The optimizer is built for that horizon whatever ``epochs`` is, so a schedule
  means the same at every rung and every job of the same shape runs one compiled step.
* ``log``: gets the per-epoch lines (default: silent).

It returns ``{"val_error": 1 - val accuracy, "val_accuracy", "val_loss", "train_loss",
"train_accuracy"`` (all at epoch ``epochs``), ``"epochs"``, ``"epochs_trained"`` (epochs this call
trained), ``"seconds"`` (wall clock of this call), ``"diverged"`` (1 if training hit a non-finite
loss: then ``val_error`` is 1.0, the worst)``}``.

Trials that differ only in the learning rate share compiled steps: the constant rate lives in the
optimizer state (``optax.inject_hyperparams``, :mod:`d2ljax.train.optimizer`), and the trials of
one data setting (batch size, subset, seed) in a process train from one and the same loader (the
compiled programs are kept per loader), so the second such trial -- and every promotion -- runs
the programs the first compiled. Another batch size is another shape and compiles its own. The
dataset is loaded once per process.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from d2ljax.config import Config, ConfigError
from d2ljax.data import load_dataset
from d2ljax.experiment import build, check_workdir, checkpoint_epochs, train
from d2ljax.train import TrainingDiverged
from d2ljax.train.lock import WorkdirLock

#: The book's hyperparameter names -> the config keys they set.
SEARCH_KEYS = {"learning_rate": "optimizer.learning_rate", "batch_size": "data.batch_size"}

_EPOCH_LINE = re.compile(r"epoch \d+/\d+ ")


def load_base(base: str | Mapping) -> Config:
    """The config of experiment ``"NAME"`` / ``"NAME:VARIANT"`` (a module of ``configs/``), or a
    copy of the given config."""
    if isinstance(base, Mapping):
        return Config(json.loads(json.dumps(dict(base))))
    name, _, variant = str(base).partition(":")
    try:
        module = importlib.import_module(f"d2ljax.configs.{name}")
    except ModuleNotFoundError:
        raise ConfigError(f"unknown experiment {name!r} (no configs/{name}.py)") from None
    try:
        cfg = module.get_config(variant or None)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    cfg = cfg if isinstance(cfg, Config) else Config(cfg)
    cfg.setdefault("on_nonfinite", "stop")
    return cfg


def trial_config(base: Config, config_overrides: Mapping[str, Any], epochs: int) -> Config:
    """``base`` with the trial's values set (see :data:`SEARCH_KEYS`) and ``epochs``."""
    cfg = base.copy()
    for key, value in config_overrides.items():
        cfg.set(SEARCH_KEYS.get(key, key), value)
    cfg.epochs = int(epochs)
    return cfg


@functools.lru_cache(maxsize=2)
def _load(name: str, kwargs: str) -> dict:
    return load_dataset(name, **json.loads(kwargs))


def _splits(cfg: Config) -> dict:
    return _load(cfg.data.name, json.dumps(dict(cfg.data.get("kwargs", {})), sort_keys=True))


_LOADERS: collections.OrderedDict = collections.OrderedDict()


def _shared_loaders(cfg: Config, exp):
    """``exp`` with the train/val loaders of the last trial that had the same data settings
    (kept for the 4 most recent), so its compiled programs, which are kept per loader, run
    again. A loader's batch order depends only on its seed and the epoch (``fit`` sets it), so
    sharing one changes no trial's batches."""
    key = json.dumps([cfg.to_dict()["data"], cfg.seed, cfg.get("mesh")], sort_keys=True)
    loaders = _LOADERS.pop(key, None) or (exp.train, exp.val)
    _LOADERS[key] = loaders
    while len(_LOADERS) > 4:
        _LOADERS.popitem(last=False)
    return dataclasses.replace(exp, train=loaders[0], val=loaders[1])


def _metrics(history: dict, epochs: int) -> dict:
    i = min(epochs, len(history.get("epoch", []))) - 1
    if i < 0:
        raise ValueError("the trial's history has no epoch")
    out = {
        k: float(history[k][i])
        for k in ("val_accuracy", "val_loss", "train_loss", "train_accuracy")
        if k in history
    }
    if "val_accuracy" not in out:
        raise ConfigError(
            "the tuning objective is the validation error: the experiment needs a validation "
            "split (data.val_split) and a classification loss"
        )
    out["val_error"] = 1.0 - out["val_accuracy"]
    return out


def run_trial(
    config_overrides: Mapping[str, Any],
    epochs: int,
    workdir: str | os.PathLike,
    *,
    base: str | Mapping = "hpo_lenet",
    max_epochs: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train one trial up to ``epochs`` epochs in its ``workdir``, resuming what it has; its
    validation error and metrics (the contract is the module docstring's)."""
    t0 = time.perf_counter()
    base_cfg = load_base(base)
    horizon = int(max_epochs or base_cfg.epochs)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= horizon:
        raise ConfigError(f"a trial's epochs must be an integer in [1, {horizon}], got {epochs!r}")
    cfg = trial_config(base_cfg, config_overrides, horizon)  # the optimizer's horizon: r_max
    wd = Path(workdir)
    have = checkpoint_epochs(wd)
    run_cfg = trial_config(cfg, {}, max(epochs, have[-1] if have else 0))
    check_workdir(run_cfg, wd, resume=True)  # the same trial, or a refusal naming the change
    if have and have[-1] >= epochs and (wd / "metrics.json").is_file():
        history = json.loads((wd / "metrics.json").read_text())
        out = _metrics(history, epochs)
        return {
            **out,
            "epochs": epochs,
            "epochs_trained": 0,
            "diverged": 0,
            "seconds": time.perf_counter() - t0,
        }
    run_cfg = trial_config(cfg, {}, epochs)
    trained = 0

    def count(line: str) -> None:
        nonlocal trained
        trained += bool(_EPOCH_LINE.match(line))
        if log is not None:
            log(line)

    wd.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(wd):
        exp = build(cfg, _splits(cfg))
        exp = dataclasses.replace(_shared_loaders(cfg, exp), config=run_cfg)
        (wd / "config.json").write_text(json.dumps(run_cfg.to_dict(), indent=1))
        try:
            res = train(exp, wd, resume=True, log=count, plot=False, progress=False)
        except TrainingDiverged as e:
            return {
                "val_error": 1.0,
                "epochs": epochs,
                "epochs_trained": trained,
                "diverged": 1,
                "seconds": time.perf_counter() - t0,
                "diverged_at": e.epoch,
            }
    out = _metrics(res.history, epochs)
    return {
        **out,
        "epochs": epochs,
        "epochs_trained": trained,
        "diverged": 0,
        "seconds": time.perf_counter() - t0,
    }


class TrialObjective:
    """``objective(config, epochs, trial_id)`` for a :class:`~d2ljax.tune.Tuner`: trial ``i``
    runs in ``root/trial_{i:03d}`` (see :func:`run_trial` for the rest)."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        base: str | Mapping = "hpo_lenet",
        max_epochs: int | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.root, self.base, self.max_epochs, self.log = Path(root), base, max_epochs, log

    def workdir(self, trial_id: int) -> Path:
        return self.root / f"trial_{trial_id:03d}"

    def history(self, trial_id: int) -> dict[str, list]:
        """Trial ``trial_id``'s per-epoch history (its ``metrics.json``; empty if it has none)."""
        path = self.workdir(trial_id) / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def __call__(self, config: dict, epochs: int, trial_id: int) -> dict:
        return run_trial(
            config,
            epochs,
            self.workdir(trial_id),
            base=self.base,
            max_epochs=self.max_epochs,
            log=self.log,
        )
