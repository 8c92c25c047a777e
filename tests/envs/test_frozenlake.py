"""FrozenLake (§17.1) against gymnasium's ``FrozenLake-v1`` as the oracle: the whole transition
table, step-for-step trajectories on deterministic ice (time limit included), and the sampled
outcomes of a slippery step matching the table's probabilities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from d2ljax.envs import FrozenLake, make_env

gym = pytest.importorskip("gymnasium")


@pytest.mark.parametrize("map_name", ["4x4", "8x8"])
@pytest.mark.parametrize("slippery", [True, False])
def test_transition_table_equals_gymnasium(map_name, slippery):
    ref = gym.make("FrozenLake-v1", map_name=map_name, is_slippery=slippery)
    env = FrozenLake(map_name, is_slippery=slippery)
    assert env.gymnasium_P() == ref.unwrapped.P  # every (p, s', r, done), in gymnasium's order
    assert env.max_episode_steps == ref.spec.max_episode_steps == 100
    assert env.start_state == int(np.flatnonzero(ref.unwrapped.initial_state_distrib)[0])
    # the dense table is the same MDP: rows sum to 1, P[s, a, s'] sums gymnasium's outcomes
    np.testing.assert_allclose(env.P.sum(-1), 1.0)
    P = np.zeros_like(env.P)
    for s, acts in ref.unwrapped.P.items():
        for a, outs in acts.items():
            for p, ns, r, _ in outs:
                P[s, a, ns] += p
                assert env.R[s, a, ns] == r
    np.testing.assert_allclose(env.P, P)


def test_other_success_rates_and_rewards_equal_gymnasium():
    kw = dict(success_rate=0.6, reward_schedule=(2, -1, 0))
    ref = gym.make("FrozenLake-v1", is_slippery=True, **kw)
    assert FrozenLake(is_slippery=True, **kw).gymnasium_P() == ref.unwrapped.P


def test_trajectories_equal_gymnasium_step_for_step():
    """Deterministic ice, random action sequences (some fall in holes, some reach the goal, an
    all-LEFT one runs into the 100-step limit): states, rewards, terminated, truncated equal."""
    ref = gym.make("FrozenLake-v1", is_slippery=False)
    env = FrozenLake(is_slippery=False)
    step = jax.jit(env.step)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 4, 100) for _ in range(30)] + [np.zeros(100, int)]
    seqs.append(np.array([1, 1, 2, 1, 2, 2] + [0] * 94))  # the shortest path to the goal
    ends = set()
    for actions in seqs:
        obs_ref, _ = ref.reset(seed=0)
        state, obs = env.reset(jax.random.key(0))
        assert int(obs) == obs_ref
        for t, a in enumerate(actions):
            o_ref, r_ref, term_ref, trunc_ref, _ = ref.step(int(a))
            out = step(state, a, jax.random.key(t))
            got = (int(out.obs), float(out.reward), bool(out.terminated), bool(out.truncated))
            assert got == (o_ref, r_ref, term_ref, trunc_ref), (actions, t)
            state = out.state
            if term_ref or trunc_ref:
                ends.add("goal" if r_ref > 0 else "hole" if term_ref else "time")
                break
    assert ends == {"goal", "hole", "time"}


def test_slippery_steps_sample_the_table():
    """From every (s, a) of the 4x4 map, 4000 vmapped jitted steps: the frequencies of the next
    states are the table's probabilities (1/3 each on slippery ice) within 0.03."""
    env = FrozenLake(is_slippery=True)
    S, A, n = env.num_states, env.num_actions, 4000
    keys = jax.random.split(jax.random.key(1), n)

    @jax.jit
    def next_states(s, a):
        state = env.reset()[0]._replace(s=s)
        return jax.vmap(lambda k: env.step(state, a, k).obs)(keys)

    for s in range(S):
        for a in range(A):
            freq = np.bincount(np.asarray(next_states(jnp.int32(s), jnp.int32(a))), minlength=S)
            np.testing.assert_allclose(freq / n, env.P[s, a], atol=0.03, err_msg=f"s={s} a={a}")


def test_bad_maps_are_refused():
    with pytest.raises(ValueError, match="unknown FrozenLake map"):
        FrozenLake("5x5")
    with pytest.raises(ValueError, match="rows of S, F, H, G"):
        FrozenLake(desc=["SFX", "FFG"])
    with pytest.raises(ValueError, match="exactly one start"):
        FrozenLake(desc=["SF", "SG"])
    with pytest.raises(KeyError, match="Did you mean frozenlake"):
        make_env("frozenlak")
