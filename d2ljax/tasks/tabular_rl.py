"""Tabular reinforcement learning (book §17.2 value iteration, §17.3 Q-learning), jitted.

Both work on any environment that offers what :class:`d2ljax.envs.FrozenLake` offers: ``P`` and
``R`` (``[S, A, S']`` transition probabilities and rewards) for value iteration; ``reset(key)``,
``step(state, action, key)``, ``num_states``, ``num_actions`` and ``max_episode_steps`` for
Q-learning and for measuring a policy.

Two ways to run each, with the same numbers:

* plain functions a reader can follow: :func:`value_iteration` (the book's ``V``, ``Q`` and
  ``pi`` arrays over iterations, one ``lax.scan``), :func:`q_learning` (the book's loop: episodes
  of epsilon-greedy steps, each followed by the update ``Q[s, a] += alpha (r + gamma max Q[s'] -
  Q[s, a])``, all episodes one ``lax.scan``) and :func:`success_rate` (a policy's Monte-Carlo
  success rate over many vmapped episodes);
* :class:`ValueIterationTask` and :class:`QLearningTask`: the same steps as
  :class:`~d2ljax.train.Task`\\ s for :func:`d2ljax.train.fit` (one sweep, or one episode, a
  step; checkpoints and resume; the validation pass is :func:`success_rate` of the greedy
  policy over the episode ids of ``evaluation_episodes(n)``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from d2ljax.train.task import Task, TaskState

__all__ = [
    "QLearningResult",
    "QLearningState",
    "QLearningTask",
    "ValueIterationState",
    "ValueIterationTask",
    "bellman_backup",
    "epsilon_greedy",
    "evaluation_episodes",
    "q_learning",
    "q_learning_episode",
    "run_episode",
    "success_rate",
    "value_iteration",
]

#: The key every policy measurement draws its episodes from (``fold_in(key, episode id)``): two
#: policies measured on the same ids meet the same ice.
EVAL_SEED = 2026


def bellman_backup(P, R, V, gamma):
    """``Q[s, a] = sum_s' P[s, a, s'] (R[s, a, s'] + gamma V[s'])`` (book eq. 17.2.4)."""
    return jnp.einsum("sat,sat->sa", P, R + gamma * V[None, None, :])


def value_iteration(env, gamma: float = 0.95, num_iters: int = 10):
    """The book's value iteration from ``V_0 = 0``: ``(V [K+1, S], Q [K+1, S, A], pi [K+1, S])``
    for iterations ``0..K`` (row 0 all zeros, as the book's arrays), ``pi`` the greedy action
    (the first of equal ones)."""
    P = jnp.asarray(env.P, jnp.float32)
    R = jnp.asarray(env.R, jnp.float32)
    return _value_iteration(P, R, jnp.float32(gamma), int(num_iters))


@jax.jit(static_argnums=3)
def _value_iteration(P, R, gamma, num_iters):
    S, A = P.shape[:2]

    def sweep(V, _):
        Q = bellman_backup(P, R, V, gamma)
        return Q.max(axis=1), (Q.max(axis=1), Q, Q.argmax(axis=1))

    _, (V, Q, pi) = jax.lax.scan(sweep, jnp.zeros(S, jnp.float32), None, length=num_iters)
    zero = (jnp.zeros((1, S)), jnp.zeros((1, S, A)), jnp.zeros((1, S), pi.dtype))
    return tuple(jnp.concatenate([z, x]) for z, x in zip(zero, (V, Q, pi), strict=True))


def epsilon_greedy(key, Q_s, epsilon):
    """The book's ``e_greedy``: with probability ``epsilon`` a uniformly random action, else
    ``argmax Q_s`` (the first of equal ones)."""
    k_explore, k_action = jax.random.split(key)
    random_action = jax.random.randint(k_action, (), 0, Q_s.shape[-1])
    return jnp.where(jax.random.uniform(k_explore) < epsilon, random_action, jnp.argmax(Q_s))


def run_episode(env, policy_S, key):
    """Play one episode with the deterministic policy ``policy_S`` (an action per state):
    ``(return, length)``; the episode ends at ``terminated | truncated``."""
    state, obs = env.reset(key)

    def step(carry, k):
        state, obs, alive, ret, length = carry
        out = env.step(state, policy_S[obs], k)
        ret = ret + jnp.where(alive, out.reward, 0.0)
        length = length + alive.astype(jnp.int32)
        alive = alive & ~(out.terminated | out.truncated)
        return (out.state, out.obs, alive, ret, length), None

    init = (state, obs, jnp.bool_(True), jnp.float32(0), jnp.int32(0))
    keys = jax.random.split(key, env.max_episode_steps)
    (_, _, _, ret, length), _ = jax.lax.scan(step, init, keys)
    return ret, length


def evaluation_episodes(num_episodes: int, batch_size: int | None = None) -> list[dict]:
    """Episode ids ``0..n-1`` as batches ``{"episode": int32 [B]}`` (one batch by default): the
    validation data of the tabular Tasks."""
    ids = np.arange(num_episodes, dtype=np.int32)
    b = batch_size or num_episodes
    return [{"episode": ids[i : i + b]} for i in range(0, num_episodes, b)]


def _success_sums(env, policy_S, episode_ids, mask=None):
    base = jax.random.key(EVAL_SEED)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(episode_ids)
    ret, length = jax.vmap(lambda k: run_episode(env, policy_S, k))(keys)
    w = jnp.ones_like(ret) if mask is None else mask.astype(jnp.float32)
    return {
        "success": (w * (ret > 0)).sum(),
        "return": (w * ret).sum(),
        "length": (w * length).sum(),
        "count": w.sum(),
    }


def success_rate(env, policy_S, num_episodes: int = 10_000) -> float:
    """The fraction of ``num_episodes`` episodes (vmapped, on the fixed evaluation episodes)
    in which ``policy_S`` reaches a positive reward (FrozenLake: the goal)."""
    sums = _success_jit(env, jnp.asarray(policy_S, jnp.int32), int(num_episodes))
    return float(sums["success"] / sums["count"])


@jax.jit(static_argnums=(0, 2))
def _success_jit(env, policy_S, num_episodes):
    return _success_sums(env, policy_S, jnp.arange(num_episodes, dtype=jnp.int32))


def q_learning_episode(env, Q, key, *, gamma, alpha, epsilon):
    """One episode of the book's Q-learning from the start state: epsilon-greedy actions, each
    followed by ``Q[s, a] += alpha (r + gamma max_a' Q[s', a'] - Q[s, a])``. Returns ``(Q,
    return, length)``. Like the book, the target bootstraps from ``s'`` whether or not the episode
    ended there: a terminal state's row is never updated, so it stays 0."""
    k_reset, k_steps = jax.random.split(key)
    state, obs = env.reset(k_reset)

    def step(carry, k):
        Q, state, obs, alive, ret, length = carry
        k_act, k_env = jax.random.split(k)
        a = epsilon_greedy(k_act, Q[obs], epsilon)
        out = env.step(state, a, k_env)
        y = out.reward + gamma * Q[out.obs].max()
        Q = Q.at[obs, a].add(jnp.where(alive, alpha * (y - Q[obs, a]), 0.0))
        ret = ret + jnp.where(alive, out.reward, 0.0)
        length = length + alive.astype(jnp.int32)
        alive = alive & ~(out.terminated | out.truncated)
        return (Q, out.state, out.obs, alive, ret, length), None

    init = (Q, state, obs, jnp.bool_(True), jnp.float32(0), jnp.int32(0))
    keys = jax.random.split(k_steps, env.max_episode_steps)
    (Q, *_, ret, length), _ = jax.lax.scan(step, init, keys)
    return Q, ret, length


class QLearningResult(NamedTuple):
    """:func:`q_learning`'s output: the final ``Q [S, A]``, the book's ``V = max_a Q`` and ``pi =
    argmax_a Q`` after each episode (``[K+1, S]``, row 0 before the first), and each episode's
    return ``[K]``."""

    Q: jax.Array
    V: jax.Array
    pi: jax.Array
    returns: jax.Array


def q_learning(
    env,
    key: jax.Array,
    *,
    gamma: float = 0.95,
    num_episodes: int = 256,
    alpha: float = 0.9,
    epsilon: float = 0.9,
) -> QLearningResult:
    """The book's tabular Q-learning (§17.3; its settings are the defaults): ``num_episodes``
    episodes from ``Q = 0``, episode ``k`` drawing from ``fold_in(key, k)`` (as
    :class:`QLearningTask` does). One compiled ``lax.scan`` over the episodes."""
    return _q_learning(env, key, jnp.float32(gamma), int(num_episodes), jnp.float32(alpha),
                       jnp.float32(epsilon))


@jax.jit(static_argnums=(0, 3))
def _q_learning(env, key, gamma, num_episodes, alpha, epsilon):
    Q0 = jnp.zeros((env.num_states, env.num_actions), jnp.float32)

    def episode(Q, k):
        Q, ret, _ = q_learning_episode(
            env, Q, jax.random.fold_in(key, k), gamma=gamma, alpha=alpha, epsilon=epsilon
        )
        return Q, (Q.max(axis=1), Q.argmax(axis=1), ret)

    Q, (V, pi, returns) = jax.lax.scan(episode, Q0, jnp.arange(num_episodes))
    V = jnp.concatenate([Q0.max(axis=1)[None], V])
    pi = jnp.concatenate([Q0.argmax(axis=1)[None], pi])
    return QLearningResult(Q, V, pi, returns)


class ValueIterationState(TaskState, struct.PyTreeNode):
    step: jax.Array
    V: jax.Array
    Q: jax.Array


class ValueIterationTask(Task):
    """Value iteration as a Task: a train step is one sweep ``V <- max_a Q(V)`` over the
    environment's table (no data: ``fit(task, None, steps_per_epoch=1, epochs=10)`` is the book's
    10 iterations). Its sums: ``v_start`` (V of the start state after the sweep) and ``delta``
    (``max |V_new - V|``). The validation pass measures the greedy policy's success rate on
    episode ids (:func:`evaluation_episodes`). ``model(state)`` is ``Q [S, A]``."""

    def __init__(self, env, gamma: float = 0.95):
        self.env, self.gamma = env, float(gamma)

    def init(self, rng, spec=None):
        S, A = self.env.num_states, self.env.num_actions
        return ValueIterationState(jnp.zeros((), jnp.int32), jnp.zeros(S), jnp.zeros((S, A)))

    def train_step(self, state, batch):
        P = jnp.asarray(self.env.P, jnp.float32)
        R = jnp.asarray(self.env.R, jnp.float32)
        Q = bellman_backup(P, R, state.V, self.gamma)
        V = Q.max(axis=1)
        sums = {
            "v_start": V[self.env.start_state],
            "delta": jnp.abs(V - state.V).max(),
            "count": jnp.float32(1),
        }
        return state.replace(step=state.step + 1, V=V, Q=Q), sums

    def eval_step(self, state, batch):
        return _success_sums(self.env, state.Q.argmax(axis=1), batch["episode"],
                             batch.get("mask"))

    def model(self, state):
        return state.Q


class QLearningState(TaskState, struct.PyTreeNode):
    step: jax.Array
    Q: jax.Array
    rng: jax.Array


class QLearningTask(Task):
    """Tabular Q-learning as a Task: a train step is one episode of :func:`q_learning_episode`
    drawn from ``fold_in(rng, episode)`` (so ``fit(task, None, steps_per_epoch=32, epochs=8)``
    is the book's 256 episodes and ends with the Q table :func:`q_learning` computes from the
    same key). Its sums: the episodes' ``return`` and ``length``. The validation pass measures
    the greedy policy ``argmax_a Q`` (:func:`evaluation_episodes`). ``model(state)`` is ``Q``."""

    def __init__(self, env, *, gamma: float = 0.95, alpha: float = 0.9, epsilon: float = 0.9):
        for name, v in (("gamma", gamma), ("alpha", alpha), ("epsilon", epsilon)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        self.env = env
        self.gamma, self.alpha, self.epsilon = float(gamma), float(alpha), float(epsilon)

    def init(self, rng, spec=None):
        Q = jnp.zeros((self.env.num_states, self.env.num_actions), jnp.float32)
        return QLearningState(jnp.zeros((), jnp.int32), Q, rng)

    def train_step(self, state, batch):
        Q, ret, length = q_learning_episode(
            self.env, state.Q, jax.random.fold_in(state.rng, state.step),
            gamma=self.gamma, alpha=self.alpha, epsilon=self.epsilon,
        )
        sums = {"return": ret, "length": length.astype(jnp.float32), "count": jnp.float32(1)}
        return state.replace(step=state.step + 1, Q=Q), sums

    def eval_step(self, state, batch):
        return _success_sums(self.env, state.Q.argmax(axis=1), batch["episode"],
                             batch.get("mask"))

    def model(self, state):
        return state.Q
