"""CartPole against gymnasium's ``CartPole-v1``: trajectories step for step from the same start
states and actions (float32 here, float64 there), termination and the 500-step limit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from d2ljax.envs import CartPole

gym = pytest.importorskip("gymnasium")


def test_trajectories_equal_gymnasium_step_for_step():
    """Random-action episodes run freely from gymnasium's start state (equal within float32
    rounding); balancing episodes (push towards the pole's lean) run 500 steps into the time
    limit, each step taken from gymnasium's own float64 state (float32 drift over hundreds of
    steps is ~1e-5)."""
    ref = gym.make("CartPole-v1")
    env = CartPole()
    assert env.max_episode_steps == ref.spec.max_episode_steps == 500
    step = jax.jit(env.step)
    rng = np.random.default_rng(0)
    lengths = []
    for episode in range(20):
        obs_ref, _ = ref.reset(seed=episode)
        state, _ = env.reset(jax.random.key(episode))
        state = state._replace(physics=jnp.asarray(ref.unwrapped.state, jnp.float32))
        balance = episode % 2 == 1
        for t in range(600):
            if balance:
                a = int(obs_ref[2] + 0.5 * obs_ref[3] > 0)
                state = state._replace(physics=jnp.asarray(ref.unwrapped.state, jnp.float32))
            else:
                a = int(rng.integers(2))
            obs_ref, r_ref, term_ref, trunc_ref, _ = ref.step(a)
            out = step(state, a)
            np.testing.assert_allclose(np.asarray(out.obs), obs_ref, rtol=1e-5, atol=1e-6)
            assert float(out.reward) == r_ref
            assert (bool(out.terminated), bool(out.truncated)) == (term_ref, trunc_ref), t
            state = out.state
            if term_ref or trunc_ref:
                lengths.append(t + 1)
                break
    assert min(lengths) < 60 and max(lengths) == 500  # falls early, and runs into the limit


def test_reset_draws_the_start_uniformly_and_vmaps():
    env = CartPole()
    states, obs = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), 1000))
    assert obs.shape == (1000, 4) and obs.dtype == jnp.float32
    assert float(jnp.abs(obs).max()) <= 0.05 and float(jnp.abs(obs).max()) > 0.049
    assert int(states.t.sum()) == 0
