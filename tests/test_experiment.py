"""experiment.build: dataset facts (``_info``) reach the model's constructor."""

import numpy as np
import pytest

from d2ljax.config import ConfigError
from d2ljax.experiment import build


def _cfg(**model_kwargs):
    from configs.common import experiment

    return experiment(
        description="test",
        model="mlp",
        dataset="synthetic_regression",
        batch_size=4,
        lr=0.1,
        epochs=1,
        model_kwargs=model_kwargs,
    )


def _splits(info):
    x = np.zeros((8, 784), np.float32)
    y = np.zeros((8,), np.int32)
    return {"train": {"x": x, "y": y}, "test": {"x": x, "y": y}, "_info": info}


def test_info_fills_constructor_arguments_the_config_leaves_out():
    exp = build(_cfg(), _splits({"num_outputs": 5, "not_an_argument": 1}))
    assert exp.info["num_outputs"] == 5
    assert exp.model.output.kernel.shape[-1] == 5


def test_config_arguments_win_over_info():
    exp = build(_cfg(num_outputs=3), _splits({"num_outputs": 5}))
    assert exp.model.output.kernel.shape[-1] == 3


def test_unknown_model_argument_is_a_config_error():
    with pytest.raises(ConfigError, match="no argument"):
        build(_cfg(bogus=1), _splits({}))


@pytest.mark.parametrize("bad", [0, -2, 2.5, "8"])
def test_steps_per_call_must_be_a_positive_integer(bad):
    cfg = _cfg()
    cfg.steps_per_call = bad
    with pytest.raises(ConfigError, match="steps_per_call"):
        build(cfg, _splits({}))


def test_steps_per_call_reaches_fit(monkeypatch):
    import d2ljax.experiment as experiment

    seen = {}
    monkeypatch.setattr(experiment, "fit", lambda *a, **kw: seen.update(kw))
    cfg = _cfg()
    cfg.steps_per_call = 7
    experiment.train(build(cfg, _splits({})), quiet=True)
    assert seen["steps_per_call"] == 7
