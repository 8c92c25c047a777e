"""RL configs through the command line (``d2ljax train value_iteration``, ``qlearning``): the
runs report the book's figures, resume exactly, and bad settings are one ``d2ljax: error:``."""

import json

import numpy as np
import pytest

from d2ljax.cli import load_config, main
from d2ljax.config import apply_overrides
from d2ljax.experiment import run


def test_value_iteration_config_is_the_books_ten_sweeps(tmp_path, capsys):
    assert main(["train", "value_iteration", "--workdir", str(tmp_path), "--no-progress"]) == 0
    hist = json.loads((tmp_path / "metrics.json").read_text())
    hist = hist.get("history", hist)
    assert len(hist["train_v_start"]) == 10
    assert abs(hist["train_v_start"][-1] - 0.0283) < 5e-4  # V(s0) after 10 sweeps, slippery
    assert 0.40 < hist["val_success"][-1] < 0.50  # measured 0.446 on the 10000 episodes
    assert "final: " in capsys.readouterr().out


def test_qlearning_deterministic_learns_and_resumes(tmp_path):
    over = ["data.kwargs.is_slippery=false", "rl.eval_episodes=100"]
    cfg = apply_overrides(load_config("qlearning"), over)
    straight = run(cfg, None, progress=False)
    assert straight.history["val_success"][-1] == 1.0  # the book's settings find the path
    half = apply_overrides(cfg, ["epochs=4"])
    run(half, tmp_path, progress=False)
    resumed = run(cfg, tmp_path, resume=True, progress=False)
    np.testing.assert_array_equal(np.asarray(resumed.model), np.asarray(straight.model))
    assert resumed.history["train_return"] == straight.history["train_return"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.name=qlearn", "unknown agent 'qlearn'. Did you mean q_learning?"),
        ("data.name=frozen_lake", "unknown environment 'frozen_lake'"),
        ("data.kwargs.map_name=9x9", "unknown FrozenLake map '9x9'"),
        ("model.kwargs.epsilon=1.5", "epsilon must be in [0, 1]"),
        ("rl.steps_per_epoch=0", "`rl.steps_per_epoch` must be an integer >= 1"),
    ],
)
def test_bad_rl_settings_are_one_error_line(override, message, tmp_path, capsys):
    code = main(["train", "qlearning:smoke", "--workdir", str(tmp_path / "w"), "--set", override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("d2ljax: error: ")
    assert message in err[0]
    assert not (tmp_path / "w").exists()


def test_ppo_config_settings_are_checked_before_work(tmp_path, capsys):
    args = ["train", "ppo_cartpole:smoke", "--workdir", str(tmp_path / "w")]
    assert main([*args, "--set", "model.kwargs.num_minibatches=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must divide into 3 minibatches" in err[0]
    assert main([*args, "--set", "model.kwargs.num_layers=3"]) == 2
    assert "unexpected keyword argument 'num_layers'" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
