"""From a config to a trained model: build the dataset, loaders, model and optimizer, then ``fit``.

This is the one place that ties ``data/``, ``models/`` and ``train/`` together; the CLI and the
notebooks call :func:`run`.

A run is checked before it does any work: :func:`validate` checks every value of the config
(:data:`CONFIG_KEYS`: each key's type and range) and every name it gives; :func:`run` checks the
workdir (writable; existing checkpoints are resumed or overwritten only when asked; a resumed run
has the config its checkpoints were written by, up to :data:`RESUME_MAY_CHANGE`); :func:`build`
checks what needs the data (the validation split exists, classification labels lie in the
model's range, the schedule fits the run's steps). ``config.json`` is written only once the run
is accepted.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from d2ljax.config import Config, ConfigError, Key, check_values
from d2ljax.data import ArrayLoader, image_transform, load_dataset
from d2ljax.data.augment import make_augment
from d2ljax.tasks import SupervisedTask
from d2ljax.tasks.augmented import AugmentedTask
from d2ljax.train import EarlyStopping, FitResult, fit, make_optimizer
from d2ljax.train.lock import WorkdirLock
from d2ljax.train.optimizer import make_schedule
from d2ljax.train.steps import PRECISIONS

#: The type and range of every key of an experiment config (``configs/common.py`` lists them).
CONFIG_KEYS: dict[str, Key] = {
    "description": Key(str),
    "model": Key(Mapping),
    "model.name": Key(str),
    "model.kwargs": Key(Mapping),
    "data": Key(Mapping),
    "data.name": Key(str),
    "data.batch_size": Key(int, low=1),
    "data.eval_batch_size": Key(int, low=1, none=True, none_means="data.batch_size"),
    "data.resize": Key(int, low=1, none=True, none_means="the images' own size"),
    "data.on_device": Key(bool),
    "data.drop_remainder": Key(bool),
    "data.val_split": Key(str, none=True, none_means="no validation"),
    "data.limit": Key(int, low=1, none=True, none_means="every example"),
    "data.kwargs": Key(Mapping),
    "data.augment": Key(list, none=True, none_means="no augmentation"),
    "loss": Key(str),
    "optimizer": Key(Mapping),
    "optimizer.name": Key(str),
    "optimizer.learning_rate": Key(float, low=0, low_open=True),
    "optimizer.weight_decay": Key(float, low=0),
    "optimizer.grad_clip": Key(float, low=0, low_open=True, none=True, none_means="no clipping"),
    "optimizer.schedule": Key(Mapping, none=True, none_means="a constant rate"),
    "optimizer.kwargs": Key(Mapping),
    "epochs": Key(int, low=1),
    "seed": Key(int, low=0, high=2**32 - 1),
    "checkpoint_every": Key(int, low=0),
    "early_stopping": Key(Mapping, none=True, none_means="no early stopping"),
    "early_stopping.monitor": Key(str),
    "early_stopping.patience": Key(int, low=0),
    "early_stopping.min_delta": Key(float, low=0),
    "early_stopping.mode": Key(str, choices=("min", "max")),
    "kfold": Key(int, low=0),
    "mesh": Key(Mapping, none=True, none_means="data parallel over every device"),
    "precision": Key(str, choices=tuple(PRECISIONS)),
    "partition": Key(Mapping),
    "partition.rules": Key(list),
    "partition.fsdp_min_size": Key(int, low=0),
    "steps_per_call": Key(int, low=1, none=True, none_means="fit's default"),
    "on_nonfinite": Key(str, choices=("stop", "warn")),
    "rl": Key(Mapping, none=True, none_means="not an RL experiment (experiment_rl.py)"),
    "rl.steps_per_epoch": Key(int, low=1),
    "rl.eval_episodes": Key(int, low=0),
    "task": Key(Mapping, none=True, none_means="supervised learning of `loss`"),
    "task.name": Key(str, choices=("supervised", "gan")),
    "task.latent_shape": Key(list),
    "task.discriminator": Key(Mapping),
    "task.discriminator.name": Key(str),
    "task.discriminator.kwargs": Key(Mapping),
    "task.d_optimizer": Key(Mapping),
    "task.d_optimizer.name": Key(str),
    "task.d_optimizer.learning_rate": Key(float, low=0, low_open=True),
    "task.d_optimizer.kwargs": Key(Mapping),
    "task.preprocess": Key(str, choices=("none", "signed_pixels")),
}

#: Keys a resumed run may change (a key and everything under it): how long it runs, how often it
#: checkpoints and stops, how it reports, and where its arrays live; not what is trained or how.
RESUME_MAY_CHANGE = (
    "description",
    "epochs",
    "checkpoint_every",
    "early_stopping",
    "on_nonfinite",
    "steps_per_call",
    "data.on_device",
    "data.eval_batch_size",
    "mesh",
    "partition",
)

#: Classification losses -> the batch keys their model is called on; its output's last axis is
#: the class axis and ``batch["y"]`` holds the labels.
_CLASSIFIERS = {
    "classification": ("x",),
    "classification_scratch": ("x",),
    "bert_classification": ("tokens", "segments", "valid_len"),
}


def smoke_mode() -> bool:
    """True when ``D2LJAX_SMOKE=1``: notebooks and examples shrink to a few seconds of work."""
    return os.environ.get("D2LJAX_SMOKE", "") not in ("", "0", "false")


@dataclass
class Experiment:
    config: Config
    model: nnx.Module
    train: ArrayLoader
    val: ArrayLoader | None
    optimizer: Any
    mesh: Any = None
    info: dict | None = None


def validate(cfg: Config) -> None:
    """Check a config before any work starts: every value against :data:`CONFIG_KEYS` (its type
    and range), then every name it gives (model, dataset, loss, optimizer, schedule). A bad one
    is a :class:`ConfigError` naming the key, the value and what is valid. What needs the data
    (the validation split, the labels, the schedule's length in steps) is checked by
    :func:`build`."""
    from d2ljax.data import list_dataset_names
    from d2ljax.models.registry import UnknownModelError, get_constructor
    from d2ljax.train import get_loss

    check_values(cfg, CONFIG_KEYS)
    if cfg.get("rl") is not None:  # an environment and an agent, no dataset: experiment_rl.py
        from d2ljax.experiment_rl import validate_rl

        return validate_rl(cfg)
    try:
        make_augment(cfg.data.get("augment"))
    except ValueError as e:
        raise ConfigError(f"config key `data.augment`: {e}") from None
    checks = [
        lambda: get_constructor(cfg.model.name),
        lambda: _optimizer(cfg, None),
    ]
    if _task_name(cfg) == "gan":  # the GAN task has its own losses (loss is not read)
        checks += [
            lambda: get_constructor(cfg.task.discriminator.name),
            lambda: _d_optimizer(cfg, None),
        ]
    else:
        checks.append(lambda: get_loss(cfg.loss))
    for check in checks:
        try:
            check()
        except (UnknownModelError, ValueError) as e:
            raise ConfigError(str(e)) from None
    if cfg.data.name not in list_dataset_names():
        try:
            load_dataset(cfg.data.name)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def build_model(cfg: Config, seed: int = 0, info: dict | None = None) -> nnx.Module:
    """The config's model. ``info`` is what the dataset knows that the model needs (e.g.
    ``vocab_size``); each entry fills the constructor argument of the same name unless the config
    sets it."""
    from d2ljax.models import get_model
    from d2ljax.models.registry import get_constructor

    kwargs = dict(cfg.model.get("kwargs", {}))
    ctor = get_constructor(cfg.model.name)
    params = dict(inspect.signature(ctor.__init__ if inspect.isclass(ctor) else ctor).parameters)
    params.pop("self", None)
    for k, v in (info or {}).items():
        if k in params and k not in kwargs:
            kwargs[k] = v
    rngs = nnx.Rngs(params=seed, dropout=seed + 1)
    if (info or {}).get("pretrained") and "bert" in params and "bert" not in kwargs:
        # the dataset's token ids are those of a `bert_pretrain` run: start from its BERT
        from d2ljax.pretrained import load_pretrained_bert

        kwargs["bert"] = load_pretrained_bert(
            info["pretrained"], kwargs["vocab_size"], dropout=kwargs.get("dropout", 0.1), rngs=rngs
        )
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        bad = sorted(set(kwargs) - set(params))
        if bad:
            valid = [p for p in params if p != "rngs"]
            raise ConfigError(
                f"model {cfg.model.name!r} has no argument(s) {bad}; its arguments: "
                f"{', '.join(valid)}"
            )
    return get_model(cfg.model.name, rngs=rngs, **kwargs)


def _subset(split: dict, limit: int | None) -> dict:
    if not limit:
        return split
    return {k: v[:limit] for k, v in split.items()}


def _loaders(cfg: Config, splits: dict, train_key: str, val_key: str | None, sharding):
    """Train and val loaders. Across several processes (multi-host) each process feeds only its
    rows of every global batch (:class:`d2ljax.parallel.distributed.ProcessLocalLoader`)."""
    import jax

    d = cfg.data
    first = splits[train_key].get("x")
    image = first is not None and first.dtype == np.uint8 and first.ndim == 4
    transform = image_transform(d.get("resize")) if image else None
    if sharding is not None and hasattr(sharding, "mesh"):
        from d2ljax.parallel import check_batch_size

        try:
            check_batch_size(d.batch_size, sharding.mesh, "batch size (data.batch_size)")
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if jax.process_count() > 1:
        from d2ljax.parallel.distributed import ProcessLocalLoader as Loader

        common = dict(transform=transform, sharding=sharding)
    else:
        Loader = ArrayLoader
        common = dict(transform=transform, on_device=d.get("on_device", True), sharding=sharding)
    train = Loader(
        _subset(splits[train_key], d.get("limit")),
        d.batch_size,
        shuffle=True,
        seed=cfg.seed,
        drop_remainder=d.get("drop_remainder", False),
        **common,
    )
    val = None
    # A split without the training keys (Kaggle's unlabelled test set) is not a validation set.
    if val_key is not None and val_key in splits and set(splits[train_key]) <= set(splits[val_key]):
        val = Loader(
            _subset(splits[val_key], d.get("limit")),
            d.get("eval_batch_size") or d.batch_size,
            shuffle=False,
            **common,
        )
    return train, val


def _sharding(cfg: Config | None = None):
    """The config's mesh (``mesh``: a shape dict, default ``{"data": -1}``: data parallel over
    every device of every process) and the batch sharding over its ``data``/``fsdp`` axes;
    ``(None, None)`` on a single device."""
    import jax

    shape = cfg.get("mesh") if cfg is not None else None
    if jax.device_count() == 1 and not shape:
        return None, None
    from d2ljax.parallel import data_sharding, make_mesh

    try:
        mesh = make_mesh(dict(shape) if shape else None)
        return mesh, data_sharding(mesh)
    except ValueError as e:
        raise ConfigError(f"config key `mesh`: {e}") from None


def _optimizer(cfg: Config, steps_per_epoch: int | None):
    """The config's optimizer for ``steps_per_epoch`` train steps an epoch. None (the data is
    not loaded yet): the schedule is checked without its length in steps, which defaults to
    the run's steps and is checked once they are known."""
    o = dict(cfg.optimizer)
    kwargs = dict(o.pop("kwargs", {}) or {})
    total = None if steps_per_epoch is None else max(1, steps_per_epoch * cfg.epochs)
    try:
        make_schedule(o["learning_rate"], o.get("schedule"), total)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config key `optimizer.schedule`: {e}") from None
    return make_optimizer(total_steps=total, **o, **kwargs)


def _task_name(cfg: Config) -> str:
    task = cfg.get("task")
    return (task or {}).get("name", "supervised")


def _d_optimizer(cfg: Config, steps_per_epoch: int | None):
    """A GAN config's discriminator optimizer (``task.d_optimizer``, keys as ``optimizer``'s)."""
    d_cfg = Config(
        {**cfg.to_dict(), "optimizer": {**dict(cfg.optimizer), **dict(cfg.task.d_optimizer)}}
    )
    return _optimizer(d_cfg, steps_per_epoch)


def _gan_task(exp: Experiment, precision: str):
    """The GAN Task of a config with ``task.name = "gan"`` (book ch 20): the config's model is
    the generator, ``optimizer`` its optimizer; ``task.discriminator`` (``name``, ``kwargs``) and
    ``task.d_optimizer`` (``optimizer``'s keys, unset ones taken from it) the other player;
    ``task.latent_shape`` the noise's shape without the batch axis; ``task.preprocess``
    ``"signed_pixels"`` maps images from [0, 1] to [-1, 1] (a tanh generator's range)."""
    from d2ljax.tasks import GANTask

    cfg = exp.config
    if precision != "float32":
        raise ConfigError(
            f"config key `precision`: the GAN task trains in float32 only, got {precision!r}"
        )
    t = cfg.task
    d = dict(t.discriminator)
    d_cfg = Config({**cfg.to_dict(), "model": {"name": d["name"], "kwargs": d.get("kwargs", {})}})
    discriminator = build_model(d_cfg, cfg.seed + 1, exp.info)
    shape = tuple(int(n) for n in t.latent_shape)
    scale = (lambda x: 2.0 * x - 1.0) if t.get("preprocess") == "signed_pixels" else None
    return GANTask(
        exp.model,
        discriminator,
        exp.optimizer,
        _d_optimizer(cfg, len(exp.train)),
        latent_dim=int(np.prod(shape)),
        latent_shape=shape,
        preprocess=scale,
    )


def _parallel_kwargs(cfg: Config) -> dict:
    """``fit``'s precision and partitioning settings from the config (defaults where absent)."""
    part = cfg.get("partition") or {}
    rules = [(pattern, tuple(spec)) for pattern, spec in (part.get("rules") or [])]
    return dict(
        precision=cfg.get("precision") or "float32",
        partition_rules=rules,
        fsdp_min_size=int(part.get("fsdp_min_size", 2**14)),
    )


def build(cfg: Config, splits: dict | None = None) -> Experiment:
    """Everything ``fit`` needs, from a config (checked by :func:`validate` first). With the
    data loaded, a :class:`ConfigError` also says when the validation split does not exist,
    when classification labels lie outside ``[0, number of classes)`` (the model's output size)
    and when the schedule does not fit the run's steps."""
    validate(cfg)
    if splits is None:
        splits = load_dataset(cfg.data.name, **dict(cfg.data.get("kwargs", {})))
    splits = dict(splits)
    info = splits.pop("_info", None)
    val_key = cfg.data.get("val_split", "test")
    if val_key is not None and val_key not in splits:
        raise ConfigError(
            f"config key `data.val_split`: dataset {cfg.data.name!r} has no split {val_key!r}; "
            f"its splits: {', '.join(splits)} (or none: no validation)"
        )
    mesh, sharding = _sharding(cfg)
    train, val = _loaders(cfg, splits, "train", val_key, sharding)
    model = build_model(cfg, cfg.seed, info)
    limit = cfg.data.get("limit")
    used = {"train": _subset(splits["train"], limit)}
    if val is not None:
        used[val_key] = _subset(splits[val_key], limit)
    _check_labels(cfg, model, train.transform, used)
    return Experiment(cfg, model, train, val, _optimizer(cfg, len(train)), mesh, info)


def _num_classes(model: nnx.Module, split: dict, transform, inputs: tuple[str, ...]) -> int | None:
    """The size of the last axis of ``model``'s output on one example of ``split`` (abstract
    evaluation: nothing is computed or compiled); None if the model cannot be evaluated so."""
    import jax

    graphdef, state = nnx.split(model)
    example = {k: jax.ShapeDtypeStruct((1, *np.shape(v)[1:]), v.dtype) for k, v in split.items()}

    def forward(state, batch):
        if transform is not None:
            batch = transform(batch)
        return nnx.merge(graphdef, state)(*(batch[k] for k in inputs))

    try:
        out = jax.eval_shape(forward, state, example)
    except Exception:  # noqa: BLE001 - the check is a courtesy; fit reports a broken model
        return None
    return out.shape[-1] if len(getattr(out, "shape", ())) >= 1 else None


def _check_labels(cfg: Config, model: nnx.Module, transform, splits: dict[str, dict]) -> None:
    """For a classification loss: every label ``y`` of ``splits`` (name -> arrays, the train
    split first) is an integer in ``[0, C)``, C the model's output size; else a
    :class:`ConfigError` naming the offending values."""
    inputs = _CLASSIFIERS.get(cfg.loss) if isinstance(cfg.loss, str) else None
    train = next(iter(splits.values()))
    if inputs is None or "y" not in train or any(k not in train for k in inputs):
        return
    num_classes = _num_classes(model, train, transform, inputs)
    if num_classes is None:
        return
    for name, split in splits.items():
        y = np.asarray(split["y"])
        if not np.issubdtype(y.dtype, np.integer):
            raise ConfigError(
                f"loss {cfg.loss!r} needs integer class labels, but the labels of dataset "
                f"{cfg.data.name!r} (split {name!r}) are {y.dtype}"
            )
        bad = (y < 0) | (y >= num_classes)
        if bad.any():
            values, counts = np.unique(y[bad], return_counts=True)
            shown = ", ".join(
                f"{v} ({c} example{'s' if c > 1 else ''})"
                for v, c in zip(values[:10].tolist(), counts[:10].tolist(), strict=True)
            )
            more = f" and {len(values) - 10} more values" if len(values) > 10 else ""
            raise ConfigError(
                f"the labels of dataset {cfg.data.name!r} (split {name!r}) must be class indices "
                f"in [0, {num_classes}) for the model {cfg.model.name!r} ({num_classes} outputs); "
                f"found {shown}{more}"
            )


def _callbacks(cfg: Config):
    es = cfg.get("early_stopping")
    if es and es.get("patience"):
        return [EarlyStopping(**dict(es))]
    return []


def run(
    cfg: Config,
    workdir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    callbacks: Sequence = (),
) -> FitResult:
    """Train the experiment ``cfg`` describes; write metrics, curves and checkpoints to workdir.

    The config and the workdir are checked first (:func:`validate`, :func:`check_workdir`), then
    the data (:func:`build`); ``config.json`` is written once all of that passed, so a refused
    run leaves the workdir as it was. ``callbacks`` are ``fit``'s, after the config's own (e.g.
    a :class:`~d2ljax.train.tracking.TensorBoardLogger`); K-fold runs take none."""
    if resume and overwrite:
        raise ConfigError(
            "resume and overwrite contradict each other: --resume continues the checkpoints in "
            "the workdir, --overwrite deletes them; give one of them"
        )
    validate(cfg)
    if cfg.get("rl") is not None:
        from d2ljax.experiment_rl import run_rl

        return run_rl(cfg, workdir, resume=resume, overwrite=overwrite, progress=progress)
    if cfg.get("kfold"):
        return run_kfold(cfg, workdir, resume=resume, overwrite=overwrite, progress=progress)
    if workdir is None:
        return train(
            build(cfg), None, resume=resume, overwrite=overwrite, progress=progress,
            callbacks=callbacks,
        )
    with claimed_workdir(cfg, workdir, resume=resume, overwrite=overwrite) as wd:
        exp = build(cfg)
        write_config(cfg, wd)
        return train(
            exp, wd, resume=resume, overwrite=overwrite, progress=progress, callbacks=callbacks
        )


@contextlib.contextmanager
def claimed_workdir(cfg: Config, workdir: str | os.PathLike, *, resume: bool, overwrite: bool):
    """The workdir of a run about to start, checked (:func:`check_workdir`) before even its
    folder is written, then locked (process 0) and checked again now that it is ours. The lock
    covers what the run does inside the block — writing ``config.json``, training (fit's own lock
    nests in it) — so a second run is refused before it can overwrite anything of the first. A
    run refused or failed before it wrote anything leaves not even the folder it created."""
    import jax

    wd = Path(workdir)
    check_workdir(cfg, wd, resume=resume, overwrite=overwrite)
    created = not wd.exists()
    wd.mkdir(parents=True, exist_ok=True)
    lock = WorkdirLock(wd) if jax.process_index() == 0 else contextlib.nullcontext()
    try:
        with lock:
            check_workdir(cfg, wd, resume=resume, overwrite=overwrite)
            yield wd
    except BaseException:
        if created and wd.is_dir() and not any(wd.iterdir()):
            wd.rmdir()
        raise


def write_config(cfg: Config, workdir: Path) -> None:
    """``workdir/config.json``: the run's full config, written by process 0 (multi-host: one
    writer), once the run has been accepted."""
    import jax

    if jax.process_index() == 0:
        (workdir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))


def write_submission(exp: Experiment, result: FitResult, workdir) -> Path | None:
    """A dataset with an unlabelled competition test set says so in its ``_info["submission"]``
    (``x``: the test inputs, ``ids``, ``write(path, ids, outputs)``); the trained model's
    outputs on ``x`` (through the loaders' transform) are then written to
    ``workdir/submission.csv`` (book §14.13) by process 0. Returns the path, or None."""
    import jax

    sub = (exp.info or {}).get("submission")
    if not sub or workdir is None or jax.process_index() != 0:
        return None
    from d2ljax.train import predict

    outputs = predict(result.model, sub["x"], transform=exp.train.transform)
    path = sub["write"](Path(workdir) / "submission.csv", sub["ids"], outputs)
    print(f"wrote {path}", flush=True)
    return path


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


#: The value :func:`config_changes` reports for a key one of the configs does not have.
ABSENT = _Absent()


def checkpoint_epochs(workdir: str | os.PathLike) -> list[int]:
    """The epochs saved under ``workdir/checkpoints`` (Orbax's numbered step folders), sorted;
    read from the folder names only."""
    folder = Path(workdir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())


def config_changes(old: Mapping, new: Mapping) -> list[tuple[str, Any, Any]]:
    """``[(dotted key, old value, new value)]`` for every value that differs between two configs
    (as JSON would store them), except the keys in :data:`RESUME_MAY_CHANGE`. A key one config
    lacks counts as changed unless the other's value is None (the default); its value is then
    :data:`ABSENT`."""

    def flat(node, prefix=""):
        out = {}
        for k, v in node.items():
            path = f"{prefix}{k}"
            if isinstance(v, Mapping) and v:
                out.update(flat(v, path + "."))
            else:
                out[path] = v
        return out

    def may_change(path):
        return any(path == k or path.startswith(k + ".") for k in RESUME_MAY_CHANGE)

    a = flat(json.loads(json.dumps(dict(old))))
    b = flat(json.loads(json.dumps(new.to_dict() if isinstance(new, Config) else dict(new))))
    changes = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, ABSENT), b.get(key, ABSENT)
        if va == vb or may_change(key) or (va is ABSENT and vb is None):
            continue
        if vb is ABSENT and va is None:
            continue
        changes.append((key, va, vb))
    return changes


def check_workdir(
    cfg: Config, workdir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False
) -> None:
    """Refuse a run its workdir cannot take, before any work and without writing anything: a
    workdir that cannot be written; checkpoints there without ``resume`` or ``overwrite``
    (:class:`FileExistsError`); with ``resume``, checkpoints written by a config that differs
    from ``cfg`` in a key outside :data:`RESUME_MAY_CHANGE` (compared with the workdir's
    ``config.json``; a workdir without one is not compared) or with more epochs than ``cfg``
    asks for (a run that already has exactly ``cfg.epochs`` is resumed and trains nothing)."""
    wd = Path(workdir)
    existing = wd
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == wd and not wd.is_dir():
        raise ConfigError(f"workdir {wd} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == wd else f" (its folder {existing} is read-only)"
        raise ConfigError(f"workdir {wd} cannot be written{where}: pick another with --workdir")
    epochs = checkpoint_epochs(wd)
    if not epochs or overwrite:
        return
    if not resume:
        raise FileExistsError(
            f"{wd} already has checkpoints (epochs {epochs}): resume them with resume=True "
            "(--resume), start over with overwrite=True (--overwrite), or pick another workdir"
        )
    stored = wd / "config.json"
    if stored.is_file():
        try:
            old = json.loads(stored.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read {stored} to compare it with this config: {e}") from None
        changes = config_changes(old, cfg)
        if changes:
            listed = "; ".join(f"key {k}: {a!r} -> {b!r}" for k, a, b in changes)
            raise ConfigError(
                f"the checkpoint in {wd} was written by a different config: {listed}. Resume "
                f"with the config it was written by ({stored}), start over with overwrite=True "
                "(--overwrite), or pick another workdir"
            )
    if epochs[-1] > cfg.epochs:
        raise ConfigError(
            f"the run in {wd} already has {epochs[-1]} epochs (its latest checkpoint), more than "
            f"the {cfg.epochs} asked for: resume with more than {epochs[-1]} epochs "
            "(--epochs) to train further, or start over with overwrite=True (--overwrite)"
        )


def train(exp: Experiment, workdir=None, *, quiet: bool = False, **fit_kwargs) -> FitResult:
    """``fit`` with everything the experiment's config says (epochs, loss, seed, checkpoints,
    early stopping, what a non-finite loss does, mesh); ``quiet`` silences the per-epoch lines
    and the curves plot."""
    cfg = exp.config
    extra_callbacks = list(fit_kwargs.pop("callbacks", ()))
    if quiet:
        fit_kwargs.update(log=lambda line: None, plot=False)
    if cfg.get("steps_per_call"):
        fit_kwargs.setdefault("steps_per_call", int(cfg.steps_per_call))
    parallel = {**_parallel_kwargs(cfg), **fit_kwargs}
    precision = parallel.pop("precision")
    if _task_name(cfg) == "gan":
        task = _gan_task(exp, precision)
    else:
        task = SupervisedTask(exp.model, exp.optimizer, cfg.loss, precision=precision)
    augment = make_augment(cfg.data.get("augment"))
    if augment is not None:  # §14.1: on the device, inside the training step only
        task = AugmentedTask(task, augment)
    result = fit(
        task,
        exp.train,
        val_data=exp.val,
        epochs=cfg.epochs,
        seed=cfg.seed,
        workdir=workdir,
        checkpoint_every=cfg.get("checkpoint_every", 1),
        on_nonfinite=cfg.get("on_nonfinite") or "stop",
        callbacks=[*_callbacks(cfg), *extra_callbacks],
        mesh=exp.mesh,
        **parallel,
    )
    write_submission(exp, result, workdir)
    return result


def run_kfold(cfg: Config, workdir=None, *, resume=False, overwrite=False, progress=None):
    """K-fold cross-validation (book §5.7): train K models, report mean train/valid log-RMSE,
    then train on all the data and write the Kaggle submission (``submission.csv``). With a
    workdir, every run's folder (``fold0`` … ``full``) is checked before the first fold trains,
    and the workdir is locked for the whole run."""
    k = int(cfg.kfold)
    wd = Path(workdir) if workdir is not None else None
    opts = dict(resume=resume, overwrite=overwrite, progress=progress)
    if wd is None:
        return _kfold(cfg, k, None, opts)
    import jax

    for sub in [*(f"fold{fold}" for fold in range(k)), "full"]:  # every run's, before the first
        check_workdir(cfg, wd / sub, resume=resume, overwrite=overwrite)
    wd.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(wd) if jax.process_index() == 0 else contextlib.nullcontext():
        return _kfold(cfg, k, wd, opts)


def _kfold(cfg, k, wd, opts):
    from d2ljax.data.tabular import (
        k_fold_indices,
        load_kaggle_house,
        preprocess_house,
        write_submission,
    )

    house = preprocess_house(*load_kaggle_house(**dict(cfg.data.get("kwargs", {}))))
    x, y = house.train_x, house.train_y
    rows = []
    for fold in range(k):
        tr, va = k_fold_indices(len(x), k, fold)
        splits = {"train": {"x": x[tr], "y": y[tr]}, "val": {"x": x[va], "y": y[va]}}
        fold_cfg = cfg.copy()
        fold_cfg.data.val_split = "val"
        exp = build(fold_cfg, splits)
        res = train(exp, None if wd is None else wd / f"fold{fold}", quiet=True, **opts)
        row = {
            "fold": fold,
            "train_log_rmse": math.sqrt(res.history["train_loss"][-1]),
            "val_log_rmse": math.sqrt(res.history["val_loss"][-1]),
        }
        rows.append(row)
        print(
            f"fold {fold + 1}/{k}: train log rmse {row['train_log_rmse']:.4f}, "
            f"valid log rmse {row['val_log_rmse']:.4f}",
            flush=True,
        )
    summary = {
        "folds": rows,
        "train_log_rmse": float(np.mean([r["train_log_rmse"] for r in rows])),
        "val_log_rmse": float(np.mean([r["val_log_rmse"] for r in rows])),
    }
    print(
        f"{k}-fold: avg train log rmse {summary['train_log_rmse']:.4f}, "
        f"avg valid log rmse {summary['val_log_rmse']:.4f}",
        flush=True,
    )
    full_cfg = cfg.copy()
    full_cfg.data.val_split = None
    exp = build(full_cfg, {"train": {"x": x, "y": y}})
    res = train(exp, None if wd is None else wd / "full", quiet=True, **opts)
    res.extra["kfold"] = summary
    if wd is not None:
        preds = np.exp(np.asarray(res.model(house.test_x)))[:, 0]
        write_submission(wd / "submission.csv", house.test_ids, preds)
        (wd / "kfold.json").write_text(json.dumps(summary, indent=1))
        print(f"wrote {wd / 'submission.csv'}", flush=True)
    return res
