"""Learning-rate schedules (§12.11) against optax, the book's numbers and a config's schedule."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from d2ljax.optim import cosine_schedule, factor_schedule, multi_factor_schedule, sgd

STEPS = jnp.arange(0, 61)


def _values(schedule, steps=STEPS):
    return np.asarray(jax.jit(jax.vmap(schedule))(steps))


def test_factor_equals_optax_exponential_decay():
    ours = factor_schedule(2.0, factor=0.9, stop_factor_lr=1e-2)
    ref = optax.exponential_decay(2.0, transition_steps=1, decay_rate=0.9, end_value=1e-2)
    np.testing.assert_allclose(_values(ours), _values(ref), rtol=1e-6)
    assert float(ours(0)) == pytest.approx(2.0)
    assert float(ours(3)) == pytest.approx(2.0 * 0.9**3, rel=1e-6)
    assert float(ours(1000)) == pytest.approx(1e-2)  # floored at stop_factor_lr


def test_multi_factor_equals_optax_piecewise_constant():
    ours = multi_factor_schedule(0.5, milestones=[15, 30], factor=0.5)
    ref = optax.piecewise_constant_schedule(0.5, {15: 0.5, 30: 0.5})
    np.testing.assert_allclose(_values(ours), _values(ref), rtol=1e-7)
    # The book's MultiStepLR: the rate drops at the milestone itself.
    got = {t: float(ours(t)) for t in (0, 14, 15, 29, 30, 60)}
    assert got == {0: 0.5, 14: 0.5, 15: 0.25, 29: 0.25, 30: 0.125, 60: 0.125}
    # Milestones in any order; a repeated milestone applies its factor twice.
    chex.assert_trees_all_close(
        _values(multi_factor_schedule(0.5, [30, 15], 0.5)), _values(ours), rtol=1e-7
    )
    assert float(multi_factor_schedule(1.0, [5, 5], 0.1)(5)) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(base_lr=0.3, max_update=20, final_lr=0.01),  # §12.11.3.3
        dict(base_lr=0.3, max_update=20, final_lr=0.01, warmup_steps=5),  # §12.11.3.4
        dict(base_lr=1.0, max_update=50, final_lr=0.0, warmup_steps=10, warmup_begin_lr=0.1),
    ],
)
def test_cosine_equals_optax_warmup_cosine_decay(kwargs):
    ours = cosine_schedule(**kwargs)
    ref = optax.warmup_cosine_decay_schedule(
        init_value=kwargs.get("warmup_begin_lr", 0.0),
        peak_value=kwargs["base_lr"],
        warmup_steps=kwargs.get("warmup_steps", 0),
        decay_steps=kwargs["max_update"],
        end_value=kwargs["final_lr"],
    )
    np.testing.assert_allclose(_values(ours), _values(ref), rtol=1e-5, atol=1e-7)


def test_cosine_shape():
    s = cosine_schedule(0.3, max_update=20, final_lr=0.01, warmup_steps=5)
    assert float(s(0)) == 0.0
    assert float(s(2)) == pytest.approx(0.3 * 2 / 5)
    assert float(s(5)) == pytest.approx(0.3)  # the peak, at the end of the warm-up
    assert float(s(20)) == pytest.approx(0.01)
    assert float(s(100)) == pytest.approx(0.01)
    halfway = 0.01 + (0.3 - 0.01) / 2
    assert float(s(12.5)) == pytest.approx(halfway, rel=1e-5)
    values = _values(s)
    assert np.all(np.diff(values[:6]) > 0) and np.all(np.diff(values[5:21]) < 0)
    no_warmup = cosine_schedule(0.3, max_update=20)
    assert float(no_warmup(0)) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="warmup_steps"):
        cosine_schedule(0.3, max_update=5, warmup_steps=10)


def test_schedules_drive_an_optimizer_like_optax_schedules():
    """As the learning rate of the scratch SGD, inside jit, the schedule equals optax's."""
    grads = jnp.ones((3,))

    def final(tx):
        def step(carry, _):
            params, state = carry
            updates, state = tx.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        params = jnp.zeros((3,))
        return jax.jit(lambda: jax.lax.scan(step, (params, tx.init(params)), None, 25)[0][0])()

    ours = final(sgd(cosine_schedule(0.3, 20, 0.01, 5)))
    ref = final(optax.sgd(optax.warmup_cosine_decay_schedule(0.0, 0.3, 5, 20, 0.01)))
    chex.assert_trees_all_close(ours, ref, rtol=1e-5)
    expected = -sum(float(cosine_schedule(0.3, 20, 0.01, 5)(t)) for t in range(25))
    chex.assert_trees_all_close(ours, jnp.full((3,), expected), rtol=1e-5)


def test_the_cosine_config_uses_this_schedule():
    """configs/lr_schedule_cosine.py: optax's cosine via make_schedule == cosine_schedule."""
    from d2ljax.cli import load_config
    from d2ljax.train import make_schedule

    cfg = load_config("lr_schedule_cosine")
    steps_per_epoch = 235
    total = steps_per_epoch * cfg.epochs
    schedule = make_schedule(cfg.optimizer.learning_rate, dict(cfg.optimizer.schedule), total)
    ours = cosine_schedule(0.3, 20 * steps_per_epoch, 0.01, 5 * steps_per_epoch)
    steps = jnp.arange(0, total, 47)
    np.testing.assert_allclose(_values(schedule, steps), _values(ours, steps), rtol=1e-5)
