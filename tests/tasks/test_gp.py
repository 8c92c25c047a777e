"""The GP hyperparameter task (§18.3) on the book's data: it learns (the log marginal likelihood
rises, the hyperparameters end near the book's), ``fit`` equals the plain loop, and a resumed run
is bit-identical."""

import chex
import jax
import numpy as np
import optax
import pytest

from d2ljax.data import ArrayLoader
from d2ljax.data.synthetic import gp_regression_data
from d2ljax.models.gp import GPRegression
from d2ljax.tasks import GPTask, learn_hyperparameters
from d2ljax.train import fit

DATA = gp_regression_data()


def _fit(epochs, **kw):
    loader = ArrayLoader(DATA["train"], 50, seed=0, shuffle=False, on_device=True)
    task = GPTask(GPRegression("rbf"), optax.adam(0.1))
    return fit(task, loader, epochs=epochs, progress=False, log=lambda s: None, mesh=None, **kw)


def test_learning_on_the_book_data_reaches_the_books_hyperparameters():
    x, y = DATA["train"]["x"], DATA["train"]["y"]
    model = GPRegression("rbf")
    start = float(model.log_marginal_likelihood(x, y))
    losses = learn_hyperparameters(model, x, y, optax.adam(0.1), steps=50)
    end = float(model.log_marginal_likelihood(x, y))
    assert end > start + 30  # per point: 0.99 -> 0.20 nats
    np.testing.assert_allclose(-losses[0] * 50, start, rtol=1e-5)
    h = {k: float(v) for k, v in model.hyperparameters().items()}
    assert 0.4 < h["lengthscale"] < 0.65  # the book: 0.52
    assert 0.015 < h["noise_var"] < 0.12  # the book: 0.061; the truth 0.0625
    assert 0.3 < h["amplitude"] < 1.5


def test_fit_equals_the_plain_loop():
    res = _fit(10)
    model = GPRegression("rbf")
    learn_hyperparameters(model, DATA["train"]["x"], DATA["train"]["y"], steps=10)
    chex.assert_trees_all_close(
        jax.device_get({k: v for k, v in res.model.hyperparameters().items()}),
        jax.device_get(model.hyperparameters()),
        rtol=1e-5,
    )
    assert res.history["train_loss"][-1] < res.history["train_loss"][0]


def test_resume_is_bit_identical(tmp_path):
    straight = _fit(6)
    _fit(3, workdir=tmp_path / "w", plot=False)
    resumed = _fit(6, workdir=tmp_path / "w", resume=True, plot=False)
    chex.assert_trees_all_equal(
        jax.device_get(straight.state.params), jax.device_get(resumed.state.params)
    )
    assert straight.history["train_loss"] == resumed.history["train_loss"]


def test_the_config_trains_through_the_experiment_layer():
    from d2ljax.configs.gp_regression import get_config

    from d2ljax.experiment import build, train

    res = train(build(get_config("smoke")), quiet=True)
    assert len(res.history["train_loss"]) == 5
    assert res.history["train_loss"][-1] < res.history["train_loss"][0]


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="unknown GP kernel"):
        GPRegression("nosuch")
    with pytest.raises(ValueError, match="no hyperparameter"):
        GPRegression("rbf", init={"period": 1.0})
    with pytest.raises(ValueError, match="must be > 0"):
        GPRegression("rbf", init={"lengthscale": -1.0})
