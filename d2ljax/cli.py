"""The command line: ``d2ljax train EXPERIMENT``, ``d2ljax list``, ``d2ljax show EXPERIMENT``,
``d2ljax tune EXPERIMENT`` (hyperparameter search on Optuna, :mod:`d2ljax.tune.engine`) and
``d2ljax runs [DIR]`` (the runs in a folder and their metrics, :mod:`d2ljax.train.tracking`).

EXPERIMENT is the name of a config in ``configs/`` (``softmax_regression``), optionally with a
variant (``softmax_regression:smoke``), or the path of a Python file that defines ``get_config``.
``d2ljax list`` groups the experiments by book chapter, in book order (:data:`BOOK_ORDER`).

Whatever goes wrong is one line on stderr, ``d2ljax: error: ...``, and exit status 2 (a bad
config value or name, a workdir that cannot take the run, missing or damaged data, a file that
cannot be written); Ctrl-C is one line saying where the run stopped and how to continue, exit
status 130 (143 for a SIGTERM that ``fit`` turned into an interruption); output cut short by
its reader (``d2ljax show mlp | head``) ends quietly, exit status 141.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import json
import os
import pkgutil
import signal
import sys
from pathlib import Path

from d2ljax.config import Config, ConfigError, apply_overrides
from d2ljax.registry import Registry

_NOT_EXPERIMENTS = {"common"}

# Keys newer than some config files (a config built without ``configs/common.py``): filled in
# with their defaults when absent, so ``--set`` can change them.
_ADDED_KEYS = {"on_nonfinite": "stop"}

# OS errors that say a file could not be written (read-only place, no space), not a bug.
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}

# The chapters of the book (d2l.ai 1.0), number -> title.
CHAPTERS = {
    2: "Preliminaries",
    3: "Linear Neural Networks for Regression",
    4: "Linear Neural Networks for Classification",
    5: "Multilayer Perceptrons",
    6: "Builders' Guide",
    7: "Convolutional Neural Networks",
    8: "Modern Convolutional Neural Networks",
    9: "Recurrent Neural Networks",
    10: "Modern Recurrent Neural Networks",
    11: "Attention Mechanisms and Transformers",
    12: "Optimization Algorithms",
    13: "Computational Performance",
    14: "Computer Vision",
    15: "Natural Language Processing: Pretraining",
    16: "Natural Language Processing: Applications",
    17: "Reinforcement Learning",
    18: "Gaussian Processes",
    19: "Hyperparameter Optimization",
    20: "Generative Adversarial Networks",
    21: "Recommender Systems",
}

# Every experiment in configs/, in book order: name -> the section it reproduces (its chapter is
# the first number). A new config gets a line here (tests/test_cli.py checks that each has one).
BOOK_ORDER = {
    "linear_regression_scratch": "3.4",
    "linear_regression": "3.5",
    "weight_decay_scratch": "3.7.2",
    "weight_decay": "3.7.3",
    "softmax_regression_scratch": "4.4",
    "softmax_regression": "4.5",
    "mlp_scratch": "5.2.1",
    "mlp": "5.2.2",
    "dropout_mlp_scratch": "5.6.2",
    "dropout_mlp": "5.6.3",
    "kaggle_house": "5.7",
    "lenet_scratch": "7.6",
    "lenet": "7.6",
    "alexnet": "8.1",
    "vgg": "8.2",
    "nin": "8.3",
    "googlenet": "8.4",
    "bn_lenet_scratch": "8.5.4",
    "bn_lenet": "8.5.5",
    "resnet18": "8.6",
    "resnext": "8.6.5",
    "densenet": "8.7",
    "regnetx32": "8.8",
    "sine_autoregression": "9.1.2",
    "rnn_scratch": "9.5",
    "rnn": "9.6",
    "lstm_scratch": "10.1.2",
    "lstm": "10.1.3",
    "gru_scratch": "10.2.4",
    "gru": "10.2.5",
    "deep_gru": "10.3.2",
    "seq2seq": "10.7",
    "bahdanau_seq2seq": "11.4.3",
    "transformer": "11.7.6",
    "vit": "11.8",
    "gpt": "11.9",
    "airfoil_sgd": "12.5",
    "airfoil_momentum": "12.6.2",
    "airfoil_adam": "12.10.2",
    "lr_schedule_cosine": "12.11.3",
    "augment_cifar10": "14.1",
    "kaggle_cifar10": "14.13",
    "word2vec_ptb": "15.4",
    "bert_pretrain": "15.10",
    "sentiment_birnn": "16.2",
    "bert_snli": "16.7",
    "value_iteration": "17.2",
    "qlearning": "17.3",
    "ppo_cartpole": "17.4",
    "gp_regression": "18.3",
    "hpo_lenet": "19.1",
    "gan_gaussian": "20.1",
    "dcgan": "20.2",
    "mf_movielens": "21.3",
    "autorec_movielens": "21.4",
}


def _experiments() -> Registry[str]:
    """The experiments in ``configs/``: name -> module name, described by its docstring's first
    line."""
    import d2ljax.configs as configs

    reg: Registry[str] = Registry(
        "experiment",
        error=ConfigError,
        message="unknown experiment {name!r}.{hint} Known experiments: {known} "
        "(or give the path of a config .py file)",
    )
    for info in pkgutil.iter_modules(configs.__path__):
        if info.name.startswith("_") or info.name in _NOT_EXPERIMENTS:
            continue
        module = importlib.import_module(f"d2ljax.configs.{info.name}")
        doc = ((module.__doc__ or "").strip().splitlines() or [""])[0]
        reg.register(info.name, module.__name__, description=doc)
    return reg


def list_experiments() -> dict[str, str]:
    """Experiment name -> first line of its docstring, sorted by name."""
    return _experiments().describe()


def experiments_by_chapter() -> list[tuple[str, list[tuple[str, str, str]]]]:
    """``[(chapter heading, [(section, name, description), ...]), ...]`` in book order.

    The heading is ``"ch 3 Linear Neural Networks for Regression"``; experiments missing from
    :data:`BOOK_ORDER` come last, under ``"other"``."""
    known = list_experiments()
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for name, section in BOOK_ORDER.items():
        if name in known:
            chapter = int(section.split(".")[0])
            heading = f"ch {chapter} {CHAPTERS.get(chapter, '')}".rstrip()
            groups.setdefault(heading, []).append((section, name, known[name]))
    rest = [("", name, desc) for name, desc in known.items() if name not in BOOK_ORDER]
    if rest:
        groups["other"] = rest
    return list(groups.items())


def load_config(experiment: str) -> Config:
    """The config of ``NAME``, ``NAME:VARIANT`` or ``path/to/config.py[:VARIANT]``."""
    name, _, variant = experiment.partition(":")
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(_experiments().get(name))
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{experiment} defines no get_config()")
    try:
        cfg = module.get_config(variant or None)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    cfg = cfg if isinstance(cfg, Config) else Config(cfg)
    for key, default in _ADDED_KEYS.items():
        cfg.setdefault(key, default)
    return cfg


def _enable_compilation_cache() -> None:
    """Keep XLA's compiled programs on disk, so a second run of an experiment (or a resume)
    skips compilation: ``$JAX_COMPILATION_CACHE_DIR``, else ``~/.cache/d2ljax/jax-cache``."""
    import jax

    path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "d2ljax", "jax-cache"
    )
    jax.config.update("jax_compilation_cache_dir", path)
    # Every program, however quick to compile: building a wide model eagerly compiles one small
    # initializer per parameter shape (~0.13 s each, 122 of them for GoogLeNet: 15 s on a 2-core
    # CPU); cached, the second build takes 3 s, for 1.3 MB of cache.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="d2ljax", description="Dive into Deep Learning in JAX.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an experiment")
    t.add_argument(
        "experiment", help="config name (see `d2ljax list`), NAME:VARIANT, or a .py path"
    )
    t.add_argument(
        "--workdir",
        help="where checkpoints, metrics.json and curves.png go (default: runs/EXPERIMENT)",
    )
    t.add_argument("--epochs", type=int, help="override the number of epochs")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optimizer.learning_rate=0.05",
    )
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="discard existing checkpoints")
    t.add_argument("--data-dir", help="where datasets are found/downloaded (sets D2LJAX_DATA)")
    t.add_argument("--no-progress", action="store_true", help="plain log lines, no progress bar")
    t.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files (scalars per epoch, the config as hparams) "
        "into the workdir: tensorboard --logdir runs",
    )
    m = t.add_argument_group(
        "multi-process (multi-host) training",
        "run the same command in every process; see tpu/README.md. Defaults come from "
        "$D2LJAX_COORDINATOR, $D2LJAX_NUM_PROCESSES, $D2LJAX_PROCESS_ID",
    )
    m.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    m.add_argument("--num-processes", type=int, metavar="N", help="how many processes take part")
    m.add_argument("--process-id", type=int, metavar="I", help="this process's id, 0..N-1")
    m.add_argument(
        "--distributed",
        action="store_true",
        help="initialise jax.distributed from the environment (Cloud TPU pod slices)",
    )
    sub.add_parser("list", help="list the experiments, by book chapter")
    _tune_parser(sub)
    r = sub.add_parser("runs", help="the runs in a folder, with their final and best metrics")
    r.add_argument("dir", nargs="?", default="runs", help="the folder (default: runs)")
    r.add_argument("--plot", metavar="PNG", help="also draw every run's curve of --metric")
    r.add_argument("--metric", default="val_accuracy", help="the metric --plot draws")
    s = sub.add_parser("show", help="print an experiment's config")
    s.add_argument("experiment")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return p


def _tune_parser(sub) -> None:
    u = sub.add_parser(
        "tune",
        help="search an experiment's hyperparameters (Optuna; resumable, several workers)",
        description="Run or continue the study of EXPERIMENT (a config with a SEARCH_SPACE, "
        "e.g. hpo_lenet:cpu) until it has --trials finished trials. Run the same command again "
        "(or in another shell, or with --workers) to continue it or to add a worker.",
    )
    u.add_argument("experiment", help="config name (NAME[:VARIANT]) or .py path")
    u.add_argument("--trials", type=int, default=20, help="finished trials wanted (default 20)")
    u.add_argument("--sampler", default="tpe", help="tpe (default) or random")
    u.add_argument("--pruner", default="asha", help="asha (default), hyperband, median or none")
    u.add_argument("--workdir", help="trials' folders and the study (default runs/tune/NAME)")
    u.add_argument("--storage", help="default sqlite:///WORKDIR/study.db; or journal:PATH")
    u.add_argument("--workers", type=int, default=1, help="processes running trials")
    u.add_argument("--seed", type=int, help="the sampler's seed (default: random)")
    u.add_argument("--r-min", type=int, default=2, help="first rung in epochs (default 2)")
    u.add_argument("--eta", type=int, default=2, help="reduction factor (default 2)")
    u.add_argument("--max-epochs", type=int, help="epochs of a full trial (default: config's)")
    u.add_argument("--no-tensorboard", action="store_true", help="no event files per trial")
    u.add_argument("--data-dir", help="where datasets are found/downloaded (sets D2LJAX_DATA)")


def _tune(args) -> int:
    if args.data_dir:
        os.environ["D2LJAX_DATA"] = str(Path(args.data_dir).expanduser().absolute())
    _enable_compilation_cache()
    from d2ljax.tune.engine import tune

    try:
        result = tune(
            args.experiment,
            trials=args.trials,
            sampler=args.sampler,
            pruner=args.pruner,
            workdir=args.workdir,
            storage=args.storage,
            seed=args.seed,
            r_min=args.r_min,
            eta=args.eta,
            max_epochs=args.max_epochs,
            tensorboard=not args.no_tensorboard,
            workers=args.workers,
            log=lambda line: print(line, flush=True),
        )
    except KeyboardInterrupt:
        print(
            "d2ljax: interrupted; the running trial resumes its checkpoint when you run the "
            "same command again",
            file=sys.stderr,
            flush=True,
        )
        return 130
    counts = ", ".join(f"{n.lower()} {k}" for n, k in sorted(result.counts.items()))
    print(f"study: {counts}; trials in {result.workdir}", flush=True)
    best = result.best
    if best is None:
        print("best: no trial has completed yet", flush=True)
        return 0
    values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in best["params"].items())
    print(
        f"best: trial {best['trial']}, val_error {best['value']:.4f} after {best['epochs']} "
        f"epochs: {values}; its config: {Path(best['workdir']) / 'config.json'} "
        f"(also in {result.workdir / 'best.json'})",
        flush=True,
    )
    return 0


def _runs(args) -> int:
    from d2ljax.train.tracking import format_runs, list_runs, plot_runs

    root = Path(args.dir)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder (give the folder of the runs, e.g. runs)")
    runs = list_runs(root)
    if not runs:
        raise ConfigError(f"no runs under {root} (a run is a folder with a metrics.json)")
    print(format_runs(runs))
    if args.plot:
        print(f"curves of {args.metric}: {plot_runs(runs, args.plot, args.metric)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`d2ljax show mlp | head`): what it did not read is not wanted.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except KeyboardInterrupt as e:
        print(_interrupted(e), file=sys.stderr, flush=True)
        return 128 + int(getattr(e, "signum", None) or signal.SIGINT)  # 130 for Ctrl-C


def _interrupted(e: KeyboardInterrupt) -> str:
    """The Ctrl-C line: where a run stopped (what ``fit``'s ``TrainingInterrupted`` carries:
    ``epoch``, ``last_checkpoint``) and how to continue."""
    epoch = getattr(e, "epoch", None)
    if epoch is None:
        return "d2ljax: interrupted"
    last = getattr(e, "last_checkpoint", None)
    if last is None:
        if getattr(e, "workdir", None) is None:
            return f"d2ljax: interrupted in epoch {epoch}; the run has no workdir to resume from"
        return f"d2ljax: interrupted in epoch {epoch}; no checkpoint was written yet"
    return (
        f"d2ljax: interrupted in epoch {epoch}; the last checkpoint is epoch {last}; "
        "continue with --resume"
    )


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            for i, (heading, items) in enumerate(experiments_by_chapter()):
                print(("\n" if i else "") + heading)
                for section, name, desc in items:
                    print(f"  {section:8s} {name:28s} {desc}")
            return 0
        if args.command == "runs":
            return _runs(args)
        if args.command == "tune":
            return _tune(args)
        if args.command == "train" and args.resume and args.overwrite:
            raise ConfigError(
                "--resume and --overwrite contradict each other: --resume continues the "
                "checkpoints in the workdir, --overwrite deletes them; give one of them"
            )
        cfg = apply_overrides(load_config(args.experiment), args.set)
        if args.command == "show":
            print(json.dumps(cfg.to_dict(), indent=2))
            return 0
        if args.epochs is not None:
            cfg = apply_overrides(cfg, [f"epochs={args.epochs}"])
        if args.data_dir:
            os.environ["D2LJAX_DATA"] = str(Path(args.data_dir).expanduser().absolute())
        from d2ljax.parallel import distributed

        try:
            distributed.initialize(
                args.coordinator,
                args.num_processes,
                args.process_id,
                auto=True if args.distributed else None,
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
        _enable_compilation_cache()
        from d2ljax.experiment import run, validate

        validate(cfg)  # a bad name or value fails before anything is printed or written
        workdir = args.workdir or str(
            Path("runs") / args.experiment.replace(":", "-").replace("/", "_").removesuffix(".py")
        )
        say = print if distributed.is_primary() else (lambda *a, **k: None)
        say(f"{args.experiment}: {cfg.description}\nworkdir: {workdir}", flush=True)
        callbacks = []
        if args.tensorboard and distributed.is_primary():
            from d2ljax.train.tracking import TensorBoardLogger

            callbacks.append(TensorBoardLogger(workdir, hparams=cfg.to_dict()))
        try:
            result = run(
                cfg,
                workdir,
                resume=args.resume,
                overwrite=args.overwrite,
                progress=False if args.no_progress else None,
                callbacks=callbacks,
            )
        finally:
            for cb in callbacks:
                cb.close()
        final = {k: v[-1] for k, v in result.history.items() if isinstance(v, list) and v}
        say(
            "final: " + " ".join(f"{k} {v:.4f}" for k, v in final.items() if isinstance(v, float)),
            flush=True,
        )
        return 0
    except (ConfigError, FileExistsError) as e:
        return _error(e)
    except OSError as e:
        from d2ljax.data import hub

        if isinstance(e, hub.DataError):  # data errors carry their own instructions
            return _error(e)
        if e.errno in _WRITE_ERRNOS:
            where = f" {e.filename}" if e.filename else ""
            return _error(f"cannot write{where}: {e.strerror or e}")
        raise
    except Exception as e:
        from d2ljax.data import hub

        if isinstance(e, hub.DataError):
            return _error(e)
        raise


def _error(e: BaseException | str) -> int:
    print(f"d2ljax: error: {e}", file=sys.stderr, flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
