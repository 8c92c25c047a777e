"""Scratch optimizers of chapter 12 as optax transformations, step for step against optax."""

import functools

import chex
import jax
import jax.numpy as jnp
import optax
import optimizer_harness as harness
import pytest

from d2ljax import optim
from d2ljax.optim import landscape
from d2ljax.train import make_optimizer

_params = harness.params
_loss = harness.loss


NUM_STEPS = 10


def _run(tx, variant, num_steps=NUM_STEPS):
    return harness.run(tx, variant, num_steps)


SCHEDULE = optax.exponential_decay(0.05, transition_steps=3, decay_rate=0.5)

# name -> (ours, optax's), as functions of the learning rate; all with the same hyperparameters.
PAIRS = {
    "momentum": (
        lambda lr: optim.momentum(lr, beta=0.9),
        lambda lr: optax.sgd(lr, momentum=0.9),
    ),
    "momentum_0.5": (
        lambda lr: optim.momentum(lr, beta=0.5),
        lambda lr: optax.sgd(lr, momentum=0.5),
    ),
    "adagrad": (  # the book's start s_0 = 0
        lambda lr: optim.adagrad(lr, eps=1e-6),
        lambda lr: optax.adagrad(lr, initial_accumulator_value=0.0, eps=1e-6),
    ),
    "adagrad_optax_defaults": (
        lambda lr: optim.adagrad(lr, eps=1e-7, initial_accumulator_value=0.1),
        lambda lr: optax.adagrad(lr),
    ),
    "rmsprop": (
        lambda lr: optim.rmsprop(lr, gamma=0.9, eps=1e-6),
        lambda lr: optax.rmsprop(lr, decay=0.9, eps=1e-6),
    ),
    "adadelta": (
        lambda lr: optim.adadelta(lr, rho=0.9, eps=1e-5),
        lambda lr: optax.adadelta(lr, rho=0.9, eps=1e-5),
    ),
    "adam": (
        lambda lr: optim.adam(lr, beta1=0.9, beta2=0.999, eps=1e-6),
        lambda lr: optax.adam(lr, b1=0.9, b2=0.999, eps=1e-6),
    ),
    "yogi_book_start": (  # s_0 = v_0 = 0, through optax's scale_by_yogi
        lambda lr: optim.yogi(lr, beta1=0.9, beta2=0.999, eps=1e-3),
        lambda lr: optax.chain(
            optax.scale_by_yogi(b1=0.9, b2=0.999, eps=1e-3, initial_accumulator_value=0.0),
            optax.scale_by_learning_rate(lr),
        ),
    ),
    "yogi_optax_start": (  # optax.yogi starts both moments at 1e-6
        lambda lr: optim.yogi(lr, initial_accumulator_value=1e-6),
        lambda lr: optax.yogi(lr),
    ),
}
RATES = {"constant": 0.05, "schedule": SCHEDULE}


def _paths_jit(tx_a, tx_b, num_steps=NUM_STEPS):
    """Both optimizers' iterates from the same start on the same inputs (one jitted step)."""

    @jax.jit
    def step(carry, x):
        out = []
        for tx, (params, state) in zip((tx_a, tx_b), carry, strict=True):
            updates, state = tx.update(jax.grad(_loss)(params, x), state, params)
            out.append((optax.apply_updates(params, updates), state))
        return tuple(out)

    params = _params()
    carry = ((params, tx_a.init(params)), (params, tx_b.init(params)))
    paths = ([], [])
    for i in range(num_steps):
        carry = step(carry, jax.random.normal(jax.random.key(100 + i), (5, 3)))
        for path, (params, _) in zip(paths, carry, strict=True):
            path.append(params)
    return paths


# Every pair with a constant rate; the schedule path (shared code) on one pair per module.
CASES = [(name, "constant") for name in PAIRS] + [
    (name, "schedule")
    for name in ("momentum", "adagrad", "rmsprop", "adadelta", "adam", "yogi_book_start")
]


@pytest.mark.parametrize("name, rate", CASES)
def test_matches_optax_step_for_step_under_jit(name, rate):
    ours_fn, ref_fn = PAIRS[name]
    lr = RATES[rate]
    if name == "adadelta":  # the book's Adadelta has no learning rate: 1.0 is the method
        lr = 1.0 if rate == "constant" else optax.exponential_decay(1.0, 3, 0.5)
    ours, ref = _paths_jit(ours_fn(lr), ref_fn(lr))
    chex.assert_trees_all_close(ours, ref, rtol=1e-5, atol=1e-6)  # all NUM_STEPS iterates
    # The paths really move (a no-op optimizer would also "match" a no-op).
    moved = jax.tree.map(lambda a, b: jnp.abs(a - b).max(), ours[-1], _params())
    assert max(jax.tree.leaves(moved)) > 1e-3


class WithoutJitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_step_by_step_calls(self):
        """The per-step Python calls (as ``fit`` makes them), jitted or eager."""
        ours, _ = _run(optim.momentum(0.05), self.variant, num_steps=2)
        ref, _ = _run(optax.sgd(0.05, momentum=0.9), self.variant, num_steps=2)
        chex.assert_trees_all_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_the_starting_value_matters_for_yogi_and_adagrad():
    """The defaults differ from optax's on purpose (book: accumulators start at 0)."""
    for ours, ref, at_least in (
        (optim.yogi(0.05), optax.yogi(0.05), 1e-6),
        (optim.adagrad(0.05), optax.adagrad(0.05), 1e-4),
    ):
        ours, ref = _paths_jit(ours, ref, num_steps=2)
        diff = jax.tree.map(lambda a, b: jnp.abs(a - b).max(), ours[-1], ref[-1])
        assert max(jax.tree.leaves(diff)) > at_least


def test_optax_adadelta_without_a_rate_climbs():
    """What the adadelta docstring warns about: optax.adadelta() has learning_rate=None, which
    chains an identity instead of a -1 scaling, so its update points up the gradient."""
    x = jnp.array(1.0)
    g = 2 * x  # gradient of x**2
    up, _ = optax.adadelta(eps=1e-5).update(g, optax.adadelta().init(x), x)
    down, _ = optim.adadelta().update(g, optim.adadelta().init(x), x)
    assert up > 0 > down
    chex.assert_trees_all_close(up, -down)


# name -> (optimizer on the book's 0.1 x1^2 + 2 x2^2, steps)
MINIMIZERS = {
    "sgd": (optim.sgd(0.4), 100),
    "momentum": (optim.momentum(0.6, beta=0.5), 100),  # the book's eta and beta
    "adagrad": (optim.adagrad(0.4), 300),
    "rmsprop": (optim.rmsprop(0.1, gamma=0.9), 300),
    "adadelta": (optim.adadelta(rho=0.9), 500),
    "adam": (optim.adam(0.1), 300),
    "yogi": (optim.yogi(0.1), 300),
}


@pytest.mark.parametrize("name", list(MINIMIZERS))
def test_minimizes_the_book_function(name):
    tx, steps = MINIMIZERS[name]
    path = landscape.train_2d(tx, steps=steps)
    chex.assert_shape(path, (steps + 1, 2))
    chex.assert_tree_all_finite(path)
    assert float(landscape.ill_conditioned_2d(path[0])) == pytest.approx(10.5)
    assert float(landscape.ill_conditioned_2d(path[-1])) < 1e-2


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("momentum", {"beta": 0.5}),
        ("adagrad", {}),
        ("rmsprop", {"gamma": 0.95}),
        ("adadelta", {"rho": 0.95}),
        ("adam", {"beta2": 0.99}),
        ("yogi", {}),
    ],
)
def test_make_optimizer_selects_the_scratch_version(name, kwargs):
    lr = 1.0 if name == "adadelta" else 0.05
    built = make_optimizer(f"scratch_{name}", lr, **kwargs)
    # make_optimizer keeps the learning rate in the optimizer state (optax.inject_hyperparams)
    factory = functools.partial(getattr(optim, name), **kwargs)
    direct = optax.inject_hyperparams(factory)(learning_rate=lr)
    ours, ref = _paths_jit(built, direct, num_steps=3)
    chex.assert_trees_all_close(ours, ref)


def test_make_optimizer_scratch_with_schedule_and_weight_decay():
    """The config machinery's cosine schedule and decoupled weight decay chain around it."""
    tx = make_optimizer(
        "scratch_adam",
        0.05,
        weight_decay=1e-3,
        schedule={"name": "cosine", "warmup_steps": 2},
        total_steps=5,
    )
    ref = optax.chain(
        optax.add_decayed_weights(1e-3, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
        optax.adam(optax.warmup_cosine_decay_schedule(0.0, 0.05, 2, 5, 0.0), eps=1e-6),
    )
    ours, theirs = _paths_jit(tx, ref, num_steps=4)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)


STATES = {
    "momentum": optim.MomentumState,
    "adagrad": optim.AdagradState,
    "rmsprop": optim.RMSPropState,
    "adadelta": optim.AdadeltaState,
    "adam": optim.AdamState,
    "yogi": optim.YogiState,
}


@pytest.mark.parametrize("name", list(STATES))
def test_state_counts_and_donation(name):
    tx = getattr(optim, name)(0.05)
    params = _params()
    state = tx.init(params)
    assert isinstance(state, STATES[name])
    assert int(state.count) == 0
    # Every accumulator is its own buffer: a donating jit must not see one buffer twice.
    leaves = jax.tree.leaves(state)
    assert len({id(leaf) for leaf in leaves}) == len(leaves)

    @jax.jit
    def step(params, state, x):
        updates, state = tx.update(jax.grad(_loss)(params, x), state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    for i in range(3):
        params, state = step(params, state, jnp.full((5, 3), 0.1 * i))
    assert int(state.count) == 3
    chex.assert_trees_all_equal_shapes(state, tx.init(params))


@pytest.mark.parametrize("name", list(STATES))
def test_keeps_dtype_and_none_leaves(name):
    tx = getattr(optim, name)(0.1)
    params = {"a": jnp.ones((3,), jnp.bfloat16), "b": jnp.ones((2,))}
    grads = {"a": jnp.full((3,), 0.5, jnp.bfloat16), "b": None}
    updates, _ = tx.update(grads, tx.init(params), params)
    assert updates["a"].dtype == jnp.bfloat16
    assert updates["b"] is None
    assert bool(jnp.all(updates["a"] < 0))  # a positive gradient gives a step down
