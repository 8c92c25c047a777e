"""The actor-critic MLP of the deep-RL agents (PPO on CartPole; beyond the book, ch 17).

Two separate tanh MLPs on the observation, as in CleanRL's and PureJaxRL's CartPole PPO: the
actor gives action logits, the critic a state value. Orthogonal initialisation (gain sqrt 2 on
hidden layers, 0.01 on the logits, 1 on the value), zero biases. With 4 observations, 64 hidden
units and 2 actions: 4,610 actor + 4,545 critic = 9,155 parameters.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["ActorCritic"]


def _dense(din, dout, gain, rngs):
    return nnx.Linear(din, dout, kernel_init=nnx.initializers.orthogonal(gain),
                      bias_init=nnx.initializers.zeros_init(), rngs=rngs)


class ActorCritic(nnx.Module):
    """``model(obs_BD) -> (logits_BA, value_B)``."""

    def __init__(self, obs_dim: int, num_actions: int, num_hiddens: int = 64, *, rngs: nnx.Rngs):
        g = math.sqrt(2.0)
        self.actor = nnx.List([
            _dense(obs_dim, num_hiddens, g, rngs),
            _dense(num_hiddens, num_hiddens, g, rngs),
            _dense(num_hiddens, num_actions, 0.01, rngs),
        ])
        self.critic = nnx.List([
            _dense(obs_dim, num_hiddens, g, rngs),
            _dense(num_hiddens, num_hiddens, g, rngs),
            _dense(num_hiddens, 1, 1.0, rngs),
        ])

    @staticmethod
    def _mlp(layers, x):
        for layer in layers[:-1]:
            x = jnp.tanh(layer(x))
        return layers[-1](x)

    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._mlp(self.actor, obs), self._mlp(self.critic, obs)[..., 0]
