"""From a config to a trained model: build the dataset, loaders, model and optimizer, then ``fit``.

This is the one place that ties ``data/``, ``models/`` and ``train/`` together; the CLI and the
notebooks call :func:`run`.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from d2ljax.config import Config, ConfigError
from d2ljax.data import ArrayLoader, image_transform, load_dataset
from d2ljax.tasks import SupervisedTask
from d2ljax.train import EarlyStopping, FitResult, fit, make_optimizer


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
    """Check every name a config gives (model, dataset, loss, optimizer, schedule) before any
    work starts; a bad one is a :class:`ConfigError` that lists the valid names."""
    from d2ljax.data import list_dataset_names
    from d2ljax.models.registry import UnknownModelError, get_constructor
    from d2ljax.train import get_loss

    checks = [
        lambda: get_constructor(cfg.model.name),
        lambda: get_loss(cfg.loss),
        lambda: _optimizer(cfg, 1),
    ]
    for check in checks:
        try:
            check()
        except (UnknownModelError, ValueError) as e:
            raise ConfigError(str(e)) from None
    spc = cfg.get("steps_per_call")
    if spc is not None and (not isinstance(spc, int) or isinstance(spc, bool) or spc < 1):
        raise ConfigError(f"config key `steps_per_call` must be an integer >= 1, got {spc!r}")
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


def _optimizer(cfg: Config, steps_per_epoch: int):
    o = dict(cfg.optimizer)
    kwargs = dict(o.pop("kwargs", {}) or {})
    return make_optimizer(total_steps=max(1, steps_per_epoch * cfg.epochs), **o, **kwargs)


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
    """Everything ``fit`` needs, from a config."""
    validate(cfg)
    if splits is None:
        splits = load_dataset(cfg.data.name, **dict(cfg.data.get("kwargs", {})))
    splits = dict(splits)
    info = splits.pop("_info", None)
    mesh, sharding = _sharding(cfg)
    train, val = _loaders(cfg, splits, "train", cfg.data.get("val_split", "test"), sharding)
    model = build_model(cfg, cfg.seed, info)
    return Experiment(cfg, model, train, val, _optimizer(cfg, len(train)), mesh, info)


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
) -> FitResult:
    """Train the experiment ``cfg`` describes; write metrics, curves and checkpoints to workdir."""
    if cfg.get("kfold"):
        return run_kfold(cfg, workdir, resume=resume, overwrite=overwrite, progress=progress)
    exp = build(cfg)
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        import jax

        if jax.process_index() == 0:  # multi-host: one writer
            (Path(workdir) / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    return train(exp, workdir, resume=resume, overwrite=overwrite, progress=progress)


def train(exp: Experiment, workdir=None, *, quiet: bool = False, **fit_kwargs) -> FitResult:
    """``fit`` with everything the experiment's config says (epochs, loss, seed, checkpoints,
    early stopping, mesh); ``quiet`` silences the per-epoch lines and the curves plot."""
    cfg = exp.config
    if quiet:
        fit_kwargs.update(log=lambda line: None, plot=False)
    if cfg.get("steps_per_call"):
        fit_kwargs.setdefault("steps_per_call", int(cfg.steps_per_call))
    parallel = {**_parallel_kwargs(cfg), **fit_kwargs}
    task = SupervisedTask(exp.model, exp.optimizer, cfg.loss, precision=parallel.pop("precision"))
    return fit(
        task,
        exp.train,
        val_data=exp.val,
        epochs=cfg.epochs,
        seed=cfg.seed,
        workdir=workdir,
        checkpoint_every=cfg.get("checkpoint_every", 1),
        callbacks=_callbacks(cfg),
        mesh=exp.mesh,
        **parallel,
    )


def run_kfold(cfg: Config, workdir=None, *, resume=False, overwrite=False, progress=None):
    """K-fold cross-validation (book §5.7): train K models, report mean train/valid log-RMSE,
    then train on all the data and write the Kaggle submission (``submission.csv``)."""
    from d2ljax.data.tabular import (
        k_fold_indices,
        load_kaggle_house,
        preprocess_house,
        write_submission,
    )

    house = preprocess_house(*load_kaggle_house(**dict(cfg.data.get("kwargs", {}))))
    x, y = house.train_x, house.train_y
    k = int(cfg.kfold)
    rows = []
    wd = Path(workdir) if workdir is not None else None
    opts = dict(resume=resume, overwrite=overwrite, progress=progress)
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
