"""Bad input to the command line is one clear line, never a traceback, and a refused run leaves
its workdir as it was, byte for byte (issue 14, cases 5-11).

The runs here are plumbing tests on a tiny synthetic regression (an MLP of 8 hidden units, 2
steps an epoch); the bad values are refused before any data loads (``load_dataset`` fails the
test if it is called).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from d2ljax.cli import list_experiments, load_config, main
from d2ljax.config import ConfigError, apply_overrides

REPO = Path(__file__).resolve().parents[1]

TINY = """
from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description="tiny MLP regression (tests)",
        model="mlp",
        model_kwargs=dict(num_inputs=2, num_outputs=1, num_hiddens=8),
        dataset="synthetic_regression",
        data_kwargs=dict(num_train=64, num_val=32),
        batch_size=32,
        lr=0.03,
        epochs=2,
        loss="squared",
        val_split="val",
        variant=variant,
    )
"""


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` with the SHA-1 of its bytes."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "/"
        for p in sorted(folder.rglob("*"))
    }


def one_error_line(err: str) -> str:
    """The stderr of a refused command: exactly one ``d2ljax: error:`` line, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("d2ljax: error: "), err
    return lines[0]


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if anything loads a dataset."""
    import d2ljax.experiment as experiment

    def refuse(*args, **kwargs):
        raise AssertionError("a bad config loaded its data before it was refused")

    monkeypatch.setattr(experiment, "load_dataset", refuse)


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    return str(path)


@pytest.fixture
def finished(tiny, tmp_path, capsys):
    """A finished 2-epoch run of the tiny config: (config path, workdir)."""
    wd = tmp_path / "run"
    assert main(["train", tiny, "--workdir", str(wd), "--no-progress"]) == 0
    capsys.readouterr()
    return tiny, wd


# -- case 7 and 11: every key has a type and a range, checked before anything runs -----------


@pytest.mark.parametrize(
    "args, key, value",
    [
        (["--set", "optimizer.grad_clip=abc"], "optimizer.grad_clip", "'abc'"),
        (["--set", "data.limit=abc"], "data.limit", "'abc'"),
        (["--set", "data.eval_batch_size=abc"], "data.eval_batch_size", "'abc'"),
        (["--epochs", "-3"], "epochs", "-3"),
        (["--set", "data.batch_size=0"], "data.batch_size", "0"),
        (["--set", "data.batch_size=-5"], "data.batch_size", "-5"),
        (["--set", "seed=-1"], "seed", "-1"),
        (["--set", "data.resize=-1"], "data.resize", "-1"),
        (["--set", "checkpoint_every=-1"], "checkpoint_every", "-1"),
        (["--set", "optimizer.learning_rate=-0.1"], "optimizer.learning_rate", "-0.1"),
        (["--set", "precision=float8"], "precision", "'float8'"),
        (["--set", "on_nonfinite=ignore"], "on_nonfinite", "'ignore'"),
    ],
)
def test_a_bad_value_is_refused_before_the_data_loads(args, key, value, no_data, tmp_path, capsys):
    wd = tmp_path / "run"
    assert main(["train", "mlp:smoke", "--workdir", str(wd), *args]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"config key `{key}` must be " in line and line.endswith(f"got {value}")
    assert not wd.exists()


def test_kfold_checks_its_values_and_every_folds_workdir_before_it_loads(
    tmp_path, monkeypatch, capsys
):
    import d2ljax.data.tabular as tabular

    def refuse(*args, **kwargs):
        raise AssertionError("a refused k-fold run loaded its data")

    monkeypatch.setattr(tabular, "load_kaggle_house", refuse)
    wd = tmp_path / "run"
    args = ["train", "kaggle_house:smoke", "--workdir", str(wd), "--no-progress"]
    assert main([*args, "--set", "data.batch_size=0"]) == 2
    assert "config key `data.batch_size` must be " in one_error_line(capsys.readouterr().err)
    assert not wd.exists()
    (wd / "fold3" / "checkpoints" / "2").mkdir(parents=True)  # an earlier run's fold 3
    before = snapshot(wd)
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{wd / 'fold3'} already has checkpoints" in line
    assert snapshot(wd) == before


def test_every_config_key_has_a_type_and_a_range():
    from d2ljax.experiment import CONFIG_KEYS, validate

    for name in list_experiments():
        for variant in ("", ":smoke"):
            cfg = load_config(name + variant)
            for key in cfg.flat_keys():
                parts = key.split(".")
                covered = any(".".join(parts[:i]) in CONFIG_KEYS for i in range(1, len(parts) + 1))
                assert covered, f"{name}: config key {key} has no entry in CONFIG_KEYS"
            validate(cfg)


def test_a_value_of_a_key_whose_default_is_none_is_checked_too():
    from d2ljax.experiment import validate

    validate(apply_overrides(load_config("mlp"), ["optimizer.grad_clip=1"]))  # int for a number
    with pytest.raises(ConfigError, match=r"`data\.limit` must be an integer >= 1 or none"):
        validate(apply_overrides(load_config("mlp"), ["data.limit=2.5"]))


# -- case 5, 6 and 11: the workdir of a refused run is left as it was ------------------------


def test_a_refused_run_does_not_touch_config_json(finished, capsys):
    tiny, wd = finished
    before = snapshot(wd)
    args = ["train", tiny, "--workdir", str(wd), "--set", "optimizer.learning_rate=0.5"]
    assert main(args) == 2
    assert "--resume" in one_error_line(capsys.readouterr().err)
    assert snapshot(wd) == before


@pytest.mark.parametrize(
    "overrides, change",
    [
        (["model.kwargs.num_hiddens=16"], "key model.kwargs.num_hiddens: 8 -> 16"),
        (["optimizer.name=adam"], "key optimizer.name: 'sgd' -> 'adam'"),
        (
            ["model.name=linear_regression", "model.kwargs={'num_inputs': 2}"],
            "key model.kwargs.num_hiddens: 8 -> (absent)",
        ),
    ],
)
def test_resume_with_another_config_names_the_keys(finished, overrides, change, capsys):
    tiny, wd = finished
    before = snapshot(wd)
    sets = [a for o in overrides for a in ("--set", o)]
    assert main(["train", tiny, "--workdir", str(wd), "--resume", "--epochs", "3", *sets]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"the checkpoint in {wd} was written by a different config: " in line
    assert change in line and "epochs" not in line.split(": ", 2)[2].split(". ")[0]
    assert snapshot(wd) == before


def test_resume_may_change_the_epochs_and_how_often_it_checkpoints(finished, capsys):
    tiny, wd = finished
    args = ["train", tiny, "--workdir", str(wd), "--no-progress", "--resume", "--epochs", "3"]
    assert main([*args, "--set", "checkpoint_every=2", "--set", "description='longer'"]) == 0
    assert json.loads((wd / "metrics.json").read_text())["epoch"] == [1, 2, 3]
    assert json.loads((wd / "config.json").read_text())["epochs"] == 3


def test_resume_with_fewer_epochs_than_the_run_has(finished, capsys):
    tiny, wd = finished
    before = snapshot(wd)
    args = ["train", tiny, "--workdir", str(wd), "--no-progress", "--resume"]
    assert main([*args, "--epochs", "1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"the run in {wd} already has 2 epochs" in line and "more than 2 epochs" in line
    assert snapshot(wd) == before
    assert main(args) == 0  # as many epochs as it has: nothing to train, and it says so
    assert "already has all 2 epochs: nothing to train" in capsys.readouterr().out


def test_resume_of_a_finished_run_whose_last_checkpoint_is_damaged_trains_that_epoch(
    finished, capsys
):
    tiny, wd = finished
    (wd / "checkpoints" / "2" / "state" / "_METADATA").unlink()
    assert main(["train", tiny, "--workdir", str(wd), "--no-progress", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint 2 in" in out and "is damaged" in out and "epoch 2/2" in out
    assert "nothing to train" not in out


def test_resume_and_overwrite_contradict(finished, capsys):
    tiny, wd = finished
    before = snapshot(wd)
    assert main(["train", tiny, "--workdir", str(wd), "--resume", "--overwrite"]) == 2
    assert "contradict" in one_error_line(capsys.readouterr().err)
    assert snapshot(wd) == before


def test_a_missing_validation_split_lists_the_splits(tiny, tmp_path, capsys):
    wd = tmp_path / "run"
    assert main(["train", tiny, "--workdir", str(wd), "--set", "data.val_split=nosuch"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "has no split 'nosuch'; its splits: train, val" in line
    assert not wd.exists()


# -- case 8: errors of the system are one line too -------------------------------------------


def test_a_workdir_that_cannot_be_written(tiny, tmp_path, monkeypatch, capsys, no_data):
    """Simulated (the tests may run as root, who can write anywhere): os.access says no."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != tmp_path and real(p, mode))
    assert main(["train", tiny, "--workdir", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert (
        f"workdir {tmp_path / 'run'} cannot be written (its folder {tmp_path} is read-only)" in line
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_workdir_and_current_directory(tiny, tmp_path, capsys, no_data):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["train", tiny, "--workdir", str(ro / "run")]) == 2
        assert "cannot be written" in one_error_line(capsys.readouterr().err)
        cwd = os.getcwd()
        os.chdir(ro)
        try:
            assert main(["train", tiny]) == 2  # the default workdir: runs/... here
        finally:
            os.chdir(cwd)
        assert "cannot be written" in one_error_line(capsys.readouterr().err)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_a_write_error_during_the_run_is_one_line(tiny, tmp_path, monkeypatch, capsys):
    import d2ljax.experiment as experiment

    def run(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/ro/run/metrics.json")

    monkeypatch.setattr(experiment, "run", run)
    assert main(["train", tiny, "--workdir", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == "d2ljax: error: cannot write /ro/run/metrics.json: Permission denied"


def test_damaged_data_is_one_line(tiny, tmp_path, monkeypatch, capsys):
    import d2ljax.experiment as experiment
    from d2ljax.data import hub

    def load(*args, **kwargs):
        raise hub.CorruptFileError("/cache/fra-eng has no file named 'fra.txt'")

    monkeypatch.setattr(experiment, "load_dataset", load)
    assert main(["train", tiny, "--workdir", str(tmp_path / "run")]) == 2
    assert "has no file named 'fra.txt'" in one_error_line(capsys.readouterr().err)


def test_output_cut_short_by_its_reader_ends_quietly():
    """``d2ljax show mlp | head``: the reader is gone before d2ljax writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "d2ljax.cli", "show", "mlp"],
            stdout=write,
            stderr=subprocess.PIPE,
            cwd=REPO,
            timeout=120,
        )
    finally:
        os.close(write)
    assert proc.returncode == 141
    assert proc.stderr == b""


def test_ctrl_c_is_one_line(tiny, tmp_path, monkeypatch, capsys):
    import d2ljax.experiment as experiment

    class Interrupted(KeyboardInterrupt):  # what fit's TrainingInterrupted carries
        epoch, last_checkpoint, workdir = 4, 3, str(tmp_path / "run")

    for raised, message in [
        (KeyboardInterrupt(), "d2ljax: interrupted"),
        (
            Interrupted(),
            "d2ljax: interrupted in epoch 4; the last checkpoint is epoch 3; "
            "continue with --resume",
        ),
    ]:

        def run(*args, raised=raised, **kwargs):
            raise raised

        monkeypatch.setattr(experiment, "run", run)
        assert main(["train", tiny, "--workdir", str(tmp_path / "run")]) == 130
        assert capsys.readouterr().err.strip() == message


def test_ctrl_c_during_a_run(tiny, tmp_path):
    """A real SIGINT in a running ``d2ljax train``: one line, exit status 130, and the run
    continues with --resume."""
    import re
    import signal

    wd = tmp_path / "run"
    cmd = [sys.executable, "-m", "d2ljax.cli", "train", tiny, "--workdir", str(wd)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*cmd, "--no-progress", "--epochs", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
        text=True,
    )
    try:
        for line in proc.stdout:
            if line.startswith("epoch 2/"):
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    pattern = (
        r"d2ljax: interrupted in epoch (\d+); the last checkpoint is epoch (\d+); "
        r"continue with --resume"
    )
    found = re.fullmatch(pattern, err.strip().splitlines()[-1])
    assert found, err
    last = int(found.group(2))
    assert main([*cmd[3:], "--no-progress", "--resume", "--epochs", str(last + 1)]) == 0
    assert json.loads((wd / "metrics.json").read_text())["epoch"][-1] == last + 1


# -- case 9: a schedule is checked against the run's steps once they are known ---------------


def _regression(**overrides):
    from configs.common import experiment

    cfg = experiment(
        description="test",
        model="mlp",
        model_kwargs=dict(num_inputs=2, num_outputs=1, num_hiddens=4),
        dataset="synthetic_regression",
        batch_size=8,
        lr=0.1,
        epochs=2,
        loss="squared",
    )
    for key, value in overrides.items():
        cfg.set(key, value)
    return cfg


def _splits(n=32, y=None):
    x = np.zeros((n, 2), np.float32)
    y = np.zeros((n, 1), np.float32) if y is None else y
    return {"train": {"x": x, "y": y}, "test": {"x": x[:8], "y": y[:8]}}


def test_cosine_warmup_without_decay_steps_is_accepted():
    from d2ljax.experiment import build, validate
    from d2ljax.train.optimizer import learning_rate

    cfg = _regression(**{"optimizer.schedule": {"name": "cosine", "warmup_steps": 2}})
    validate(cfg)
    exp = build(cfg, _splits())  # 4 steps an epoch, 8 in all: warm up for 2, decay over 6
    state = exp.optimizer.init({"w": np.zeros(3, np.float32)})
    assert float(learning_rate(state)) == 0.0


def test_a_schedule_that_does_not_fit_is_one_clear_error():
    from d2ljax.experiment import build, validate

    too_long = _regression(**{"optimizer.schedule": {"name": "cosine", "warmup_steps": 100}})
    validate(too_long)  # the run's steps are not known before the data is
    with pytest.raises(ConfigError) as e:
        build(too_long, _splits())
    assert str(e.value) == (
        "config key `optimizer.schedule`: cosine schedule: decay_steps (not given: the run's "
        "number of steps) (8) must exceed warmup_steps (100): the warm-up is part of the schedule"
    )
    given = {"name": "cosine", "warmup_steps": 10, "decay_steps": 5}
    with pytest.raises(ConfigError, match=r"decay_steps \(5\) must exceed warmup_steps \(10\)"):
        validate(_regression(**{"optimizer.schedule": given}))
    with pytest.raises(ConfigError, match="the exponential schedule needs decay_rate"):
        validate(_regression(**{"optimizer.schedule": {"name": "exponential"}}))


# -- case 10: classification labels lie in the model's range ---------------------------------


def _classifier(num_outputs=10):
    return _regression(
        **{
            "loss": "classification",
            "model.kwargs": {"num_inputs": 2, "num_outputs": num_outputs, "num_hiddens": 4},
        }
    )


def test_labels_out_of_range_are_refused_up_front():
    from d2ljax.experiment import build

    y = np.zeros(32, np.int32)
    build(_classifier(), _splits(y=y + 9))  # 0..9 for 10 outputs: fine
    y[[3, 5, 7]] = [-1, 12, 12]
    with pytest.raises(ConfigError) as e:
        build(_classifier(), _splits(y=y))
    assert str(e.value) == (
        "the labels of dataset 'synthetic_regression' (split 'train') must be class indices in "
        "[0, 10) for the model 'mlp' (10 outputs); found -1 (1 example), 12 (2 examples)"
    )
    with pytest.raises(ConfigError, match=r"\(split 'train'\) must be class indices in \[0, 5\)"):
        build(_classifier(num_outputs=5), _splits(y=np.full(32, 7, np.int32)))
    with pytest.raises(ConfigError, match="needs integer class labels"):
        build(_classifier(), _splits(y=np.zeros(32, np.float32)))
