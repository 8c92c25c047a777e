"""FrozenLake (book §17.1) as pure JAX functions: ``reset(key)`` and ``step(state, action, key)``.

The MDP is gymnasium's ``FrozenLake-v1`` exactly (its map, its slippery dynamics, its rewards and
its 100-step time limit; ``tests/envs/test_frozenlake.py`` compares the whole transition table
with gymnasium's ``env.unwrapped.P``): the agent starts at ``S`` and walks on frozen tiles ``F``
to the goal ``G`` (reward 1) without falling into a hole ``H``; ``G`` and ``H`` end the episode
(``terminated``), as does the time limit (``truncated``, also set on a last step that terminates,
as gymnasium's ``TimeLimit`` does).
On slippery ice the agent moves in the intended direction with probability ``success_rate``
(1/3) and to either perpendicular direction with probability ``(1 - success_rate) / 2``; a move
off the grid leaves it where it is. Actions: 0 left, 1 down, 2 right, 3 up. States: ``row *
ncol + col``.

The tables are plain numpy arrays built once on the host (:attr:`FrozenLake.outcomes` in
gymnasium's layout, :attr:`FrozenLake.P` / :attr:`FrozenLake.R` as dense ``[S, A, S']``
matrices for dynamic programming); ``reset`` and ``step`` read them as constants, so they run
under ``jit``, ``vmap`` and ``lax.scan``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["FrozenLake", "FrozenLakeState", "MAPS", "Step"]

#: gymnasium's two named maps.
MAPS = {
    "4x4": ("SFFF", "FHFH", "FFFH", "HFFG"),
    "8x8": (
        "SFFFFFFF",
        "FFFFFFFF",
        "FFFHFFFF",
        "FFFFFHFF",
        "FFFHFFFF",
        "FHHFFFHF",
        "FHFFHFHF",
        "FFFHFFFG",
    ),
}

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3


class FrozenLakeState(NamedTuple):
    """Where the agent is (``s``, int32) and how many steps the episode has taken (``t``)."""

    s: jax.Array
    t: jax.Array


class Step(NamedTuple):
    """What :meth:`FrozenLake.step` returns: the new state, the observation (the state index),
    the reward, whether the episode ended in ``G``/``H`` (``terminated``) or hit the time limit
    (``truncated``)."""

    state: FrozenLakeState
    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array


class FrozenLake:
    """gymnasium's ``FrozenLake-v1``, functional (see the module docstring).

    Args:
      map_name: ``"4x4"`` (the book's) or ``"8x8"``; ignored when ``desc`` is given.
      desc: a map as rows of ``S F H G`` letters.
      is_slippery: the stochastic ice (gymnasium's default, True).
      success_rate: the probability of moving as intended on slippery ice.
      reward_schedule: rewards for reaching ``G``, ``H`` and ``F`` (gymnasium's ``(1, 0, 0)``).
      max_episode_steps: the time limit (``FrozenLake-v1``'s 100, for either map).
    """

    num_actions = 4

    def __init__(
        self,
        map_name: str = "4x4",
        *,
        desc=None,
        is_slippery: bool = True,
        success_rate: float = 1.0 / 3.0,
        reward_schedule: tuple[float, float, float] = (1.0, 0.0, 0.0),
        max_episode_steps: int = 100,
    ):
        if desc is None:
            if map_name not in MAPS:
                raise ValueError(f"unknown FrozenLake map {map_name!r}; known: {', '.join(MAPS)}")
            desc = MAPS[map_name]
        rows = [str(r) for r in desc]
        if not rows or len({len(r) for r in rows}) != 1 or set("".join(rows)) - set("SFHG"):
            raise ValueError(f"a FrozenLake map is equal-length rows of S, F, H, G; got {desc!r}")
        if "".join(rows).count("S") != 1:
            raise ValueError("a FrozenLake map has exactly one start tile S")
        if not 0.0 <= success_rate <= 1.0:
            raise ValueError(f"success_rate must be in [0, 1], got {success_rate}")
        self.desc = tuple(rows)
        self.nrow, self.ncol = len(rows), len(rows[0])
        self.num_states = self.nrow * self.ncol
        self.is_slippery = bool(is_slippery)
        self.success_rate = float(success_rate)
        self.reward_schedule = tuple(float(r) for r in reward_schedule)
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        self.max_episode_steps = int(max_episode_steps)
        self.start_state = "".join(rows).index("S")
        self._build_tables()

    def _build_tables(self) -> None:
        flat = "".join(self.desc)
        S, A = self.num_states, self.num_actions
        K = 3 if self.is_slippery else 1
        prob = np.zeros((S, A, K))
        nxt = np.zeros((S, A, K), np.int32)
        rew = np.zeros((S, A, K))
        done = np.zeros((S, A, K), bool)
        fail = (1.0 - self.success_rate) / 2.0
        for s in range(S):
            row, col = divmod(s, self.ncol)
            for a in range(A):
                if flat[s] in "GH":  # absorbing: stays, reward 0, done
                    prob[s, a] = 0.0
                    prob[s, a, 0] = 1.0
                    nxt[s, a] = s
                    done[s, a] = True
                    continue
                dirs = [(a - 1) % 4, a, (a + 1) % 4] if self.is_slippery else [a]
                for k, b in enumerate(dirs):
                    r, c = row, col
                    if b == LEFT:
                        c = max(c - 1, 0)
                    elif b == DOWN:
                        r = min(r + 1, self.nrow - 1)
                    elif b == RIGHT:
                        c = min(c + 1, self.ncol - 1)
                    else:
                        r = max(r - 1, 0)
                    ns = r * self.ncol + c
                    letter = flat[ns]
                    prob[s, a, k] = (self.success_rate if b == a else fail) if K == 3 else 1.0
                    nxt[s, a, k] = ns
                    rew[s, a, k] = self.reward_schedule[
                        "GHF".index(letter if letter in "GH" else "F")
                    ]
                    done[s, a, k] = letter in "GH"
        #: gymnasium's ``P[s][a]`` as arrays ``[S, A, K]``: probability, next state, reward, done.
        self.outcomes = (prob, nxt, rew, done)
        P = np.zeros((S, A, S))
        R = np.zeros((S, A, S))
        for k in range(K):
            np.add.at(P, (np.arange(S)[:, None], np.arange(A)[None, :], nxt[..., k]), prob[..., k])
            # the reward of (s, a, s') is the same for every outcome that lands in s'
            R[np.arange(S)[:, None], np.arange(A)[None, :], nxt[..., k]] = rew[..., k]
        #: ``P[s, a, s']``: transition probabilities; rows sum to 1.
        self.P = P
        #: ``R[s, a, s']``: the reward of that transition.
        self.R = R
        #: ``[S]``: the tiles that end an episode (holes and the goal).
        self.terminal = np.array([c in "GH" for c in flat])

    def gymnasium_P(self) -> dict:
        """The table in gymnasium's form, ``{s: {a: [(p, s', r, done), ...]}}``."""
        prob, nxt, rew, done = self.outcomes
        K = prob.shape[-1]
        out = {}
        for s in range(self.num_states):
            out[s] = {}
            for a in range(self.num_actions):
                if self.terminal[s]:
                    out[s][a] = [(1.0, s, 0.0, True)]
                else:
                    out[s][a] = [
                        (
                            float(prob[s, a, k]),
                            int(nxt[s, a, k]),
                            float(rew[s, a, k]),
                            bool(done[s, a, k]),
                        )
                        for k in range(K)
                    ]
        return out

    def reset(self, key: jax.Array | None = None) -> tuple[FrozenLakeState, jax.Array]:
        """The start state and its observation (the map's one ``S``; ``key`` is unused, kept so
        every environment resets the same way)."""
        del key
        s = jnp.int32(self.start_state)
        return FrozenLakeState(s, jnp.int32(0)), s

    def step(self, state: FrozenLakeState, action, key: jax.Array) -> Step:
        """One move: draw the outcome of ``action`` from ``state`` with ``key``. A step from a
        terminal tile stays there with reward 0, as gymnasium's table says (callers stop or
        reset at ``terminated | truncated``)."""
        prob, nxt, rew, done = (jnp.asarray(x) for x in self.outcomes)
        s, a = state.s, jnp.asarray(action, jnp.int32)
        k = jax.random.categorical(key, jnp.log(prob[s, a]))
        ns = nxt[s, a, k]
        t = state.t + 1
        return Step(
            FrozenLakeState(ns, t),
            ns,
            rew[s, a, k].astype(jnp.float32),
            done[s, a, k],
            t >= self.max_episode_steps,
        )

    def __repr__(self) -> str:
        return (
            f"FrozenLake({'x'.join(map(str, (self.nrow, self.ncol)))}, "
            f"is_slippery={self.is_slippery})"
        )
