"""GPRegression (§18.3): its kernels are the hand-composed ones of d2ljax.nn.gp at its
hyperparameters, its start is GPyTorch's (or the values given), and its loss leaves padded rows
out exactly."""

import jax.numpy as jnp
import numpy as np
import pytest

from d2ljax.models import GPRegression, get_model
from d2ljax.nn import gp
from d2ljax.tasks.gp import gp_marginal_likelihood

X = np.linspace(0, 10, 30, dtype=np.float32)[:, None]
Y = np.sin(X[:, 0]).astype(np.float32)


def test_the_start_is_gpytorchs_or_the_given_values():
    h = GPRegression("rbf").hyperparameters()
    for name in ("amplitude", "lengthscale"):
        np.testing.assert_allclose(h[name], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(h["noise_var"], np.log(2.0) + 1e-4, rtol=1e-6)
    h = GPRegression("periodic", init={"period": 3.0, "noise_var": 0.01}).hyperparameters()
    np.testing.assert_allclose([h["period"], h["noise_var"]], [3.0, 0.01], rtol=1e-5)
    assert isinstance(get_model("gp_regression", kernel="co2"), GPRegression)


def test_the_co2_kernel_is_the_composed_one():
    init = dict(trend_amplitude=2.0, trend_lengthscale=50.0, seasonal_amplitude=0.3,
                seasonal_lengthscale=1.2, period=1.0, seasonal_decay=40.0,
                medium_amplitude=0.1, medium_lengthscale=0.8, medium_alpha=0.5, noise_var=0.02)
    model = GPRegression("co2", init=init)
    k = (2.0 * gp.RBF(50.0) + 0.3 * gp.Periodic(1.2, 1.0) * gp.RBF(40.0)
         + 0.1 * gp.RationalQuadratic(0.8, 0.5))
    np.testing.assert_allclose(model.kernel()(X), k(X), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(model.log_marginal_likelihood(X, Y),
                               gp.log_marginal_likelihood(k, X, Y, 0.02), rtol=1e-4)


def test_the_loss_leaves_padded_rows_out():
    model = GPRegression("rbf")
    mask = jnp.asarray(np.r_[np.ones(25), np.zeros(5)], jnp.float32)
    padded, sums = gp_marginal_likelihood(model, {"x": X, "y": Y, "mask": mask})
    plain, _ = gp_marginal_likelihood(model, {"x": X[:25], "y": Y[:25]})
    np.testing.assert_allclose(padded, plain, rtol=1e-5)
    assert set(sums) == {"loss", "count", "amplitude", "lengthscale", "noise_var", "mean"}


def test_predict_is_the_posterior():
    model = GPRegression("rbf", init={"lengthscale": 1.5, "noise_var": 0.05}, mean=0.2)
    mean, var = model.predict(X, Y, X[::3])
    k = float(model.hyperparameters()["amplitude"]) * gp.RBF(1.5)
    ref_mean, ref_var = gp.posterior(k, X, Y, X[::3], 0.05, mean=0.2, full_cov=False)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var, ref_var, rtol=1e-3, atol=1e-5)


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="noise_var must be > noise_floor"):
        GPRegression("rbf", init={"noise_var": 1e-5})
    with pytest.raises(ValueError, match="noise_floor must be >= 0"):
        GPRegression("rbf", noise_floor=-1.0)
