"""From a reinforcement-learning config to a trained agent (book ch 17): the environment, the
Task, then ``fit`` with no data.

An RL config is an experiment config (``configs/value_iteration.py``, ``configs/qlearning.py``)
whose ``data`` names an environment (``data.name`` in :data:`d2ljax.envs.ENVS`, ``data.kwargs``
its arguments), whose ``model`` names the agent (``model.name`` in :data:`AGENTS`,
``model.kwargs`` its settings: ``gamma``, ``alpha``, ...) and which has an ``rl`` group:
``rl.steps_per_epoch`` (sweeps or episodes an epoch) and ``rl.eval_episodes`` (the greedy
policy's success rate is measured on that many episodes after every epoch; 0: not measured).
:func:`d2ljax.experiment.validate` and :func:`d2ljax.experiment.run` hand such a config here, so
``d2ljax train qlearning`` checks, checkpoints, resumes and reports as any other run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from d2ljax.config import Config, ConfigError
from d2ljax.envs import ENVS, make_env
from d2ljax.registry import Registry, UnknownNameError
from d2ljax.tasks.tabular_rl import QLearningTask, ValueIterationTask, evaluation_episodes
from d2ljax.train import FitResult, fit

__all__ = ["AGENTS", "build_rl", "is_rl", "run_rl", "validate_rl"]

def _ppo(env, seed: int = 0, *, num_hiddens: int = 64, **kwargs):
    """PPO with an :class:`~d2ljax.models.actor_critic.ActorCritic` sized for ``env``."""
    from flax import nnx

    from d2ljax.models.actor_critic import ActorCritic
    from d2ljax.tasks.ppo import PPOTask

    model = ActorCritic(env.obs_shape[0], env.num_actions, num_hiddens, rngs=nnx.Rngs(seed))
    return PPOTask(model, env, **kwargs)


#: Agent name -> ``Task`` constructor ``(env, seed, **model.kwargs)`` (``seed``: the config's,
#: for the parameters a constructor initialises).
AGENTS: Registry = Registry("agent", error=ConfigError)
AGENTS.register("value_iteration", lambda env, seed, **kw: ValueIterationTask(env, **kw),
                description="§17.2, on the env's table")
AGENTS.register("q_learning", lambda env, seed, **kw: QLearningTask(env, **kw),
                description="§17.3, tabular, epsilon-greedy")
AGENTS.register("ppo", _ppo, description="PPO with an actor-critic MLP (beyond the book)")


def is_rl(cfg) -> bool:
    """Whether ``cfg`` is an RL config (it has an ``rl`` group)."""
    return cfg.get("rl") is not None


def build_rl(cfg: Config):
    """``(env, task)`` of an RL config; a bad name or setting is a :class:`ConfigError`."""
    try:
        ENVS.entry(cfg.data.name)
    except UnknownNameError as e:
        raise ConfigError(f"config key `data.name`: {e.args[0] if e.args else e}") from None
    AGENTS.entry(cfg.model.name)
    try:
        env = make_env(cfg.data.name, **dict(cfg.data.get("kwargs", {})))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config key `data.kwargs` ({cfg.data.name}): {e}") from None
    try:
        task = AGENTS.build(cfg.model.name, env, int(cfg.get("seed", 0)),
                            **dict(cfg.model.get("kwargs", {})))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config key `model.kwargs` ({cfg.model.name}): {e}") from None
    return env, task


def validate_rl(cfg: Config) -> None:
    """Check an RL config before any work: its names and settings (the environment and the
    agent are built; both are cheap)."""
    build_rl(cfg)


def run_rl(
    cfg: Config,
    workdir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    callbacks: Sequence = (),
) -> FitResult:
    """Train the agent of an RL config (see the module docstring) with ``fit`` and no data;
    with a workdir it is checked, locked and gets ``config.json`` as every run does."""
    from d2ljax.experiment import claimed_workdir, write_config

    env, task = build_rl(cfg)
    n_eval = int(cfg.rl.get("eval_episodes", 0))
    kwargs = dict(
        epochs=cfg.epochs,
        steps_per_epoch=int(cfg.rl.steps_per_epoch),
        val_data=evaluation_episodes(n_eval) if n_eval else None,
        seed=cfg.seed,
        checkpoint_every=cfg.get("checkpoint_every", 1),
        on_nonfinite=cfg.get("on_nonfinite") or "stop",
        callbacks=list(callbacks),
        mesh=None,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
    if cfg.get("steps_per_call"):
        kwargs["steps_per_call"] = int(cfg.steps_per_call)
    if workdir is None:
        return fit(task, None, workdir=None, **kwargs)
    with claimed_workdir(cfg, workdir, resume=resume, overwrite=overwrite) as wd:
        write_config(cfg, wd)
        return fit(task, None, workdir=wd, **kwargs)
