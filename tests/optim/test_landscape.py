"""Test functions, trajectories, Newton's method and the critical-point test (§12.1-§12.4)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from d2ljax.optim import landscape as L
from d2ljax.optim import sgd


def test_gd_1d_on_a_parabola_is_geometric():
    """§12.3.1: on x**2, x <- x - lr 2x = (1 - 2 lr) x."""
    path = L.gd_1d(lambda x: x**2, 10.0, lr=0.2, steps=10)
    chex.assert_shape(path, (11,))
    np.testing.assert_allclose(path, 10.0 * 0.6 ** np.arange(11), rtol=1e-5)
    diverging = L.gd_1d(lambda x: x**2, 10.0, lr=1.1, steps=10)
    assert abs(float(diverging[-1])) > 10.0  # |1 - 2.2| > 1: the iterates grow (§12.3.1.2)


def test_trajectory_with_a_function_equals_with_optax():
    by_hand = L.train_2d(lambda x, g: x - 0.1 * g, steps=20, f=L.quadratic_2d)
    scratch = L.train_2d(sgd(0.1), steps=20, f=L.quadratic_2d)
    concise = L.train_2d(optax.sgd(0.1), steps=20, f=L.quadratic_2d)
    chex.assert_shape(by_hand, (21, 2))
    chex.assert_trees_all_close(by_hand[0], jnp.array([-5.0, -2.0]))
    chex.assert_trees_all_close(by_hand, scratch, concise, rtol=1e-6)
    # Each coordinate contracts on its own: x1 by (1 - 0.2), x2 by (1 - 0.4) per step.
    np.testing.assert_allclose(by_hand[:, 0], -5.0 * 0.8 ** np.arange(21), rtol=1e-5)
    np.testing.assert_allclose(by_hand[:, 1], -2.0 * 0.6 ** np.arange(21), rtol=1e-4)


def test_noisy_gradients():
    """§12.4's simulated stochastic gradient: reproducible with a key, required to be given."""
    with pytest.raises(ValueError, match="key"):
        L.train_2d(sgd(0.1), f=L.quadratic_2d, noise_std=1.0)
    a = L.train_2d(sgd(0.1), 50, f=L.quadratic_2d, noise_std=1.0, key=jax.random.key(1))
    b = L.train_2d(sgd(0.1), 50, f=L.quadratic_2d, noise_std=1.0, key=jax.random.key(1))
    chex.assert_trees_all_equal(a, b)
    clean = L.train_2d(sgd(0.1), 50, f=L.quadratic_2d)
    assert float(jnp.abs(a - clean).max()) > 0.05
    assert float(L.quadratic_2d(a[-1])) < 2.0  # near the minimum, but jittering around it


def test_newton():
    """§12.3.3: fast on the convex cosh, exact in one step on a quadratic, damped by lr."""
    path = L.newton(L.cosh_1d, 10.0, steps=10)
    assert abs(float(path[-1])) < 1e-5
    A = jnp.array([[3.0, 1.0], [1.0, 2.0]])

    def quad(x):
        return 0.5 * x @ A @ x - jnp.array([1.0, -1.0]) @ x

    path = L.newton(quad, jnp.array([4.0, -7.0]), steps=1)
    chex.assert_trees_all_close(path[-1], jnp.linalg.solve(A, jnp.array([1.0, -1.0])), atol=1e-5)
    damped = L.newton(quad, jnp.array([4.0, -7.0]), steps=1, lr=0.5)
    chex.assert_trees_all_close(damped[-1], (path[0] + path[1]) / 2, atol=1e-5)


def test_classify_critical_point_known_cases():
    assert L.classify_critical_point(lambda x: jnp.sum(x**2), jnp.zeros(3)) == "minimum"
    assert L.classify_critical_point(lambda x: -jnp.sum(x**2), jnp.zeros(3)) == "maximum"
    assert L.classify_critical_point(L.saddle_2d, jnp.zeros(2)) == "saddle"
    assert L.classify_critical_point(lambda x: x**3, 0.0) == "degenerate"
    assert L.classify_critical_point(lambda x: x**2, 1.0) == "not critical"
    # x cos(pi x) (§12.1): its minima and maxima where the derivative vanishes
    x_min = L.newton(L.local_minima_1d, 1.1, steps=20)[-1]
    assert L.classify_critical_point(L.local_minima_1d, x_min) == "minimum"
    x_max = L.newton(L.local_minima_1d, 0.6, steps=20)[-1]
    assert L.classify_critical_point(L.local_minima_1d, x_max) == "maximum"
    np.testing.assert_allclose(L.hessian_eigenvalues(L.saddle_2d, jnp.zeros(2)), [-2.0, 2.0])


def test_a_network_at_zero_weights_is_a_saddle_and_least_squares_a_minimum():
    """On pytrees: y_hat = w2 * tanh(w1 x) at w = 0 has zero gradient and a Hessian with
    eigenvalues +-2|mean(x y)|; a linear least-squares loss at its solution is a minimum."""
    x = jnp.linspace(-1.0, 1.0, 21)
    y = jnp.sin(2 * x)

    def net_loss(p):
        return jnp.mean((p["w2"] * jnp.tanh(p["w1"] * x) - y) ** 2)

    zero = {"w1": jnp.zeros(()), "w2": jnp.zeros(())}
    assert L.classify_critical_point(net_loss, zero) == "saddle"
    c = float(jnp.mean(x * y))
    np.testing.assert_allclose(L.hessian_eigenvalues(net_loss, zero), [-2 * c, 2 * c], rtol=1e-5)

    X = jnp.stack([x, jnp.ones_like(x)], axis=1)
    w_star = jnp.linalg.lstsq(X, y)[0]

    def ls_loss(p):
        return jnp.mean((X @ p["w"] - y) ** 2)

    assert L.classify_critical_point(ls_loss, {"w": w_star}, grad_tol=1e-4) == "minimum"


def test_contour_grid():
    X1, X2, Z = L.contour_grid(L.ill_conditioned_2d, num=11)
    assert X1.shape == X2.shape == Z.shape == (11, 11)
    np.testing.assert_allclose(Z, 0.1 * X1**2 + 2 * X2**2, rtol=1e-5)
