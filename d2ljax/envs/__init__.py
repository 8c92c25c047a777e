"""Reinforcement-learning environments as pure functions (book ch 17): ``reset(key)`` and
``step(state, action, key)`` that run under ``jit``, ``vmap`` and ``lax.scan``, so a whole
training run, environment included, compiles into one program.

- :class:`FrozenLake` -- gymnasium's ``FrozenLake-v1`` (§17.1-17.3), its transition table exact.
- :class:`CartPole` -- gymnasium's ``CartPole-v1`` dynamics (the deep-RL agents beyond the book).

Environments are sources, like datasets: they import nothing from the rest of the package but
the name registry. ``make_env("frozenlake", is_slippery=False)`` builds one by name (for
configs).
"""

from d2ljax.envs.cartpole import CartPole, CartPoleState
from d2ljax.envs.frozenlake import MAPS, FrozenLake, FrozenLakeState, Step
from d2ljax.registry import Registry

#: Environment name -> constructor.
ENVS: Registry = Registry("environment")
ENVS.register("frozenlake", FrozenLake)
ENVS.register("cartpole", CartPole)


def make_env(name: str, **kwargs):
    """The environment registered as ``name``, built with ``kwargs``."""
    return ENVS.build(name, **kwargs)


__all__ = [
    "ENVS",
    "MAPS",
    "CartPole",
    "CartPoleState",
    "FrozenLake",
    "FrozenLakeState",
    "Step",
    "make_env",
]
