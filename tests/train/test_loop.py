import json

import chex
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.data import ArrayLoader
from d2ljax.tasks import SupervisedTask
from d2ljax.train import EarlyStopping, fit, make_optimizer


class Net(nnx.Module):
    def __init__(self, *, rngs):
        self.l1 = nnx.Linear(5, 32, rngs=rngs)
        self.drop = nnx.Dropout(0.3, rngs=rngs)
        self.bn = nnx.BatchNorm(32, rngs=rngs)
        self.l2 = nnx.Linear(32, 4, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.drop(self.bn(nnx.relu(self.l1(x)))))


def blobs(n, seed):
    """Four Gaussian blobs in 5-D: a learnable classification task."""
    centers = np.random.default_rng(123).normal(size=(4, 5)) * 3
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n).astype(np.int32)
    x = (centers[y] + rng.normal(size=(n, 5))).astype(np.float32)
    return {"x": x, "y": y}


def loaders(seed=0):
    train = blobs(600, 1)
    val = blobs(200, 2)
    return (ArrayLoader(train, 64, seed=seed), ArrayLoader(val, 100, shuffle=False))


def run(tmp_path, epochs, resume=False, **kw):
    train, val = loaders()
    model = Net(rngs=nnx.Rngs(params=0, dropout=1))
    return fit(
        SupervisedTask(model, make_optimizer("sgd", 0.1, grad_clip=1.0)),
        train,
        val_data=val,
        epochs=epochs,
        workdir=tmp_path,
        resume=resume,
        progress=False,
        **kw,
    )


def test_fit_learns_and_writes_history(tmp_path):
    res = run(tmp_path, 5)
    h = res.history
    assert h["epoch"] == [1, 2, 3, 4, 5]
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["val_accuracy"][-1] > 0.9
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["val_accuracy"] == h["val_accuracy"]
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_resume_gives_identical_parameters(tmp_path):
    full = run(tmp_path / "full", 4)
    run(tmp_path / "split", 2)
    resumed = run(tmp_path / "split", 4, resume=True)
    chex.assert_trees_all_equal(full.state.params, resumed.state.params)
    chex.assert_trees_all_equal(full.state.model_state, resumed.state.model_state)
    chex.assert_trees_all_equal(full.state.opt_state, resumed.state.opt_state)
    assert full.history["train_loss"] == resumed.history["train_loss"]
    assert int(resumed.state.step) == 4 * 10


def test_existing_checkpoints_need_resume_or_overwrite(tmp_path):
    run(tmp_path, 1)
    with pytest.raises(FileExistsError, match="--resume"):
        run(tmp_path, 2)
    res = run(tmp_path, 1, overwrite=True)
    assert res.history["epoch"] == [1]


def test_deterministic_given_seed(tmp_path):
    a = run(tmp_path / "a", 2)
    b = run(tmp_path / "b", 2)
    chex.assert_trees_all_equal(a.state.params, b.state.params)


def test_early_stopping_from_history():
    es = EarlyStopping(patience=2)
    assert not es.on_epoch_end(0, {"val_loss": [1.0, 0.9, 0.95]}, None)
    assert es.on_epoch_end(0, {"val_loss": [1.0, 0.9, 0.95, 0.97]}, None)
    with pytest.raises(KeyError, match="val_loss"):
        es.on_epoch_end(0, {"train_loss": [1.0]}, None)


def test_early_stopping_stops_fit(tmp_path):
    train, val = loaders()
    res = fit(
        SupervisedTask(nnx.Linear(5, 4, rngs=nnx.Rngs(0)), optax.sgd(0.0)),
        train,
        val_data=val,
        epochs=10,
        callbacks=[EarlyStopping(patience=1)],
        progress=False,
    )
    assert res.stopped_early and len(res.history["epoch"]) == 2


@pytest.mark.parametrize("on_device", [False, True])  # one call per batch, or scanned chunks
def test_progress_bar_runs(tmp_path, capsys, on_device):
    train = ArrayLoader(blobs(600, 1), 64, seed=0, on_device=on_device)
    val = ArrayLoader(blobs(200, 2), 100, shuffle=False, on_device=on_device)
    fit(
        SupervisedTask(Net(rngs=nnx.Rngs(0)), optax.sgd(0.1)),
        train,
        val_data=val,
        epochs=1,
        progress=True,
        steps_per_call=4,
    )
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "10/10" in err  # 9 full batches and one of 24, all counted


def test_optimizer_builder_errors_and_schedules():
    with pytest.raises(ValueError, match="known: .*adam"):
        make_optimizer("adma", 0.1)
    tx = make_optimizer("sgd", 1.0, schedule={"name": "cosine", "warmup_steps": 2}, total_steps=10)
    assert tx is not None
    with pytest.raises(ValueError, match="unknown schedule"):
        make_optimizer("sgd", 1.0, schedule={"name": "nope"})


def test_predict_applies_transform_in_eval_mode():
    from d2ljax.data import image_transform
    from d2ljax.train import predict

    model = nnx.Sequential(lambda x: x.reshape(x.shape[0], -1), nnx.Linear(4, 2, rngs=nnx.Rngs(0)))
    raw = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2, 1)
    out = predict(model, raw, transform=image_transform(), batch_size=2)
    expected = model(raw.astype(np.float32) / 255.0)
    np.testing.assert_allclose(out, np.asarray(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("on_device", [True, False])
def test_one_train_and_one_eval_program_per_run(on_device):
    """A dataset whose size is no multiple of the batch (600 = 9 x 64 + 24; 250 = 2 x 100 + 50)
    and an epoch that is no multiple of the chunk (10 steps in chunks of 4): after two epochs
    each program fit used has compiled exactly once -- the last batch is padded with a mask,
    the last chunk with steps that do nothing -- and it all runs with no implicit transfer."""
    import jax

    from d2ljax.train import programs

    programs.clear()
    train = ArrayLoader(blobs(600, 1), 64, seed=3, on_device=on_device)
    val = ArrayLoader(blobs(250, 2), 100, shuffle=False, on_device=on_device)
    task = SupervisedTask(Net(rngs=nnx.Rngs(0)), optax.sgd(0.1))
    with jax.transfer_guard("disallow"):
        res = fit(
            task,
            train,
            val_data=val,
            epochs=2,
            steps_per_call=4,
            progress=False,
            log=lambda s: None,
        )
    kinds = ["train_chunk", "eval_chunk"] if on_device else ["train_batch", "eval_batch"]
    assert programs.compiled_programs() == [(k, 1) for k in kinds]
    assert int(res.state.step) == 20


def test_evaluate_and_predict_reuse_their_programs():
    """``evaluate`` runs fit's eval program and ``predict`` keeps its forward pass: calling them
    again (on new data of the same shape) compiles nothing."""
    from d2ljax.data import image_transform
    from d2ljax.train import evaluate, predict, programs

    programs.clear()
    task = SupervisedTask(Net(rngs=nnx.Rngs(0)), optax.sgd(0.1))
    train, val = loaders()
    res = fit(task, train, val_data=val, epochs=1, progress=False, log=lambda s: None)
    before = dict(programs.compiled_programs())
    m1 = evaluate(task, res.state, val)
    m2 = evaluate(task, res.state, ArrayLoader(blobs(200, 9), 100, shuffle=False))
    assert m1["loss"] == pytest.approx(res.history["val_loss"][-1], rel=1e-6)
    assert m2["loss"] != m1["loss"]
    model = nnx.Sequential(lambda x: x.reshape(x.shape[0], -1), nnx.Linear(4, 2, rngs=nnx.Rngs(0)))
    raw = np.arange(7 * 4, dtype=np.uint8).reshape(7, 2, 2, 1)
    transform = image_transform()
    predict(model, raw, transform=transform, batch_size=4)
    predict(model, raw[::-1].copy(), transform=transform, batch_size=4)
    after = programs.compiled_programs()
    assert ("predict", 1) in after
    assert dict(after)["eval_batch"] == before.get("eval_batch", 1) == 1


def test_runs_differing_only_in_learning_rate_compile_once():
    """The learning rate lives in the optimizer state: a second run with another rate (a
    tuner's next trial: a new model, a new task) runs the programs the first compiled."""
    import jax

    from d2ljax.train import learning_rate, programs

    programs.clear()
    train, val = loaders()
    results = []
    for lr in (0.1, 0.02):
        task = SupervisedTask(
            Net(rngs=nnx.Rngs(params=0, dropout=1)), make_optimizer("sgd", lr, grad_clip=1.0)
        )
        results.append(
            fit(task, train, val_data=val, epochs=2, progress=False, log=lambda s: None)
        )
        assert float(learning_rate(results[-1].state.opt_state)) == pytest.approx(lr)
    assert programs.compiled_programs() == [("train_batch", 1), ("eval_batch", 1)]
    a, b = (jax.tree.leaves(r.state.params) for r in results)
    assert not all(np.allclose(x, y) for x, y in zip(a, b, strict=True))  # the rate mattered


def _run_chunked(steps_per_call, **kw):
    train = ArrayLoader(blobs(600, 1), 64, seed=3, **kw)  # 9 full batches and one of 24
    val = ArrayLoader(blobs(250, 2), 100, shuffle=False, **kw)  # 2 full batches and one of 50
    return fit(
        SupervisedTask(Net(rngs=nnx.Rngs(0)), optax.sgd(0.1)),
        train,
        val_data=val,
        epochs=2,
        steps_per_call=steps_per_call,
        progress=False,
        log=lambda s: None,
    )


def test_scanned_steps_equal_one_call_per_batch():
    """With the data on the device, ``steps_per_call`` steps run as one compiled scan that
    gathers its own batches. With dropout (reseeded per step), batch norm, a leftover run of
    full batches and a smaller last batch, parameters, batch-norm statistics and every history
    value equal one call per batch, and equal a host loader's run."""
    import jax

    ref = _run_chunked(1, on_device=True)
    for got in (
        _run_chunked(4, on_device=True),
        _run_chunked(1000, on_device=True),
        _run_chunked(4),
    ):
        for tree in ("params", "model_state"):  # model_state: batch-norm statistics, RNG keys
            a, b = (jax.tree.leaves(getattr(r.state, tree)) for r in (ref, got))
            for x, y in zip(a, b, strict=True):
                if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                    x, y = jax.random.key_data(x), jax.random.key_data(y)
                np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-6, atol=1e-6)
        assert int(got.state.step) == int(ref.state.step) == 20
        for key, values in ref.history.items():
            if key != "epoch_time":
                np.testing.assert_allclose(got.history[key], values, rtol=1e-6)
    assert ref.history["val_accuracy"][-1] > 0.8  # it learned: the runs compared are not trivial


def test_a_custom_loss_sees_the_mask():
    """The padded rows of the last batch carry mask 0: a loss that weights by it gets the
    metrics of the real rows only (600 examples counted, not 640)."""
    from d2ljax.train.losses import classification

    seen = []

    def loss(model, batch):
        seen.append(batch["mask"].shape)
        return classification(model, batch)

    train = ArrayLoader(blobs(600, 1), 64, seed=3, on_device=True)
    res = fit(SupervisedTask(Net(rngs=nnx.Rngs(0)), optax.sgd(0.1), loss), train, epochs=1,
              progress=False, log=lambda s: None)
    assert seen[0] == (64,)
    assert 0.0 < res.history["train_accuracy"][0] <= 1.0


def test_steps_per_call_must_be_positive():
    with pytest.raises(ValueError, match="steps_per_call must be >= 1, got 0"):
        _run_chunked(0, on_device=True)


def test_chunks_cover_the_epoch_in_order():
    import jax

    from d2ljax.train.loop import _scan_source
    from d2ljax.train.programs import epoch_chunks

    loader = ArrayLoader(blobs(600, 1), 64, seed=3, on_device=True)
    indices = ArrayLoader(blobs(600, 1), 64, seed=3).next_indices()
    chunks = epoch_chunks(indices, 64, 4)
    assert [(i.shape, m.shape, v.shape) for i, m, v in chunks] == [((4, 64), (4, 64), (4,))] * 3
    idx = np.concatenate([i for i, _, _ in chunks])
    mask = np.concatenate([m for _, m, _ in chunks])
    valid = np.concatenate([v for _, _, v in chunks])
    np.testing.assert_array_equal(valid, [True] * 10 + [False] * 2)
    np.testing.assert_array_equal(mask.sum(1), [64] * 9 + [24, 0, 0])
    np.testing.assert_array_equal(idx[mask > 0], np.concatenate(indices))
    assert [len(c[0]) for c in epoch_chunks(indices, 64, 1000)] == [10]
    # What runs batch by batch: host loaders, other iterables.
    device = jax.local_devices()[0]
    assert _scan_source(loader, None, device) is loader
    assert _scan_source(ArrayLoader(blobs(64, 1), 64), None, device) is None
    assert _scan_source([{"x": np.zeros((2, 5))}], None, device) is None
