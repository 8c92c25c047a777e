"""The book's objective on real Fashion-MNIST: a promoted trial resumes its own checkpoint, and
trials that differ only in the learning rate run one compiled step."""

import json

import pytest

from d2ljax.config import ConfigError
from d2ljax.experiment import checkpoint_epochs
from d2ljax.tune import (
    RandomSearcher,
    SuccessiveHalving,
    TrialObjective,
    Tuner,
    loguniform,
    run_trial,
)
from d2ljax.tune.objective import load_base


@pytest.mark.slow
def test_successive_halving_on_softmax_regression_resumes_and_compiles_once(
    fashion_mnist, tmp_path
):
    """§19.1's objective (softmax regression, the learning rate searched) on 4096 images, SH with
    rungs 1 and 2 epochs: two trials of 1 epoch, the better one promoted to 2. The promotion
    resumes its checkpoint (one more epoch: 3 in all, not 4), both learning rates and the
    promotion run the programs the first trial compiled, and the promoted trial learns."""
    from d2ljax.train import programs

    base = load_base("softmax_regression")
    base.data.limit = 4096
    lines = []
    objective = TrialObjective(tmp_path, base=base, max_epochs=2, log=lines.append)
    searcher = RandomSearcher(
        {"learning_rate": loguniform(1e-2, 1)}, {"learning_rate": 0.1}, seed=0
    )
    programs.clear()
    tuner = Tuner(SuccessiveHalving(searcher, eta=2, r_min=1, r_max=2), objective).run(3)
    df = tuner.table()
    assert list(df.epochs) == [1, 1, 2] and list(df.new_epochs) == [1, 1, 1]
    assert list(df.epochs_trained) == [1, 1, 1]  # what the objective actually trained
    assert [ln.split()[1] for ln in lines if ln.startswith("epoch ")] == ["1/1", "1/1", "2/2"]
    assert sum(ln.startswith("resumed from") for ln in lines) == 1
    promoted = int(df.trial_id.iloc[2])
    assert promoted == int(df.iloc[:2].sort_values("error").trial_id.iloc[0])
    assert checkpoint_epochs(objective.workdir(promoted))[-1] == 2
    assert checkpoint_epochs(objective.workdir(1 - promoted)) == [1]
    assert objective.history(promoted)["epoch"] == [1, 2]
    assert programs.compiled_programs() == [("train_chunk", 1), ("eval_chunk", 1)]
    first = df[(df.trial_id == promoted) & (df.epochs == 1)].error.iloc[0]
    assert df.error.iloc[2] < first and df.error.iloc[2] < 0.35  # chance: 0.9

    # the contract's edges: fewer epochs than it has -> its metrics there, nothing trained
    config = {"learning_rate": float(df.learning_rate.iloc[2])}
    again = objective(config, 1, promoted)
    assert again["epochs_trained"] == 0 and again["val_error"] == pytest.approx(first)
    with pytest.raises(ConfigError, match="different config"):
        objective({"learning_rate": 0.5}, 2, promoted)
    with pytest.raises(ConfigError, match=r"\[1, 2\]"):
        objective(config, 3, promoted)


@pytest.mark.slow
def test_the_lenet_objective_runs_a_trial(fashion_mnist, tmp_path):
    """The book's ch 19 objective (LeNet) in smoke size: the trial's values reach its config."""
    out = run_trial({"learning_rate": 0.3, "batch_size": 64}, 1, tmp_path, base="hpo_lenet:smoke")
    assert out["epochs"] == out["epochs_trained"] == 1 and out["diverged"] == 0
    assert 0 <= out["val_error"] <= 1
    assert out["val_error"] == pytest.approx(1 - out["val_accuracy"])
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["optimizer"]["learning_rate"] == 0.3 and cfg["data"]["batch_size"] == 64
    assert cfg["model"]["name"] == "lenet" and checkpoint_epochs(tmp_path) == [1]


def test_bad_trials_are_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="learning_rat"):
        run_trial({"optimizer.learning_rat": 0.1}, 1, tmp_path / "a", base="hpo_lenet")
    with pytest.raises(ConfigError, match="unknown experiment"):
        run_trial({}, 1, tmp_path / "b", base="no_such_experiment")
    with pytest.raises(ConfigError, match=r"\[1, 10\]"):
        run_trial({}, 0, tmp_path / "c", base="hpo_lenet")
    assert not any(tmp_path.iterdir())
