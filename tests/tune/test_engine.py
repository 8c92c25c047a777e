"""The Optuna trial engine (``d2ljax tune``) on a cheap real objective: softmax regression on 2048
Fashion-MNIST images, 3 epochs, the learning rate searched. Pruning prunes, a resumed study goes
on numbering its trials, an interrupted trial resumes its own checkpoint to the value of an
uninterrupted one, and the best trial's config is reported."""

import json
import textwrap

import optuna
import pytest

from d2ljax.cli import main
from d2ljax.experiment import checkpoint_epochs
from d2ljax.train.tracking import read_hparams, read_scalars
from d2ljax.tune import run_trial
from d2ljax.tune.engine import load_search, tune

CONFIG = '''
"""Softmax regression's learning rate tuned: the engine's test objective."""
from d2ljax.configs.softmax_regression import get_config as _base
from d2ljax.tune import loguniform

# lr 0.1 is the top of the range: on 3 epochs of SGD the fastest, so the best at every epoch
SEARCH_SPACE = {"learning_rate": loguniform(1e-4, 0.1)}
INITIAL_CONFIG = {"learning_rate": 0.1}


def get_config(variant=None):
    cfg = _base(None)
    cfg.data.limit = 2048
    cfg.epochs = 3
    return cfg
'''


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "softmax_hpo.py"
    path.write_text(textwrap.dedent(CONFIG))
    return str(path)


def _study(wd):
    return optuna.load_study(study_name="softmax_hpo", storage=f"sqlite:///{wd / 'study.db'}")


@pytest.mark.slow
def test_tune_prunes_resumes_numbering_and_reports_the_best(
    fashion_mnist, tmp_path, config_file, capsys
):
    wd = tmp_path / "study"
    args = ["tune", config_file, "--sampler", "random", "--seed", "0", "--pruner", "asha",
            "--r-min", "1", "--workdir", str(wd)]
    assert main([*args, "--trials", "3"]) == 0
    out = capsys.readouterr().out
    trials = _study(wd).trials
    assert [t.number for t in trials] == [0, 1, 2]
    states = [t.state.name for t in trials]
    # trial 0 (the initial lr 0.1) trains its 3 epochs; the lower rates are worse at epoch 1 and
    # ASHA (rung 1, eta 2) stops them there
    assert states == ["COMPLETE", "PRUNED", "PRUNED"]
    assert checkpoint_epochs(wd / "trial_000") == [1, 2, 3]
    assert checkpoint_epochs(wd / "trial_001") == [1] == checkpoint_epochs(wd / "trial_002")
    assert list(trials[0].intermediate_values) == [1, 2, 3]
    assert trials[1].intermediate_values[1] > trials[0].intermediate_values[1]
    assert "trial 1: pruned after epoch 1" in out

    best = json.loads((wd / "best.json").read_text())
    history = json.loads((wd / "trial_000" / "metrics.json").read_text())
    assert best["trial"] == 0 and best["params"] == {"learning_rate": 0.1}
    assert best["value"] == pytest.approx(1 - history["val_accuracy"][-1])
    assert best["config"] == json.loads((wd / "trial_000" / "config.json").read_text())
    assert best["config"]["optimizer"]["learning_rate"] == 0.1 and best["config"]["epochs"] == 3
    assert f"best: trial 0, val_error {best['value']:.4f} after 3 epochs" in out
    assert best["value"] < 0.45  # it learned (chance: 0.9)

    # each trial's folder has its TensorBoard events: the epochs' scalars and its values
    scalars = read_scalars(wd / "trial_000")
    assert list(scalars["val_accuracy"]) == [1, 2, 3]
    assert scalars["val_accuracy"][3] == pytest.approx(history["val_accuracy"][-1], rel=1e-6)
    assert read_hparams(wd / "trial_001")["learning_rate"] == pytest.approx(
        trials[1].params["learning_rate"]
    )

    # the same command with more trials continues the study: numbers 3 and 4, new draws
    assert main([*args, "--trials", "5"]) == 0
    out = capsys.readouterr().out
    trials = _study(wd).trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert "3 of 5 trials finished" in out and "trial 3:" in out
    lrs = [t.params["learning_rate"] for t in trials]
    assert len(set(lrs)) == 5
    assert json.loads((wd / "best.json").read_text())["trial"] == 0
    # and a study that has its trials runs none
    assert main([*args, "--trials", "5"]) == 0
    assert len(_study(wd).trials) == 5


class _Interrupt:
    """A trial log that presses Ctrl-C when the trial's second epoch ends (before its checkpoint
    is written: the trial has only epoch 1's), once."""

    def __init__(self):
        self.fired, self.lines = False, []

    def __call__(self, line):
        self.lines.append(line)
        if line.startswith("epoch 2/") and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


@pytest.mark.slow
def test_an_interrupted_trial_resumes_its_checkpoint(fashion_mnist, tmp_path, config_file):
    wd = tmp_path / "study"
    ctrl_c = _Interrupt()
    kw = dict(trials=1, sampler="random", seed=0, pruner="none", workdir=wd, log=lambda s: None)
    with pytest.raises(KeyboardInterrupt):
        tune(config_file, trial_log=ctrl_c, **kw)
    (t0,) = _study(wd).trials
    assert t0.state.name == "FAIL" and t0.user_attrs["interrupted"] is True
    assert checkpoint_epochs(wd / "trial_000") == [1]

    lines = []
    result = tune(config_file, trial_log=lines.append, **kw)
    t0, t1 = result.study.trials
    assert t1.state.name == "COMPLETE" and t1.params == t0.params
    assert t1.user_attrs["retry_of"] == 0 and t1.user_attrs["workdir"] == "trial_000"
    assert any(ln.startswith("resumed from") and "epoch 1" in ln for ln in lines)
    assert [ln.split()[1] for ln in lines if ln.startswith("epoch ")] == ["2/2", "3/3"]
    assert checkpoint_epochs(wd / "trial_000") == [1, 2, 3]
    # the value of the same trial run without interruption
    setup = load_search(config_file)
    ref = run_trial(t0.params, 3, tmp_path / "ref", base=setup.base, max_epochs=3)
    assert t1.value == ref["val_error"]
    assert result.best["trial"] == 1 and result.best["workdir"].endswith("trial_000")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--trials", "0"], "--trials must be a positive integer"),
        (["--sampler", "grid"], "unknown sampler 'grid'"),
        (["--pruner", "halving"], "unknown pruner 'halving'"),
        (["--eta", "1"], "--eta must be an integer >= 2"),
        (["--max-epochs", "0"], "--max-epochs must be an integer >= 1"),
        (["--storage", "redis://localhost"], "is not a database URL"),
    ],
)
def test_bad_tune_input_is_one_error_line(tmp_path, config_file, capsys, extra, message):
    wd = tmp_path / "w"
    assert main(["tune", config_file, "--workdir", str(wd), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("d2ljax: error: ") and message in err and len(err.splitlines()) == 1
    assert not (wd / "study.db").exists()


def test_experiments_without_a_space_are_refused(tmp_path, capsys):
    assert main(["tune", "mlp", "--workdir", str(tmp_path / "w")]) == 2
    assert "defines no SEARCH_SPACE" in capsys.readouterr().err
    assert main(["tune", "no_such_experiment", "--workdir", str(tmp_path / "w")]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_hpo_lenet_space_maps_to_optuna_distributions():
    """The book's space (hpo_lenet): lr loguniform(1e-2, 1), batch randint(32, 256) with 256
    excluded, and the first config lr 0.1, batch 128."""
    from d2ljax.tune.engine import suggest

    setup = load_search("hpo_lenet:cpu")
    assert setup.initial == {"learning_rate": 0.1, "batch_size": 128}
    assert setup.base.data.limit == 30000 and setup.base.epochs == 10
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    values = {k: suggest(trial, k, d) for k, d in setup.space.items()}
    lr, bs = trial.distributions["learning_rate"], trial.distributions["batch_size"]
    assert (lr.low, lr.high, lr.log) == (1e-2, 1.0, True)
    assert (bs.low, bs.high) == (32, 255)
    assert 1e-2 <= values["learning_rate"] <= 1 and 32 <= values["batch_size"] <= 255


_KILLED_WORKER = """
import os, signal, sys
from d2ljax.tune.engine import tune

def log(line):
    if line.startswith("epoch 2/"):  # the worker dies in the middle of its trial
        os.kill(os.getpid(), signal.SIGKILL)

tune(sys.argv[1], trials=1, sampler="random", seed=0, pruner="none", workdir=sys.argv[2],
     heartbeat=1, grace=2, trial_log=log, log=lambda s: None)
"""


@pytest.mark.slow
def test_a_killed_workers_trial_is_retried_in_its_own_folder(
    fashion_mnist, tmp_path, config_file
):
    """A worker SIGKILLed mid-trial leaves its trial RUNNING; once its heartbeat is older than
    the grace period the next worker fails it and runs it again with the same values in the same
    folder (resuming whatever checkpoint it has): the study ends with the value of an
    uninterrupted run."""
    import subprocess
    import sys
    import time

    wd = tmp_path / "study"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WORKER, config_file, str(wd)], timeout=300
    )
    assert proc.returncode == -9
    (t0,) = _study(wd).trials
    assert t0.state.name == "RUNNING"
    time.sleep(3)  # > grace
    result = tune(config_file, trials=1, sampler="random", seed=0, pruner="none", workdir=wd,
                  heartbeat=1, grace=2, log=lambda s: None)
    t0, t1 = result.study.trials
    assert t0.state.name == "FAIL" and t1.state.name == "COMPLETE"
    assert t1.params == t0.params == {"learning_rate": 0.1}
    assert t1.user_attrs["workdir"] == "trial_000" and checkpoint_epochs(wd / "trial_000")[-1] == 3
    setup = load_search(config_file)
    ref = run_trial(t0.params, 3, tmp_path / "ref", base=setup.base, max_epochs=3)
    assert t1.value == ref["val_error"]
