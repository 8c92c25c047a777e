"""CartPole (gymnasium's ``CartPole-v1``) as pure JAX functions, for the deep-RL agents.

The dynamics are gymnasium's (Barto, Sutton & Anderson 1983; Euler steps of 0.02 s, force 10 N
left or right), computed in float32: a pole on a cart starts upright within ``U(-0.05, 0.05)``
in each of ``(x, x_dot, theta, theta_dot)``; every step earns reward 1 (the terminating one too);
the episode terminates when ``|x| > 2.4`` or ``|theta| > 12 degrees`` and is truncated after 500
steps. ``tests/envs/test_cartpole.py`` compares trajectories step for step with gymnasium's from
the same start states and actions.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from d2ljax.envs.frozenlake import Step

__all__ = ["CartPole", "CartPoleState"]


class CartPoleState(NamedTuple):
    """``physics`` ``[4]`` = (x, x_dot, theta, theta_dot) and the step count ``t``."""

    physics: jax.Array
    t: jax.Array


class CartPole:
    """gymnasium's ``CartPole-v1``, functional: ``reset(key) -> (state, obs)``, ``step(state,
    action, key) -> Step`` (``key`` unused: the dynamics are deterministic). Observations are
    the physics, float32 ``[4]``; actions 0 (push left) and 1 (push right)."""

    num_actions = 2
    obs_shape = (4,)
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    x_threshold = 2.4
    theta_threshold_radians = 12 * 2 * math.pi / 360

    def __init__(self, max_episode_steps: int = 500):
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        self.max_episode_steps = int(max_episode_steps)

    def reset(self, key: jax.Array) -> tuple[CartPoleState, jax.Array]:
        physics = jax.random.uniform(key, (4,), jnp.float32, -0.05, 0.05)
        return CartPoleState(physics, jnp.int32(0)), physics

    def step(self, state: CartPoleState, action, key: jax.Array | None = None) -> Step:
        del key
        x, x_dot, theta, theta_dot = state.physics
        total_mass = self.masspole + self.masscart
        polemass_length = self.masspole * self.length
        force = jnp.where(jnp.asarray(action) == 1, self.force_mag, -self.force_mag)
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
        thetaacc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos**2 / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * cos / total_mass
        physics = jnp.stack([
            x + self.tau * x_dot,
            x_dot + self.tau * xacc,
            theta + self.tau * theta_dot,
            theta_dot + self.tau * thetaacc,
        ]).astype(jnp.float32)
        terminated = (jnp.abs(physics[0]) > self.x_threshold) | (
            jnp.abs(physics[2]) > self.theta_threshold_radians
        )
        t = state.t + 1
        return Step(CartPoleState(physics, t), physics, jnp.float32(1.0), terminated,
                    t >= self.max_episode_steps)

    def __repr__(self) -> str:
        return f"CartPole(max_episode_steps={self.max_episode_steps})"
