"""Scratch SGD (§3.4.3) as an optax transformation, step for step against ``optax.sgd``."""

import chex
import jax
import jax.numpy as jnp
import optax
import optimizer_harness as harness
from absl.testing import parameterized
from flax import nnx

from d2ljax.models import LinearRegressionScratch
from d2ljax.optim import SGDState, sgd

_params = harness.params
_loss = harness.loss


def _run(tx, variant, num_steps=6):
    return harness.run(tx, variant, num_steps)


SCHEDULES = {
    "constant": 0.1,
    "exponential_decay": optax.exponential_decay(0.3, transition_steps=2, decay_rate=0.5),
    "piecewise": optax.piecewise_constant_schedule(0.2, {2: 0.1, 4: 0.5}),
    "python_lambda": lambda step: 0.05 * (step + 1),
}


class SGDTest(chex.TestCase, parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(name, name) for name in SCHEDULES])
    def test_matches_optax_step_for_step(self, name):
        lr = SCHEDULES[name]
        ours, _ = _run(sgd(lr), self.variant)
        ref, _ = _run(optax.sgd(lr), self.variant)
        for mine, theirs in zip(ours, ref, strict=True):
            chex.assert_trees_all_close(mine, theirs, rtol=1e-6, atol=1e-7)

    def test_state(self):
        params = _params()
        assert sgd(0.1).init(params) == optax.EmptyState()
        state = sgd(optax.constant_schedule(0.1)).init(params)
        assert isinstance(state, SGDState)
        chex.assert_trees_all_equal(state.count, jnp.zeros((), jnp.int32))
        _, state = _run(sgd(optax.constant_schedule(0.1)), lambda f: jax.jit(f), num_steps=3)
        assert int(state.count) == 3

    def test_update_is_minus_lr_times_grad(self):
        grads = {"a": jnp.array([1.0, -2.0]), "b": None}
        updates, _ = sgd(0.5).update(grads, optax.EmptyState())
        chex.assert_trees_all_equal(updates["a"], jnp.array([-0.5, 1.0]))
        assert updates["b"] is None

    def test_keeps_dtype(self):
        grads = {"a": jnp.ones((3,), jnp.bfloat16)}
        updates, _ = sgd(0.1).update(grads, optax.EmptyState())
        assert updates["a"].dtype == jnp.bfloat16
        tx = sgd(optax.constant_schedule(0.1))
        updates, _ = tx.update(grads, tx.init(grads))
        assert updates["a"].dtype == jnp.bfloat16

    def test_trains_an_nnx_model_like_optax(self):
        """§3.4: linear regression on synthetic y = X w + b, with our SGD and with optax's."""
        kx, kn = jax.random.split(jax.random.key(1))
        X_BD = jax.random.normal(kx, (64, 2))
        y_B1 = X_BD @ jnp.array([[2.0], [-3.4]]) + 4.2 + 0.01 * jax.random.normal(kn, (64, 1))
        finals = []
        for tx in (sgd(0.1), optax.sgd(0.1)):
            model = LinearRegressionScratch(2, rngs=nnx.Rngs(0))
            graphdef, params = nnx.split(model, nnx.Param)
            opt_state = tx.init(params)

            @jax.jit
            def step(params, opt_state, tx=tx, graphdef=graphdef):
                def loss_of(p):
                    return jnp.mean((nnx.merge(graphdef, p)(X_BD) - y_B1) ** 2) / 2

                updates, opt_state = tx.update(jax.grad(loss_of)(params), opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            for _ in range(200):
                params, opt_state = step(params, opt_state)
            finals.append(nnx.to_pure_dict(params))
        chex.assert_trees_all_close(finals[0], finals[1], rtol=1e-6, atol=1e-6)
        chex.assert_trees_all_close(finals[0]["w"], jnp.array([[2.0], [-3.4]]), atol=0.01)
        chex.assert_trees_all_close(finals[0]["b"], jnp.array([4.2]), atol=0.01)
