"""Shared by the optimizer tests: a small pytree of params, a smooth loss over it, and a loop
that runs an optax transformation for a few steps (under a chex variant) and records the path."""

import jax
import jax.numpy as jnp
import optax


def params():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    return {
        "dense": {"w": jax.random.normal(k1, (3, 2)), "b": jnp.zeros((2,))},
        "scale": jax.random.normal(k2, ()),
        "rows": [jax.random.normal(k3, (4,))],
    }


def loss(params, x):
    # Smooth, with gradients that depend on the params, so a wrong update makes paths drift apart.
    h = jnp.tanh(x @ params["dense"]["w"] + params["dense"]["b"])
    return jnp.sum(h**2) * params["scale"] ** 2 + jnp.sum(jnp.sin(params["rows"][0]))


def run(tx, variant, num_steps):
    """``num_steps`` updates of ``tx`` on fixed random batches; returns (params per step, state)."""
    p = params()
    state = tx.init(p)

    def step(p, state, x):
        grads = jax.grad(loss)(p, x)
        updates, state = tx.update(grads, state, p)
        return optax.apply_updates(p, updates), state

    step = variant(step)
    trajectory = []
    for i in range(num_steps):
        x = jax.random.normal(jax.random.key(100 + i), (5, 3))
        p, state = step(p, state, x)
        trajectory.append(p)
    return trajectory, state
