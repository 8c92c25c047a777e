import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.train import TrainState, make_steps, num_params, summarize, train_step
from d2ljax.train.losses import classification, get_loss


class TinyNet(nnx.Module):
    def __init__(self, *, rngs, dropout=0.0, bn=False):
        self.l1 = nnx.Linear(6, 16, rngs=rngs)
        self.bn = nnx.BatchNorm(16, rngs=rngs) if bn else None
        self.drop = nnx.Dropout(dropout, rngs=rngs)
        self.l2 = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.l1(x))
        if self.bn is not None:
            h = self.bn(h)
        return self.l2(self.drop(h))


def batch(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return {"x": jnp.asarray(x), "y": jnp.asarray((x[:, 0] > 0).astype(np.int32))}


def test_state_splits_params_and_rest():
    state = TrainState.create(
        TinyNet(rngs=nnx.Rngs(params=0, dropout=1), dropout=0.5, bn=True), optax.sgd(0.1)
    )
    assert num_params(state.params) == 6 * 16 + 16 + 16 * 3 + 3 + 2 * 16
    assert state.rng_streams == ("dropout",)
    assert int(state.step) == 0


def test_train_step_matches_manual_sgd():
    model = TinyNet(rngs=nnx.Rngs(0))
    state = TrainState.create(model, optax.sgd(0.1))
    b = batch()
    new_state, metrics = train_step(state, b, classification)

    def loss(p):
        return classification(nnx.merge(state.graphdef, p, state.model_state), b)[0]

    grads = jax.grad(loss)(state.params)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, state.params, grads)
    chex.assert_trees_all_close(new_state.params, expected, rtol=1e-6, atol=1e-6)
    assert int(new_state.step) == 1
    assert float(metrics["count"]) == 32


class TestVariants(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_step_same_under_jit(self):
        b = batch()
        state = TrainState.create(TinyNet(rngs=nnx.Rngs(1), dropout=0.3), optax.adam(1e-2))
        ref, ref_m = train_step(state, b, classification)
        step = self.variant(lambda s, bb: train_step(s, bb, classification))
        out, m = step(state, b)
        chex.assert_trees_all_close(out.params, ref.params, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(m, ref_m, rtol=1e-5)


def test_loss_decreases_and_metrics_are_sums():
    steps = make_steps("classification")
    state = TrainState.create(TinyNet(rngs=nnx.Rngs(0)), optax.sgd(0.5))
    b = batch(256)
    first = summarize(steps.eval_accumulate(state, None, b))
    totals = None
    for _ in range(50):
        state, totals = steps.train_accumulate(state, totals, b)
    assert float(totals["count"]) == 50 * 256
    last = summarize(steps.eval_accumulate(state, None, b))
    assert last["loss"] < 0.5 * first["loss"]
    assert last["accuracy"] > 0.9


def test_dropout_depends_on_step_and_eval_is_deterministic():
    state = TrainState.create(TinyNet(rngs=nnx.Rngs(0), dropout=0.5), optax.sgd(0.0))
    b = batch()
    _, m0 = train_step(state, b, classification)
    s1 = state.replace(step=state.step + 1)
    _, m1 = train_step(s1, b, classification)
    _, m0_again = train_step(state, b, classification)
    assert float(m0["loss"]) != float(m1["loss"])  # a different mask at another step
    assert float(m0["loss"]) == float(m0_again["loss"])  # same step, same mask
    steps = make_steps("classification")
    e1 = steps.eval_accumulate(state, None, b)
    e2 = steps.eval_accumulate(s1, None, b)
    chex.assert_trees_all_close(e1, e2)


def test_batchnorm_statistics_update_in_train_only():
    state = TrainState.create(TinyNet(rngs=nnx.Rngs(0), bn=True), optax.sgd(0.1))
    b = batch()
    new, _ = train_step(state, b, classification)
    before = state.model_state["bn"]["mean"][...]
    after = new.model_state["bn"]["mean"][...]
    assert not np.allclose(before, after)
    steps = make_steps("classification")
    steps.eval_accumulate(new, None, b)
    chex.assert_trees_all_close(new.model_state["bn"]["mean"][...], after)


def test_state_is_donated():
    steps = make_steps("classification")
    state = TrainState.create(TinyNet(rngs=nnx.Rngs(0)), optax.sgd(0.1))
    b = batch()
    state, totals = steps.train_accumulate(state, None, b)
    old_leaf = jax.tree.leaves(state.params)[0]
    state, totals = steps.train_accumulate(state, totals, b)
    assert old_leaf.is_deleted()


def test_regularization_is_added_to_the_loss():
    class Reg(TinyNet):
        def regularization(self):
            return 200.0 * jnp.sum(self.l1.kernel[...] ** 2)

    b = batch()
    plain = TrainState.create(TinyNet(rngs=nnx.Rngs(0)), optax.sgd(1e-3))
    reg = TrainState.create(Reg(rngs=nnx.Rngs(0)), optax.sgd(1e-3))
    p1, _ = train_step(plain, b, classification)
    p2, _ = train_step(reg, b, classification)
    shrink1 = float(jnp.sum(p1.params["l1"]["kernel"][...] ** 2))
    shrink2 = float(jnp.sum(p2.params["l1"]["kernel"][...] ** 2))
    assert shrink2 < 0.5 * shrink1


def test_unknown_loss_lists_known():
    with pytest.raises(ValueError, match="known losses: .*classification"):
        get_loss("clasification")


def test_a_padded_batch_with_its_mask_equals_the_unpadded_batch():
    """fit pads an epoch's last batch with zero rows and a mask: the loss weights rows by it and
    every ``nnx.BatchNorm`` computes its statistics over the real rows only, so the step equals
    the step on the smaller batch (parameters, moving statistics, metrics)."""
    import optax

    from d2ljax.train.programs import pad_batch

    class BNNet(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(5, 16, rngs=rngs)
            self.bn = nnx.BatchNorm(16, momentum=0.9, rngs=rngs)
            self.l2 = nnx.Linear(16, 3, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.relu(self.bn(self.l1(x))))

    rng = np.random.default_rng(0)
    b = {"x": rng.normal(size=(24, 5)).astype(np.float32), "y": rng.integers(0, 3, 24)}
    b = {k: jnp.asarray(v) for k, v in b.items()}
    state = TrainState.create(BNNet(nnx.Rngs(0)), optax.sgd(0.5))
    small, m_small = train_step(state, b, classification)
    padded, m_pad = train_step(state, pad_batch(b, 64), classification)
    chex.assert_trees_all_close(small.params, padded.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(small.model_state, padded.model_state, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(m_small, m_pad, rtol=1e-5, atol=1e-5)
    assert float(m_pad["count"]) == 24.0
    unmasked, _ = train_step(state, {**pad_batch(b, 64), "mask": jnp.ones(64)}, classification)
    assert not np.allclose(
        unmasked.model_state["bn"]["mean"][...], small.model_state["bn"]["mean"][...]
    )


def test_bfloat16_every_floating_output_the_loss_sees_is_float32():
    """Under bf16 compute the loss sees float32 from the model's call, from any other method and
    from any submodule, while the computation inside runs in bfloat16."""
    import optax

    class TwoHeads(nnx.Module):
        def __init__(self, rngs):
            self.body = nnx.Linear(4, 3, rngs=rngs)

        def __call__(self, x):
            return self.body(x)

        def features(self, x):
            return {"h": self.body(x), "n": jnp.ones((), jnp.int32)}

    seen = {}

    def loss(model, batch):
        out, feats, sub = model(batch["x"]), model.features(batch["x"]), model.body(batch["x"])
        seen.update(call=out.dtype, method=feats["h"].dtype, int=feats["n"].dtype, sub=sub.dtype)
        seen["inner"] = model.body.kernel[...].dtype
        l = (out**2).mean() + (feats["h"] ** 2).mean() + (sub**2).mean()
        return l, {"loss": l, "count": jnp.float32(1.0)}

    state = TrainState.create(TwoHeads(nnx.Rngs(0)), optax.sgd(0.1))
    new, _ = jax.jit(lambda s, b: train_step(s, b, loss, "bfloat16"))(
        state, {"x": jnp.ones((2, 4))}
    )
    assert seen == {
        "call": jnp.float32,
        "method": jnp.float32,
        "int": jnp.int32,
        "sub": jnp.float32,
        "inner": jnp.bfloat16,
    }
    assert new.params["body"]["kernel"][...].dtype == jnp.float32
