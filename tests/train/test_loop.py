import json

import chex
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.data import ArrayLoader
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
        model,
        train,
        val_data=val,
        optimizer=make_optimizer("sgd", 0.1, grad_clip=1.0),
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
        nnx.Linear(5, 4, rngs=nnx.Rngs(0)),
        train,
        val_data=val,
        optimizer=optax.sgd(0.0),
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
        Net(rngs=nnx.Rngs(0)),
        train,
        val_data=val,
        optimizer=optax.sgd(0.1),
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


@pytest.mark.parametrize("steps_per_call", [1, 16])
def test_train_step_compiles_once(monkeypatch, steps_per_call):
    """The state and the metric sums are committed to the device before the first step, so the
    step's outputs feed back without a second compilation (one call per batch, or the scanned
    calls over the on-device data)."""
    import d2ljax.train.loop as loop

    made, scanned = [], []
    original, original_scan = loop.make_steps, loop.scan_steps
    monkeypatch.setattr(
        loop, "make_steps", lambda loss, **kw: made.append(original(loss, **kw)) or made[-1]
    )
    monkeypatch.setattr(
        loop, "scan_steps", lambda *a: scanned.append(original_scan(*a)) or scanned[-1]
    )
    d = blobs(320, 3)
    fit(
        Net(rngs=nnx.Rngs(0)),
        ArrayLoader(d, 64, on_device=True),
        val_data=ArrayLoader(d, 64, shuffle=False, on_device=True),
        optimizer=optax.sgd(0.1),
        epochs=3,
        progress=False,
        steps_per_call=steps_per_call,
    )
    if not hasattr(made[0].train, "_cache_size"):
        pytest.skip("this jax has no _cache_size on jitted functions")
    if steps_per_call == 1:
        assert not scanned
        assert made[0].train._cache_size() == 1
        assert made[0].eval._cache_size() == 1
    else:  # 5 batches: one call of 5 steps per epoch, for training and for validation
        assert [f._cache_size() for f in scanned[0] + scanned[1]] == [1, 0, 0, 1]
        assert made[0].train._cache_size() == 0


def _run_chunked(steps_per_call, **kw):
    train = ArrayLoader(blobs(600, 1), 64, seed=3, **kw)  # 9 full batches and one of 24
    val = ArrayLoader(blobs(250, 2), 100, shuffle=False, **kw)  # 2 full batches and one of 50
    return fit(
        Net(rngs=nnx.Rngs(0)),
        train,
        val_data=val,
        optimizer=optax.sgd(0.1),
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


def test_steps_per_call_must_be_positive():
    with pytest.raises(ValueError, match="steps_per_call must be >= 1, got 0"):
        _run_chunked(0, on_device=True)


def test_chunks_cover_the_epoch_in_order():
    from d2ljax.train.loop import _chunks, _scan_source

    loader = ArrayLoader(blobs(600, 1), 64, seed=3, on_device=True)
    order = np.concatenate(ArrayLoader(blobs(600, 1), 64, seed=3).next_indices())
    chunks = _chunks(loader, 4)
    assert [c.shape for c in chunks] == [(4, 64), (4, 64), (1, 64), (1, 24)]
    np.testing.assert_array_equal(np.concatenate([c.ravel() for c in chunks]), order)
    assert [c.shape for c in _chunks(loader, None)] == [(9, 64), (1, 24)]
    assert loader.epoch == 2  # each call is the next epoch, as iterating is
    # What runs batch by batch: host loaders, steps_per_call=1, other iterables.
    import jax

    device = jax.local_devices()[0]
    assert _scan_source(loader, 16, None, device) is loader
    assert _scan_source(loader, 1, None, device) is None
    assert _scan_source(ArrayLoader(blobs(64, 1), 64), 16, None, device) is None
    assert _scan_source([{"x": np.zeros((2, 5))}], 16, None, device) is None
