"""The real trial engine (book ch 19 on Optuna, where the book uses syne-tune): ``d2ljax tune``.

One Optuna *study* per experiment, kept in a storage (default ``sqlite:///WORKDIR/study.db``)
so that it can be resumed and shared by several worker processes::

    tune("hpo_lenet:cpu", trials=20, sampler="tpe", pruner="asha", workdir="runs/tune/hpo_lenet")

* The experiment's config module gives the base config (``get_config(variant)``), the search
  space (``SEARCH_SPACE``: ``{name: d2ljax.tune domain}``, a name being one of
  :data:`~d2ljax.tune.objective.SEARCH_KEYS` or a dotted config key) and optionally the
  configuration tried first (``INITIAL_CONFIG``, enqueued when the study is new).
* A trial is the book's objective (:func:`~d2ljax.tune.objective.run_trial`) in its own folder
  ``WORKDIR/trial_NNN``, trained one epoch at a time up to ``max_epochs``: after each epoch its
  validation error is reported to Optuna (``trial.report(val_error, epoch)``) and the pruner
  may stop it (a PRUNED trial). Each epoch resumes the trial's own checkpoint, so the result is
  that of one uninterrupted run (``fit``'s resume is exact); what it costs is one model build
  and one checkpoint restore per epoch. A trial's value is its validation error at its last
  epoch; a diverged trial (non-finite loss) completes with error 1.0.
* Samplers: ``tpe`` (Optuna's TPESampler, with ``constant_liar`` for parallel workers) and
  ``random``. Pruners: ``asha`` (SuccessiveHalvingPruner: rungs ``r_min η^k``), ``hyperband``
  (HyperbandPruner up to ``max_epochs``), ``median`` (MedianPruner after 2 trials, from epoch
  ``r_min``) and ``none``.
* ``trials`` is the number of finished (complete or pruned) trials the study is to have: a rerun
  of the same command continues the study where it stopped (trial numbers go on) and stops once
  it has them; each worker stops when the study has them (a worker may finish one trial more).
* Interruptions lose nothing: Ctrl-C marks the running trial failed and *interrupted*; the next
  run of the command enqueues it again with the same values and the same folder, and it resumes
  its last checkpoint. With an RDB storage (SQLite, PostgreSQL, MySQL) every running trial beats
  a heartbeat; a trial whose worker was killed is, ``grace`` seconds later, failed and retried
  the same way by the next trial any worker starts. ``journal:PATH`` (a journal file, e.g. on a
  shared file system for several machines) has no heartbeat: only interruptions are retried.
* Tracking: every trial writes TensorBoard events into its folder (its scalars per epoch and its
  values as hparams, :class:`~d2ljax.train.tracking.TensorBoardLogger`), so ``tensorboard
  --logdir WORKDIR`` compares the trials; ``d2ljax runs WORKDIR`` tabulates them.
* The result (:class:`TuneResult`) names the best trial, its values and its full config; it is
  also written to ``WORKDIR/best.json``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import logging
import os
import socket
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from d2ljax.config import Config, ConfigError
from d2ljax.tune.objective import load_base, run_trial, trial_config
from d2ljax.tune.searchers import Choice, Domain, LogUniform, RandInt, Uniform, check_space

SAMPLERS = ("tpe", "random")
PRUNERS = ("asha", "hyperband", "median", "none")

#: Heartbeat of a running trial (RDB storages) and how long a silent one may stay RUNNING.
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30


@dataclasses.dataclass
class SearchSetup:
    """What a tuning run needs from an experiment: its name, base config, space, first config."""

    name: str
    base: Config
    space: dict[str, Domain]
    initial: dict | None


def load_search(experiment: str) -> SearchSetup:
    """The base config, ``SEARCH_SPACE`` and ``INITIAL_CONFIG`` of ``"NAME[:VARIANT]"`` (a module
    of ``configs/``) or ``"path/to/config.py[:VARIANT]"``; a ConfigError when the module has
    no search space, or the space or first config is not valid for the config."""
    name, _, variant = str(experiment).partition(":")
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        spec = importlib.util.spec_from_file_location(f"_d2ljax_tune_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            cfg = module.get_config(variant or None)
        except AttributeError:
            raise ConfigError(f"{path} defines no get_config()") from None
        except ValueError as e:
            raise ConfigError(str(e)) from None
        base = load_base(cfg if isinstance(cfg, Mapping) else dict(cfg))
        base.setdefault("on_nonfinite", "stop")
    else:
        base = load_base(experiment)
        module = importlib.import_module(f"d2ljax.configs.{name}")
    space = getattr(module, "SEARCH_SPACE", None)
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(
            f"{experiment} defines no SEARCH_SPACE (a dict of d2ljax.tune domains, e.g. "
            "{'learning_rate': loguniform(1e-2, 1)}): it cannot be tuned; configs that can: "
            "hpo_lenet"
        )
    initial = getattr(module, "INITIAL_CONFIG", None)
    try:
        check_space(space, initial)
    except ValueError as e:
        raise ConfigError(f"{experiment}: {e}") from None
    sample = dict(initial) if initial else {k: _low(d) for k, d in space.items()}
    trial_config(base, sample, base.epochs)  # an unknown key: ConfigError naming it
    return SearchSetup(name=str(experiment), base=base, space=dict(space), initial=initial)


def _low(domain: Domain):
    if isinstance(domain, Choice):
        return domain.values[0]
    return domain.low


def suggest(trial, name: str, domain: Domain):
    """Optuna's value for ``name`` from ``domain`` (``randint``'s high is excluded, as ours)."""
    if isinstance(domain, LogUniform):
        return trial.suggest_float(name, domain.low, domain.high, log=True)
    if isinstance(domain, Uniform):
        return trial.suggest_float(name, domain.low, domain.high)
    if isinstance(domain, RandInt):
        return trial.suggest_int(name, domain.low, domain.high - 1)
    if isinstance(domain, Choice):
        return trial.suggest_categorical(name, list(domain.values))
    raise ConfigError(f"search space entry {name!r}: Optuna cannot sample {domain!r}")


def make_sampler(name: str, seed: int | None):
    import optuna

    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(name: str, *, r_min: int, eta: int, max_epochs: int):
    import optuna

    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=r_min, reduction_factor=eta)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=r_min, max_resource=max_epochs, reduction_factor=eta
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=r_min - 1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


def make_storage(url: str, *, heartbeat: int = HEARTBEAT_SECONDS, grace: int = GRACE_SECONDS):
    """An Optuna storage: an RDB URL (``sqlite:///path.db``, ``postgresql://...``,
    ``mysql://...``) with heartbeats and the retry of stale trials, or ``journal:PATH``."""
    import optuna

    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.split("://")[0].split("+")[0] not in ("sqlite", "postgresql", "mysql") or (
        "://" not in url
    ):
        raise ConfigError(
            f"storage {url!r} is not a database URL: give sqlite:///PATH.db, postgresql://..., "
            "mysql://... or journal:PATH"
        )
    engine_kwargs = {}
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        if str(db) not in ("", ":memory:"):
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"storage {url}: cannot create {db.parent}: {e}") from None
        engine_kwargs = {"connect_args": {"timeout": 60}}  # two workers wait for each other
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                grace_period=grace,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=3
                ),
            )
        except Exception as e:  # SQLAlchemy's errors: a bad URL, a missing driver, no server
            raise ConfigError(f"cannot open storage {url}: {e}") from None


def study_name(experiment: str) -> str:
    return Path(str(experiment).replace(":", "-")).name.removesuffix(".py")


@dataclasses.dataclass
class TuneResult:
    """``study`` (Optuna's), ``counts`` (trials by state name), ``best`` (None without a
    complete trial: ``{"trial", "value", "params", "epochs", "workdir", "config"}``)."""

    study: Any
    counts: dict[str, int]
    best: dict | None
    workdir: Path


def _finished(study) -> int:
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _retry_interrupted(study, log) -> None:
    """Enqueue again every interrupted trial not yet retried (same values, same folder)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted"):
            if t.number in retried:
                continue
            attrs = {"workdir": t.user_attrs["workdir"], "retry_of": t.number}
            study.enqueue_trial(dict(t.params), user_attrs=attrs)
            log(f"trial {t.number} was interrupted: run again, resuming {t.user_attrs['workdir']}")


class OptunaObjective:
    """``objective(trial) -> val_error`` for ``study.optimize`` (see the module docstring)."""

    def __init__(
        self,
        setup: SearchSetup,
        root: Path,
        *,
        max_epochs: int,
        tensorboard: bool = True,
        log: Callable[[str], None] = print,
        trial_log: Callable[[str], None] | None = None,
    ):
        self.setup, self.root, self.max_epochs = setup, root, max_epochs
        self.tensorboard, self.log, self.trial_log = tensorboard, log, trial_log

    def __call__(self, trial) -> float:
        import optuna

        folder = trial.user_attrs.get("workdir") or f"trial_{trial.number:03d}"
        trial.set_user_attr("workdir", folder)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        params = {k: suggest(trial, k, d) for k, d in self.setup.space.items()}
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in params.items())
        self.log(f"trial {trial.number}: {shown} ({folder})")
        wd = self.root / folder
        tb = None
        if self.tensorboard:
            from d2ljax.train.tracking import TensorBoardLogger

            tb = TensorBoardLogger(wd, hparams={**params, "trial": trial.number})
        try:
            out: dict = {}
            for epoch in range(1, self.max_epochs + 1):
                out = run_trial(
                    params,
                    epoch,
                    wd,
                    base=self.setup.base,
                    max_epochs=self.max_epochs,
                    log=self.trial_log,
                )
                if out.get("diverged"):
                    trial.set_user_attr("diverged_at", epoch)
                    self.log(f"trial {trial.number}: diverged in epoch {epoch}: error 1.0")
                    return 1.0
                error = float(out["val_error"])
                if tb is not None and out["epochs_trained"]:
                    self._track(tb, wd, epoch)
                trial.report(error, epoch)
                trial.set_user_attr("epochs", epoch)
                if trial.should_prune():
                    self.log(f"trial {trial.number}: pruned after epoch {epoch}: "
                             f"val_error {error:.4f}")
                    raise optuna.TrialPruned(f"val_error {error:.4f} after epoch {epoch}")
            self.log(f"trial {trial.number}: val_error {out['val_error']:.4f} after "
                     f"{self.max_epochs} epochs")
            return float(out["val_error"])
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        finally:
            if tb is not None:
                tb.close()

    @staticmethod
    def _track(tb, wd: Path, epoch: int) -> None:
        history = json.loads((wd / "metrics.json").read_text())
        if len(history.get("epoch", [])) < epoch:
            return
        logs = {k: v[epoch - 1] for k, v in history.items() if isinstance(v, list)}
        if not tb._hparams_written:
            metrics = [k for k, v in logs.items() if k != "epoch" and isinstance(v, float)]
            tb.write_hparams(tb.hparams, metrics)
        tb.write_epoch(epoch, logs)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def best_trial(study, root: Path) -> dict | None:
    """The complete trial with the lowest value: its number, value, values, epochs, folder and
    full config (its ``config.json``)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    t = min(done, key=lambda t: (t.value, t.number))
    wd = root / t.user_attrs.get("workdir", f"trial_{t.number:03d}")
    cfg_path = wd / "config.json"
    config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else None
    return {
        "trial": t.number,
        "value": float(t.value),
        "params": dict(t.params),
        "epochs": t.user_attrs.get("epochs"),
        "workdir": str(wd),
        "config": config,
    }


def tune(
    experiment: str,
    *,
    trials: int,
    sampler: str = "tpe",
    pruner: str = "asha",
    workdir: str | os.PathLike | None = None,
    storage: str | None = None,
    seed: int | None = None,
    r_min: int = 2,
    eta: int = 2,
    max_epochs: int | None = None,
    tensorboard: bool = True,
    log: Callable[[str], None] = print,
    trial_log: Callable[[str], None] | None = None,
    heartbeat: int = HEARTBEAT_SECONDS,
    grace: int = GRACE_SECONDS,
    workers: int = 1,
) -> TuneResult:
    """Run (or continue) the study of ``experiment`` until it has ``trials`` finished trials.

    ``workdir`` (default ``runs/tune/NAME``) holds the trials' folders, ``best.json`` and, by
    default, the study (``storage`` default ``sqlite:///WORKDIR/study.db``). ``seed`` seeds the
    sampler (mixed with the study's trial count, so a resumed study draws new values; give each
    of several workers its own seed). ``r_min``/``eta``: the pruners' first rung and reduction
    factor (the book's 2 and 2; ``r_min`` at most ``max_epochs``, the base config's epochs by
    default). ``workers``: this process and ``workers - 1`` more processes (started once the
    study exists, worker ``i`` with seed ``seed + i``, their lines on this process's stdout) run
    trials of the one study; the call returns when all have stopped. Bad input is a
    ConfigError before any trial starts."""
    import optuna

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {workers!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a positive integer, got {trials!r}")
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
    for what, v, low in (("--r-min", r_min, 1), ("--eta", eta, 2)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"{what} must be an integer >= {low}, got {v!r}")
    setup = load_search(experiment)
    horizon = setup.base.epochs if max_epochs is None else max_epochs
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ConfigError(f"--max-epochs must be an integer >= 1, got {horizon!r}")
    r_min = min(r_min, horizon)
    from d2ljax.experiment import validate

    validate(trial_config(setup.base, setup.initial or {}, horizon))
    root = Path(workdir) if workdir is not None else Path("runs") / "tune" / study_name(experiment)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"workdir {root} cannot be created: {e}") from None
    url = storage or f"sqlite:///{(root / 'study.db').absolute()}"
    store = make_storage(url, heartbeat=heartbeat, grace=grace)
    name = study_name(experiment)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happens
    logging.getLogger("optuna").setLevel(logging.ERROR)
    try:
        existing = optuna.create_study(storage=store, study_name=name, load_if_exists=True,
                                       direction="minimize")
    except ValueError as e:  # e.g. an existing study of the same name that maximizes
        raise ConfigError(f"storage {url}: {e}") from None
    n_before = len(existing.get_trials(deepcopy=False))
    study = optuna.create_study(
        storage=store,
        study_name=name,
        load_if_exists=True,
        direction="minimize",
        sampler=make_sampler(sampler, None if seed is None else seed + 7919 * n_before),
        pruner=make_pruner(pruner, r_min=r_min, eta=eta, max_epochs=horizon),
    )
    study.set_user_attr("experiment", str(experiment))
    if n_before == 0 and setup.initial:
        study.enqueue_trial(dict(setup.initial), skip_if_exists=True)
    elif n_before:
        log(f"study {name!r} in {url}: {_finished(study)} of {trials} trials finished, "
            f"{n_before} started")
    _retry_interrupted(study, log)
    left = trials - _finished(study)
    objective = OptunaObjective(setup, root, max_epochs=horizon, tensorboard=tensorboard,
                                log=log, trial_log=trial_log)
    children = []
    if workers > 1 and left > 0:
        kwargs = dict(
            experiment=str(experiment), trials=trials, sampler=sampler, pruner=pruner,
            workdir=str(root.absolute()), storage=url, r_min=r_min, eta=eta, max_epochs=horizon,
            tensorboard=tensorboard, heartbeat=heartbeat, grace=grace,
        )
        children = [
            _start_worker({**kwargs, "seed": None if seed is None else seed + i}, i)
            for i in range(1, workers)
        ]
    try:
        if left > 0:
            _optimize(study, objective, left, trials)
    except BaseException:
        _stop_workers(children)
        raise
    finally:
        for i, child in enumerate(children, 1):
            code = child.wait()
            if code:
                log(f"worker {i} stopped with exit status {code}")
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    best = best_trial(study, root)
    if best is not None:
        (root / "best.json").write_text(json.dumps(best, indent=1))
    return TuneResult(study=study, counts=counts, best=best, workdir=root)


def _optimize(study, objective, left: int, trials: int) -> None:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    study.optimize(
        objective, n_trials=left, callbacks=[optuna.study.MaxTrialsCallback(trials, states)]
    )


_WORKER = """
import json, sys
from d2ljax.tune.engine import tune
from d2ljax.config import ConfigError
prefix = sys.argv[2]
try:
    tune(**json.loads(sys.argv[1]), log=lambda line: print(prefix + line, flush=True))
except KeyboardInterrupt:
    sys.exit(130)
except ConfigError as e:
    print(f"{prefix}d2ljax: error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
"""


def _stop_workers(children, patience: float = 30.0) -> None:
    """This process stops on an error or an interruption: its workers get ``patience`` seconds
    (a Ctrl-C on the terminal reached them too), then SIGTERM, which ``fit`` turns into an
    interruption (the running trial is retried on the next run)."""
    import subprocess

    for child in children:
        try:
            child.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            child.terminate()


def _start_worker(kwargs: dict, index: int):
    """Worker ``index``: another process running :func:`tune` on the same study."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, json.dumps(kwargs), f"[worker {index}] "],
    )
