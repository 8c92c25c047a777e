"""The §14.1 and §14.13 experiments through the config layer: `data.augment` is checked and
runs in training only (AugmentedTask), and a Kaggle CIFAR-10 run writes submission.csv."""

import csv

import numpy as np
import pytest

from d2ljax import experiment
from d2ljax.cli import load_config
from d2ljax.config import ConfigError
from d2ljax.data import hub
from d2ljax.data.cifar10 import CIFAR10_CLASSES


def test_the_configs_carry_the_books_settings():
    aug = load_config("augment_cifar10")
    assert aug.model.name == "resnet18_small" and aug.data.name == "cifar10"
    assert (aug.optimizer.name, aug.optimizer.learning_rate, aug.data.batch_size, aug.epochs) == (
        "adam", 0.001, 256, 10)
    assert aug.data.augment == [{"name": "flip_left_right", "probability": 0.5}]
    cpu = load_config("augment_cifar10:cpu")
    assert cpu.data.name == "kaggle_cifar10" and cpu.data.val_split == "valid"
    k = load_config("kaggle_cifar10")
    assert (k.optimizer.name, k.optimizer.learning_rate, k.optimizer.weight_decay) == (
        "momentum", 2e-4, 5e-4)
    assert k.optimizer.kwargs == {"momentum": 0.9} and k.data.batch_size == 32 and k.epochs == 20
    assert k.optimizer.schedule["decay_rate"] == 0.9
    assert k.optimizer.schedule["transition_steps"] == 4 * 29  # lr_period 4 epochs of 29 steps
    assert k.data.kwargs == {"valid_ratio": 0.1}
    for cfg in (aug, cpu, k, load_config("kaggle_cifar10:cpu")):
        experiment.validate(cfg)


def test_bad_augmentations_are_config_errors():
    cfg = load_config("augment_cifar10")
    cfg.data.augment = [{"name": "flip_left_rigth"}]
    with pytest.raises(ConfigError, match=r"config key `data.augment`: unknown augmentation.*"
                       "Did you mean flip_left_right"):
        experiment.validate(cfg)
    cfg.data.augment = "flip_left_right"
    with pytest.raises(ConfigError, match="data.augment"):
        experiment.validate(cfg)


@pytest.fixture
def kaggle_sample_present(shared_data):
    try:
        hub.download("kaggle_cifar10_samples")
        hub.download("kaggle_cifar10_labels")
    except hub.DataNotFoundError as e:
        pytest.skip(f"the Kaggle CIFAR-10 sample is not available: {e}")


@pytest.mark.slow
def test_kaggle_run_augments_in_training_and_writes_the_submission(
    kaggle_sample_present, tmp_path, monkeypatch, capsys
):
    seen = []

    class Recording(experiment.AugmentedTask):
        def train_step(self, state, batch):
            seen.append(batch["x"].shape)
            return super().train_step(state, batch)

        def eval_step(self, state, batch):
            seen.append("eval")
            return super().eval_step(state, batch)

    monkeypatch.setattr(experiment, "AugmentedTask", Recording)
    cfg = load_config("kaggle_cifar10:smoke")
    cfg.model.name = "mlp"  # the experiment layer is under test here, not the network
    cfg.model.kwargs = {"num_inputs": 3072, "num_hiddens": 16, "num_outputs": 10}
    result = experiment.run(cfg, tmp_path / "run", progress=False)
    assert seen and (32, 32, 32, 3) in seen  # the wrapped step was traced with train batches
    assert result.history["val_accuracy"][-1] >= 0.0
    rows = list(csv.reader(open(tmp_path / "run" / "submission.csv")))
    assert rows[0] == ["id", "label"] and len(rows) == 101
    ids = [int(r[0]) for r in rows[1:]]
    assert sorted(ids) == list(range(1, 101)) and ids[:3] == [1, 10, 100]
    assert {r[1] for r in rows[1:]} <= set(CIFAR10_CLASSES)
    assert "submission.csv" in capsys.readouterr().out
    # without augmentation the task is not wrapped
    seen.clear()
    cfg.data.augment = None
    experiment.run(cfg, None, progress=False)
    assert seen == []
    assert np.isfinite(result.history["train_loss"][-1])
