"""Value iteration on FrozenLake 4x4, slippery (book §17.2): gamma 0.95, the book's 10 sweeps.

    d2ljax train value_iteration
    d2ljax train value_iteration --epochs 100                     # converged: V*(s0) 0.1805
    d2ljax train value_iteration --set data.kwargs.is_slippery=false   # the book's own code's ice

Book settings (§17.2.3): gymnasium's ``FrozenLake-v1`` (here the pure-JAX copy, its table equal
to gymnasium's), ``V_0 = 0``, ``gamma = 0.95``, 10 iterations of ``V <- max_a sum_s' P (r + gamma
V)``: one sweep an epoch (``train_v_start`` is V of the start state, ``train_delta`` the largest
change), then the greedy policy's success rate over 10000 vmapped episodes (``val_success``).

Measured (CPU, seconds): after 10 sweeps V(s0) 0.0283 (values still spreading back from the
goal), greedy success 0.446; converged (100 sweeps) V*(s0) 0.1805 as in the authors' rebuild, its
policy reaches the goal in 72.9 % of the 10000 episodes (their figure: 73.6 %). On deterministic
ice (the book's code uses ``is_slippery=False``) 10 sweeps converge: V(s0) = 0.95^5 = 0.774,
success 100 %.
"""

from d2ljax.config import Config


def get_config(variant=None):
    cfg = Config(
        description=__doc__.splitlines()[0],
        model=dict(name="value_iteration", kwargs=dict(gamma=0.95)),
        data=dict(name="frozenlake", kwargs=dict(map_name="4x4", is_slippery=True)),
        rl=dict(steps_per_epoch=1, eval_episodes=10_000),
        epochs=10,
        seed=0,
        checkpoint_every=0,
        on_nonfinite="stop",
    )
    if variant in (None, "", "default", "cpu"):
        return cfg
    if variant == "smoke":
        cfg.epochs = 2
        cfg.rl.eval_episodes = 100
        return cfg
    raise ValueError(f"unknown variant {variant!r}; this experiment has: smoke, cpu")
