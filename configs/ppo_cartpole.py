"""PPO on CartPole-v1 (beyond the book, ch 17): PureJaxRL's settings, 500k steps, one jit a step.

    d2ljax train ppo_cartpole
    d2ljax train ppo_cartpole:smoke

Settings (PureJaxRL's CartPole PPO): 4 vmapped environments (pure-JAX CartPole, equal to
gymnasium's), 128 steps each per iteration, GAE (gamma 0.99, lambda 0.95), 4 epochs of 4
minibatches, clip 0.2, entropy 0.01, value 0.5, Adam 2.5e-4 decayed linearly to 0 over the 976
iterations, gradient norm 0.5; actor and critic tanh MLPs of 64-64 units. An epoch is 122
iterations, 8 epochs: 976 iterations = 499,712 environment steps. ``train_return`` is the mean
return of the episodes that ended in the epoch (500 is the most CartPole-v1 gives).

Measured (``python benchmarks/ppo_cartpole.py --anneal``, 8 seeds vmapped, 2-core CPU, 28 s):
mean return of the last 10 iterations 500, 478, 500, 500, 419, 489, 500, 500 -- 7 of 8 seeds
>= 475 within 499,712 steps; with a constant rate 5 of 8 (three end near 466).
"""

from d2ljax.config import Config


def get_config(variant=None):
    cfg = Config(
        description=__doc__.splitlines()[0],
        model=dict(
            name="ppo",
            kwargs=dict(
                num_hiddens=64, num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4,
                learning_rate=2.5e-4, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01,
                vf_coef=0.5, max_grad_norm=0.5, anneal_iterations=976,
            ),
        ),
        data=dict(name="cartpole", kwargs=dict(max_episode_steps=500)),
        rl=dict(steps_per_epoch=122, eval_episodes=0),
        epochs=8,
        seed=0,
        checkpoint_every=1,
        on_nonfinite="stop",
    )
    if variant in (None, "", "default", "cpu"):
        return cfg
    if variant == "smoke":
        cfg.epochs = 1
        cfg.rl.steps_per_epoch = 2
        return cfg
    raise ValueError(f"unknown variant {variant!r}; this experiment has: smoke, cpu")
