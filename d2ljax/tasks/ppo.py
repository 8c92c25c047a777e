"""Proximal policy optimisation (Schulman et al. 2017; beyond the book's ch 17), the whole
iteration in one compiled step: environment rollout, GAE and the minibatch epochs.

A train step of :class:`PPOTask` is one PPO iteration, as PureJaxRL writes it: ``num_envs``
environments (vmapped, reset automatically when an episode ends) step ``num_steps`` times under
the current policy (one ``lax.scan``); advantages by GAE (``gamma``, ``gae_lambda``); then
``update_epochs`` passes over the ``num_envs * num_steps`` transitions in ``num_minibatches``
shuffled minibatches, each an Adam step (gradient clipped at ``max_grad_norm``) on the clipped
surrogate objective plus ``vf_coef`` times the clipped value loss minus ``ent_coef`` times the
entropy. The environment is anything with ``reset(key)`` / ``step(state, action, key)`` (see
:mod:`d2ljax.envs`); the model any module ``obs -> (logits, value)``
(:class:`~d2ljax.models.actor_critic.ActorCritic`).

Everything the step needs is in its state (parameters, optimizer, environment states, the key),
so ``fit(task, None, steps_per_epoch=N)`` trains, checkpoints and resumes it, and
:func:`train_ppo` runs ``n`` iterations as one ``lax.scan`` that ``vmap`` runs over seeds.
Reported sums: ``return``, the undiscounted returns of the episodes that ended in the step,
divided by their number (``count``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from d2ljax.train.task import Task, TaskState

__all__ = ["PPOState", "PPOTask", "train_ppo"]


class PPOState(TaskState, struct.PyTreeNode):
    step: jax.Array
    params: nnx.State
    opt_state: optax.OptState
    env_state: object
    obs: jax.Array
    ep_return: jax.Array
    rng: jax.Array


class PPOTask(Task):
    """PPO on ``env`` with ``model`` (see the module docstring; defaults are PureJaxRL's
    CartPole settings; ``anneal_iterations=N`` decays the learning rate linearly to 0 over N
    iterations, as PureJaxRL does over its whole run, None keeps it constant)."""

    def __init__(
        self,
        model: nnx.Module,
        env,
        *,
        num_envs: int = 4,
        num_steps: int = 128,
        update_epochs: int = 4,
        num_minibatches: int = 4,
        learning_rate: float = 2.5e-4,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_eps: float = 0.2,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        anneal_iterations: int | None = None,
    ):
        if (num_envs * num_steps) % num_minibatches:
            raise ValueError(
                f"num_envs * num_steps ({num_envs * num_steps}) must divide into "
                f"{num_minibatches} minibatches"
            )
        self.graphdef, self.params0 = nnx.split(model)
        self.env = env
        self.num_envs, self.num_steps = int(num_envs), int(num_steps)
        self.update_epochs, self.num_minibatches = int(update_epochs), int(num_minibatches)
        self.gamma, self.gae_lambda, self.clip_eps = float(gamma), float(gae_lambda), clip_eps
        self.ent_coef, self.vf_coef = float(ent_coef), float(vf_coef)
        lr = learning_rate
        if anneal_iterations:  # PureJaxRL's linear decay to 0 over the run's minibatch steps
            lr = optax.linear_schedule(
                learning_rate, 0.0, int(anneal_iterations) * self.update_epochs * num_minibatches
            )
        self.tx = optax.chain(optax.clip_by_global_norm(max_grad_norm),
                              optax.adam(lr, eps=1e-5))

    # -- the pieces of one iteration ------------------------------------------------------

    def _apply(self, params, obs):
        return nnx.merge(self.graphdef, params)(obs)

    def init(self, rng, spec=None):
        k_env, k_run = jax.random.split(rng)
        env_state, obs = jax.vmap(self.env.reset)(jax.random.split(k_env, self.num_envs))
        # fresh buffers: fit donates the state, and an environment's observation may be the
        # very array its state holds (CartPole's physics)
        copy = lambda tree: jax.tree.map(lambda x: jnp.array(x, copy=True), tree)
        params = copy(self.params0)
        return PPOState(jnp.zeros((), jnp.int32), params, self.tx.init(params), env_state,
                        copy(obs), jnp.zeros(self.num_envs), k_run)

    def _rollout(self, state, key):
        env = self.env

        def one(carry, k):
            env_state, obs, ep_ret = carry
            k_act, k_step, k_reset = jax.random.split(k, 3)
            logits, value = self._apply(state.params, obs)
            action = jax.random.categorical(k_act, logits)
            logp = jax.nn.log_softmax(logits)[jnp.arange(self.num_envs), action]
            out = jax.vmap(env.step)(env_state, action, jax.random.split(k_step, self.num_envs))
            done = out.terminated | out.truncated
            ep_ret = ep_ret + out.reward
            fresh_state, fresh_obs = jax.vmap(env.reset)(jax.random.split(k_reset, self.num_envs))
            pick = lambda new, old: jnp.where(done.reshape(done.shape + (1,) * (new.ndim - 1)),
                                              new, old)
            env_state = jax.tree.map(pick, fresh_state, out.state)
            next_obs = pick(fresh_obs, out.obs)
            finished = (jnp.where(done, ep_ret, 0.0).sum(), done.sum())
            ep_ret = jnp.where(done, 0.0, ep_ret)
            transition = (obs, action, logp, value, out.reward, done)
            return (env_state, next_obs, ep_ret), (transition, finished)

        carry = (state.env_state, state.obs, state.ep_return)
        carry, (traj, finished) = jax.lax.scan(one, carry, jax.random.split(key, self.num_steps))
        return carry, traj, finished

    def _gae(self, traj, last_value):
        _, _, _, value, reward, done = traj

        def back(carry, x):
            gae, next_value = carry
            v, r, d = x
            delta = r + self.gamma * next_value * (1 - d) - v
            gae = delta + self.gamma * self.gae_lambda * (1 - d) * gae
            return (gae, v), gae

        _, adv = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value),
                              (value, reward, done.astype(jnp.float32)), reverse=True)
        return adv, adv + value

    def loss(self, params, batch):
        """The PPO loss of a minibatch ``(obs, action, logp_old, value_old, advantage,
        target)`` and its parts."""
        obs, action, logp_old, value_old, adv, target = batch
        logits, value = self._apply(params, obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, action[:, None], axis=1)[:, 0]
        v_clip = value_old + jnp.clip(value - value_old, -self.clip_eps, self.clip_eps)
        v_loss = 0.5 * jnp.maximum((value - target) ** 2, (v_clip - target) ** 2).mean()
        ratio = jnp.exp(logp - logp_old)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - self.clip_eps, 1 + self.clip_eps) * adv)
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        total = pg.mean() + self.vf_coef * v_loss - self.ent_coef * entropy
        return total, (pg.mean(), v_loss, entropy)

    def train_step(self, state, batch):
        key = jax.random.fold_in(state.rng, state.step)
        k_roll, k_upd = jax.random.split(key)
        (env_state, obs, ep_ret), traj, (ret_sum, n_done) = self._rollout(state, k_roll)
        _, last_value = self._apply(state.params, obs)
        adv, target = self._gae(traj, last_value)
        o, a, logp, v, _, _ = traj
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), (o, a, logp, v, adv, target))
        n = self.num_envs * self.num_steps
        mb = n // self.num_minibatches

        def epoch(carry, k):
            def minibatch(carry, idx):
                params, opt_state = carry
                grads, _ = jax.grad(self.loss, has_aux=True)(params, jax.tree.map(
                    lambda x: x[idx], flat))
                updates, opt_state = self.tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            perm = jax.random.permutation(k, n).reshape(self.num_minibatches, mb)
            return jax.lax.scan(minibatch, carry, perm)[0], None

        (params, opt_state), _ = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(k_upd, self.update_epochs))
        new = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                            env_state=env_state, obs=obs, ep_return=ep_ret)
        return new, {"return": ret_sum.sum(), "count": n_done.sum().astype(jnp.float32)}

    def model(self, state):
        return nnx.merge(self.graphdef, state.params)


def train_ppo(task: PPOTask, key: jax.Array, num_iterations: int):
    """``num_iterations`` PPO iterations from ``task.init(key)`` as one ``lax.scan`` (jit it,
    and ``vmap`` it over keys for seeds): ``(state, returns [num_iterations])``, each the mean
    return of the episodes that ended in that iteration (NaN where none did)."""
    def it(state, _):
        state, sums = task.train_step(state, {})
        return state, sums["return"] / jnp.where(sums["count"] > 0, sums["count"], jnp.nan)

    return jax.lax.scan(it, task.init(key), None, length=num_iterations)
