"""Experiment tracking: TensorBoard event files written while a run trains (read back to the values
of its metrics.json), and ``d2ljax runs``, the table of the runs in a folder."""

import json

import numpy as np
import pytest

from d2ljax.cli import main
from d2ljax.train.tracking import (
    TensorBoardLogger,
    event_files,
    format_runs,
    list_runs,
    read_hparams,
    read_scalars,
)


def _history(epochs, acc0, lr):
    return {
        "epoch": list(range(1, epochs + 1)),
        "train_loss": [1.0 / e for e in range(1, epochs + 1)],
        "val_accuracy": [acc0 + 0.01 * e for e in range(epochs)],
        "val_loss": [0.9, 0.7, 0.8][:epochs],
        "epoch_time": [0.5] * epochs,
    }, {"optimizer": {"learning_rate": lr, "name": "sgd"}, "data": {"batch_size": 128},
        "epochs": epochs, "description": "d"}


def _write_run(folder, epochs, acc0, lr):
    folder.mkdir(parents=True)
    history, cfg = _history(epochs, acc0, lr)
    (folder / "metrics.json").write_text(json.dumps(history))
    (folder / "config.json").write_text(json.dumps(cfg))


def test_runs_table_lists_differing_keys_final_and_best(tmp_path, capsys):
    _write_run(tmp_path / "a", 3, 0.70, 0.1)
    _write_run(tmp_path / "sweep" / "b", 2, 0.60, 0.3)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metrics.json").write_text("{not json")  # skipped, not fatal
    runs = list_runs(tmp_path)
    assert [r["run"] for r in runs] == ["a", "sweep/b"]
    a = runs[0]
    assert a["epochs"] == 3 and a["seconds"] == pytest.approx(1.5)
    assert a["final"]["val_loss"] == 0.8 and a["best"]["val_loss"] == 0.7  # lowest loss
    assert a["best"]["val_accuracy"] == pytest.approx(0.72)  # highest accuracy
    table = format_runs(runs)
    header = table.splitlines()[0].split()
    # the one config key that differs; not the epochs (own column) nor the description
    assert header[:4] == ["run", "epochs", "time_s", "optimizer.learning_rate"]
    assert "best_val_loss" in header and "data.batch_size" not in header

    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == header
    row = dict(zip(header, out[2].split(), strict=True))
    assert row["run"] == "sweep/b" and row["optimizer.learning_rate"] == "0.3"
    assert row["val_accuracy"] == "0.61" and row["epochs"] == "2"

    assert main(["runs", str(tmp_path), "--plot", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_runs_refuses_a_missing_or_empty_folder(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("d2ljax: error: ")
    assert main(["runs", str(tmp_path)]) == 2
    assert "no runs under" in capsys.readouterr().err


def test_logger_writes_scalars_and_hparams_and_a_cut_file_still_reads(tmp_path):
    history, cfg = _history(3, 0.5, 0.1)
    tb = TensorBoardLogger(tmp_path, hparams=cfg)
    seen = {}
    for e in range(3):
        for k, v in history.items():
            seen.setdefault(k, []).append(v[e])
        assert tb.on_epoch_end(e, seen, None) is False
    tb.close()
    scalars = read_scalars(tmp_path)
    assert sorted(scalars) == ["epoch_time", "train_loss", "val_accuracy", "val_loss"]
    for k, steps in scalars.items():
        assert list(steps) == [1, 2, 3]
        np.testing.assert_allclose(list(steps.values()), history[k], rtol=1e-7)
    hp = read_hparams(tmp_path)
    assert hp["optimizer.learning_rate"] == pytest.approx(0.1) and hp["optimizer.name"] == "sgd"
    # a file cut in its last record (a run killed while writing): the records before it read
    (path,) = event_files(tmp_path)
    path.write_bytes(path.read_bytes()[:-7])
    cut = read_scalars(tmp_path)
    assert list(cut["epoch_time"]) == [1, 2]  # the last event written: epoch 3's epoch_time
    assert all(list(cut[k]) == [1, 2, 3] for k in ("train_loss", "val_accuracy", "val_loss"))


@pytest.mark.slow
def test_train_tensorboard_events_equal_metrics_json_and_resume_appends(
    fashion_mnist, tmp_path, capsys
):
    """``d2ljax train --tensorboard`` on real Fashion-MNIST (softmax regression, 2048 images):
    every metric of metrics.json is a scalar at steps 1..2, equal to float32; the config is the
    hparams; a resumed run adds step 3 in a second event file; ``d2ljax runs`` shows the run."""
    wd = tmp_path / "softmax"
    args = ["train", "softmax_regression:smoke", "--workdir", str(wd), "--no-progress",
            "--tensorboard"]
    assert main([*args, "--epochs", "2"]) == 0
    history = json.loads((wd / "metrics.json").read_text())
    scalars = read_scalars(wd)
    metrics = [k for k in history if k != "epoch"]
    assert {"train_loss", "val_accuracy", "val_loss"} <= set(metrics)
    assert sorted(scalars) == sorted(metrics)
    for k in metrics:
        assert list(scalars[k]) == [1, 2]
        np.testing.assert_allclose(list(scalars[k].values()), history[k], rtol=1e-6)
    hp = read_hparams(wd)
    assert hp["optimizer.learning_rate"] == pytest.approx(0.1)
    assert hp["model.name"] == "softmax_regression"
    assert main([*args, "--epochs", "3", "--resume"]) == 0
    assert len(event_files(wd)) == 2
    history = json.loads((wd / "metrics.json").read_text())
    scalars = read_scalars(wd)
    np.testing.assert_allclose(
        [scalars["val_accuracy"][s] for s in (1, 2, 3)], history["val_accuracy"], rtol=1e-6
    )
    capsys.readouterr()
    assert main(["runs", str(tmp_path)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert cells["run"] == "softmax" and cells["epochs"] == "3"
    assert float(cells["val_accuracy"]) == pytest.approx(history["val_accuracy"][-1], abs=1e-4)


def test_two_loggers_in_one_second_keep_both_files(tmp_path):
    """A run resumed at once (same second, same host) adds a file instead of truncating the
    first (tensorboardX alone names both files alike and opens them with "wb")."""
    for step in (1, 2):
        tb = TensorBoardLogger(tmp_path)
        tb.write_epoch(step, {"epoch": step, "val_loss": 1.0 / step})
        tb.close()
    assert len(event_files(tmp_path)) == 2
    assert read_scalars(tmp_path) == {"val_loss": {1: 1.0, 2: 0.5}}
