"""Gradient noise and throughput of minibatches (§12.5, beyond the book), on a linear model."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from d2ljax.optim.minibatch import examples_per_second, full_gradient, gradient_noise

N = 256


@pytest.fixture(scope="module")
def problem():
    kx, kn = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (N, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.5 * jax.random.normal(kn, (N,))
    params = {"w": jnp.zeros((3,)), "b": jnp.zeros(())}

    def loss_fn(p, batch):
        return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2) / 2

    return loss_fn, params, {"x": x, "y": y}


def test_full_gradient_in_chunks(problem):
    loss_fn, params, data = problem
    exact = ravel_pytree(jax.grad(loss_fn)(params, data))[0]
    np.testing.assert_allclose(full_gradient(loss_fn, params, data, chunk_size=100), exact, 1e-5)


def test_gradient_noise_follows_the_sampling_formula(problem):
    """E||g_B - g||^2 = tr(Sigma) / B * (N - B) / (N - 1) for draws without replacement."""
    loss_fn, params, data = problem
    per_example = jax.vmap(
        lambda x, y: ravel_pytree(jax.grad(loss_fn)(params, {"x": x[None], "y": y[None]}))[0]
    )(data["x"], data["y"])
    trace = float(jnp.sum(jnp.var(per_example, axis=0)))  # population variance
    g = full_gradient(loss_fn, params, data)
    key = jax.random.key(1)
    noise = {}
    for b in (4, 32):
        noise[b] = gradient_noise(loss_fn, params, data, b, key=key, num_batches=300, full_grad=g)
    for b, value in noise.items():
        expected = trace / b * (N - b) / (N - 1)
        assert value == pytest.approx(expected, rel=0.25)  # a 300-draw mean: well within 25 %
    assert noise[4] > 5 * noise[32]
    assert gradient_noise(loss_fn, params, data, N, key=key, num_batches=2) < 1e-8
    with pytest.raises(ValueError, match="batch_size"):
        gradient_noise(loss_fn, params, data, N + 1, key=key)


def test_examples_per_second(problem):
    loss_fn, params, data = problem
    rate = examples_per_second(loss_fn, params, data, 32, optax.sgd(0.1), num_steps=5, repeats=1)
    assert np.isfinite(rate) and rate > 0
