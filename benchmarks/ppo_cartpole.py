"""PPO on CartPole-v1, seeds vmapped in one jit: the return each seed reaches within a budget
of environment steps, and the steps per second of the whole jitted loop.

    python benchmarks/ppo_cartpole.py [--seeds 8] [--iterations 976] [--anneal]

Prints, per seed, the mean return of the episodes that ended in the last 10 iterations, and how
many seeds reach >= 475 (the issue's bar: 7 of 8 within 500k steps).
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from d2ljax.envs import CartPole
from d2ljax.models.actor_critic import ActorCritic
from d2ljax.tasks.ppo import PPOTask, train_ppo


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--iterations", type=int, default=976)
    p.add_argument("--anneal", action="store_true", help="learning rate decayed linearly to 0")
    args = p.parse_args()
    task = PPOTask(ActorCritic(4, 2, rngs=nnx.Rngs(0)), CartPole(),
                   anneal_iterations=args.iterations if args.anneal else None)
    keys = jnp.stack([jax.random.key(s) for s in range(args.seeds)])
    run = jax.jit(jax.vmap(lambda k: train_ppo(task, k, args.iterations)[1]))
    t0 = time.perf_counter()
    compiled = run.lower(keys).compile()
    t1 = time.perf_counter()
    returns = np.asarray(compiled(keys))
    t2 = time.perf_counter()
    steps = args.iterations * task.num_envs * task.num_steps
    last = np.nanmean(returns[:, -10:], axis=1)
    print(f"device {jax.devices()[0].platform}, {args.seeds} seeds x {steps} env steps, "
          f"anneal {args.anneal}; "
          f"compile {t1 - t0:.1f} s, run {t2 - t1:.1f} s, "
          f"{args.seeds * steps / (t2 - t1):,.0f} env steps/s (all seeds)")
    for s, r in enumerate(last):
        print(f"seed {s}: mean return of the last 10 iterations {r:.1f}")
    print(f"seeds >= 475: {(last >= 475).sum()} of {args.seeds}")


if __name__ == "__main__":
    main()
