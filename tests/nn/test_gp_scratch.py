"""Gaussian processes from scratch (§18.1-18.3) against tinygp, a maintained JAX GP library
(test-only dependency): kernel matrices, the log marginal likelihood and the posterior, in
float32; and the Cholesky posterior against a direct solve."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from d2ljax.nn import gp

tinygp = pytest.importorskip("tinygp")

X = np.linspace(0.0, 5.0, 40, dtype=np.float32)[:, None]
X_TEST = np.linspace(-0.5, 5.5, 30, dtype=np.float32)[:, None]
Y = (np.sin(X[:, 0]) + 0.5 * np.sin(4 * X[:, 0])
     + 0.25 * np.random.default_rng(0).standard_normal(40)).astype(np.float32)
NOISE = 0.07
MEAN = 0.1


def _ours_and_tinygp():
    k = tinygp.kernels
    return {
        "rbf": (0.8 * gp.RBF(0.6), 0.8 * k.ExpSquared(scale=0.6)),
        "composed": (
            1.5 * gp.RBF(3.0)
            + 0.4 * gp.Periodic(lengthscale=0.9, period=1.3) * gp.RBF(4.0)
            + 0.2 * gp.RationalQuadratic(0.5, alpha=0.7),
            1.5 * k.ExpSquared(scale=3.0)
            + 0.4 * k.ExpSineSquared(scale=1.3, gamma=2.0 / 0.9**2) * k.ExpSquared(scale=4.0)
            + 0.2 * k.RationalQuadratic(scale=0.5, alpha=0.7),
        ),
    }


@pytest.mark.parametrize("name", ["rbf", "composed"])
def test_kernel_matrix_equals_tinygp(name):
    ours, ref = _ours_and_tinygp()[name]
    np.testing.assert_allclose(ours(X, X_TEST), ref(X, X_TEST), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours(X), ref(X, X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["rbf", "composed"])
def test_log_marginal_likelihood_and_posterior_equal_tinygp(name):
    ours, ref = _ours_and_tinygp()[name]
    ref_gp = tinygp.GaussianProcess(ref, X, diag=NOISE, mean=MEAN)
    lml = gp.log_marginal_likelihood(ours, X, Y, NOISE, mean=MEAN)
    np.testing.assert_allclose(lml, ref_gp.log_probability(Y), rtol=1e-5)
    cond = ref_gp.condition(Y, X_TEST, diag=0.0).gp  # the latent f (no jitter added)
    mean, cov = gp.posterior(ours, X, Y, X_TEST, NOISE, mean=MEAN)
    np.testing.assert_allclose(mean, cond.loc, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cov, cond.covariance, atol=1e-4)
    _, var = gp.posterior(ours, X, Y, X_TEST, NOISE, mean=MEAN, full_cov=False)
    np.testing.assert_allclose(var, cond.variance, atol=1e-4)


def test_cholesky_posterior_equals_a_direct_solve():
    k = 0.8 * gp.RBF(0.6)
    mean, cov = gp.posterior(k, X, Y, X_TEST, NOISE)
    x64, y64, t64 = (np.asarray(a, np.float64) for a in (X, Y, X_TEST))
    kxx = np.asarray(k(X), np.float64) + NOISE * np.eye(len(X))
    kxs = np.asarray(k(X, X_TEST), np.float64)
    kss = np.asarray(k(X_TEST), np.float64)
    np.testing.assert_allclose(mean, kxs.T @ np.linalg.solve(kxx, y64), atol=1e-4)
    np.testing.assert_allclose(cov, kss - kxs.T @ np.linalg.solve(kxx, kxs), atol=1e-4)
    sign, logdet = np.linalg.slogdet(kxx)
    direct = -0.5 * y64 @ np.linalg.solve(kxx, y64) - 0.5 * logdet - 20 * np.log(2 * np.pi)
    np.testing.assert_allclose(gp.log_marginal_likelihood(k, X, Y, NOISE), direct, rtol=1e-5)


def test_mask_leaves_points_out_exactly():
    k = 0.8 * gp.RBF(0.6)
    mask = np.ones(40, np.float32)
    mask[-7:] = 0
    padded_y = Y.copy()
    padded_y[-7:] = 123.0  # padding rows: any value
    masked = gp.log_marginal_likelihood(k, X, padded_y, NOISE, mask=mask)
    np.testing.assert_allclose(masked, gp.log_marginal_likelihood(k, X[:-7], Y[:-7], NOISE),
                               rtol=1e-6)


def test_neural_network_and_linear_kernels():
    """The arcsine kernel is a covariance (symmetric, PSD, |correlation| <= 1); Linear is x x'."""
    k = gp.NeuralNetwork(weight_var=2.0, bias_var=0.5)
    kxx = np.asarray(k(X_TEST), np.float64)
    np.testing.assert_allclose(kxx, kxx.T, atol=1e-6)
    assert np.linalg.eigvalsh(kxx).min() > -1e-5
    d = np.sqrt(np.diag(kxx))
    assert np.all(np.abs(kxx / np.outer(d, d)) <= 1 + 1e-5)
    np.testing.assert_allclose(gp.Linear(2.0)(X, X_TEST), 2.0 * X @ X_TEST.T, rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_prior_samples_have_the_kernel_covariance(jit):
    k = 2.0 * gp.RBF(0.5)
    x = np.linspace(0, 1, 5, dtype=np.float32)

    def draw(key):
        return gp.prior_samples(key, k, x, 20000)

    s = (jax.jit(draw) if jit else draw)(jax.random.key(0))
    chex.assert_shape(s, (20000, 5))
    np.testing.assert_allclose(np.cov(np.asarray(s).T), k(x), atol=0.08)


def test_gradients_reach_the_hyperparameters():
    def nll(log_ls):
        return -gp.log_marginal_likelihood(gp.RBF(jnp.exp(log_ls)), X, Y, NOISE)

    g = jax.grad(nll)(jnp.log(0.6))
    assert np.isfinite(g) and g != 0
    g_per = jax.grad(lambda p: gp.Periodic(1.0, p)(X).sum())(1.3)
    assert np.isfinite(g_per)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="must be \\[N\\] or \\[N, D\\]"):
        gp.RBF()(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="y must be \\[N\\]"):
        gp.log_marginal_likelihood(gp.RBF(), X, Y[:3], NOISE)
    with pytest.raises(ValueError, match="different dimension"):
        gp.RBF()(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(TypeError, match="cannot combine"):
        gp.RBF() + "a"
