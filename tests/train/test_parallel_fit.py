"""fit on several devices and in mixed precision (book chapter 13): FSDP == data parallel == one
device on 8 simulated CPU devices; bfloat16 compute tracks float32 with float32 master weights."""

import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.data import ArrayLoader
from d2ljax.parallel import make_mesh, param_spec, state_shardings
from d2ljax.tasks import SupervisedTask
from d2ljax.train import fit


class MLP(nnx.Module):
    def __init__(self, *, rngs):
        self.l1 = nnx.Linear(8, 64, rngs=rngs)
        self.bn = nnx.BatchNorm(64, rngs=rngs)
        self.l2 = nnx.Linear(64, 4, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.bn(nnx.relu(self.l1(x))))


def blobs(n=512, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n).astype(np.int32)
    x = (np.random.default_rng(9).normal(size=(4, 8))[y] * 2 + rng.normal(size=(n, 8))).astype(
        np.float32
    )
    return {"x": x, "y": y}


def _run_on_8_devices(code: str) -> None:
    """Run ``code`` (which prints "ok" last) in a fresh Python with 8 simulated CPU devices; it
    imports this module's helpers from the directory given as its argument."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", code, here], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip().endswith("ok")


def test_param_spec_shards_largest_divisible_dim():
    mesh = make_mesh({"data": 1, "fsdp": 1})
    assert param_spec((1024, 64), mesh) == jax.P()  # fsdp axis of size 1: replicate
    from unittest import mock

    fake = mock.Mock(axis_names=("data", "fsdp"), shape={"data": 2, "fsdp": 4})
    assert param_spec((64, 1024), fake, min_size=1) == jax.P(None, "fsdp")
    assert param_spec((1024, 6), fake, min_size=1) == jax.P("fsdp", None)
    assert param_spec((7, 9), fake, min_size=1) == jax.P()  # nothing divides: replicate
    assert param_spec((64,), fake, min_size=1000) == jax.P()  # small: replicate


def test_partition_rules_come_first():
    mesh = make_mesh({"data": 1})
    tree = {"params": {"l1": {"kernel": np.zeros((8, 4))}, "b": np.zeros(3)}}
    sh = state_shardings(tree, mesh, rules=[("l1/kernel", ("data", None))])
    assert sh["params"]["l1"]["kernel"].spec == jax.P("data", None)
    assert sh["params"]["b"].spec == jax.P()


def test_fsdp_equals_data_parallel_equals_one_device():
    """2 epochs of Adam on an MLP with batch norm: the parameters of FSDP (mesh data 2 x fsdp 4,
    kernels sharded over fsdp, Adam moments too), pure data parallel (8) and one device agree to
    rtol 1e-5 / atol 1e-5; an FSDP run resumed from its checkpoint ends with exactly the
    parameters of an uninterrupted one; a batch size the mesh does not divide is a clear error."""
    code = textwrap.dedent(
        """
        import chex, jax, numpy as np, optax, pytest
        from flax import nnx
        from d2ljax.data import ArrayLoader
        from d2ljax.parallel import make_mesh, data_sharding
        from d2ljax.train import fit
        from d2ljax.tasks import SupervisedTask
        __import__("sys").path.insert(0, __import__("sys").argv[1])
        from test_parallel_fit import MLP, blobs
        def run(mesh, epochs=2, **kw):
            sh = data_sharding(mesh) if mesh is not None else None
            train = ArrayLoader(blobs(), 64, seed=0, sharding=sh)
            val = ArrayLoader(blobs(128, 1), 64, shuffle=False, sharding=sh)
            return fit(SupervisedTask(MLP(rngs=nnx.Rngs(0)), optax.adam(1e-2)), train, val_data=val,
                       epochs=epochs, mesh=mesh, fsdp_min_size=100, progress=False,
                       log=lambda s: None, **kw)
        one = run(None)
        dp = run(make_mesh({"data": 8}))
        fsdp = run(make_mesh({"data": 2, "fsdp": 4}))
        k = fsdp.state.params["l1"]["kernel"][...]
        assert k.sharding.spec == jax.P(None, "fsdp"), k.sharding
        assert len(k.addressable_shards) == 8 and k.addressable_shards[0].data.shape == (8, 16)
        mu = fsdp.state.opt_state[0].mu["l1"]["kernel"][...]
        assert mu.sharding.spec == jax.P(None, "fsdp"), mu.sharding
        assert fsdp.state.params["l1"]["bias"][...].sharding.spec == jax.P()  # 64 < 100: replicated
        host = lambda r: jax.device_get(r.state.params)
        chex.assert_trees_all_close(host(one), host(dp), rtol=1e-5, atol=1e-5)
        chex.assert_trees_all_close(host(one), host(fsdp), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(one.history["val_loss"], fsdp.history["val_loss"], rtol=1e-5)
        # An interrupted FSDP run resumes from its (sharded) checkpoint to the same parameters.
        import tempfile
        wd = tempfile.mkdtemp()
        run(make_mesh({"data": 2, "fsdp": 4}), epochs=1, workdir=wd, plot=False)
        resumed = run(make_mesh({"data": 2, "fsdp": 4}), workdir=wd, resume=True, plot=False)
        assert resumed.state.params["l1"]["kernel"][...].sharding.spec == jax.P(None, "fsdp")
        chex.assert_trees_all_equal(host(fsdp), host(resumed))
        # fit's default on several devices: data parallel over all of them, even from a loader
        # that puts batches on one device.
        auto = fit(SupervisedTask(MLP(rngs=nnx.Rngs(0)), optax.adam(1e-2)),
                   ArrayLoader(blobs(), 64, seed=0), epochs=1, progress=False, log=lambda s: None)
        assert len(auto.state.params["l1"]["kernel"][...].sharding.device_set) == 8
        with pytest.raises(ValueError, match="divisible by the data-parallel size 8"):
            fit(SupervisedTask(MLP(rngs=nnx.Rngs(0)), optax.sgd(0.1)),
                ArrayLoader(blobs(), 60, seed=0, drop_remainder=True), epochs=1,
                mesh={"data": 8}, progress=False)
        print("ok")
        """
    )
    _run_on_8_devices(code)


def test_scanned_steps_on_a_mesh_equal_one_call_per_batch():
    """On-device loaders sharded over the mesh: fit runs chunks of steps as one compiled scan
    (each step gathers its batch and lays it out over the data axes). Data parallel (8) and
    FSDP (2 x 4) scanned runs end with the parameters of a host loader's one call per batch
    (equal to 1e-6)
    and of one device (1e-5, as above)."""
    code = textwrap.dedent(
        """
        import chex, jax, optax
        from flax import nnx
        from d2ljax.data import ArrayLoader
        from d2ljax.parallel import make_mesh, data_sharding
        from d2ljax.train import fit
        from d2ljax.tasks import SupervisedTask
        __import__("sys").path.insert(0, __import__("sys").argv[1])
        from test_parallel_fit import MLP, blobs
        def run(mesh, steps_per_call, on_device=True):
            sh = data_sharding(mesh) if mesh is not None else None
            train = ArrayLoader(blobs(), 64, seed=0, sharding=sh, on_device=on_device)
            val = ArrayLoader(blobs(128, 1), 64, shuffle=False, sharding=sh, on_device=on_device)
            if mesh is not None:  # the scanned path is the one taken for on-device data
                from d2ljax.train.loop import _scan_source
                assert _scan_source(train, mesh, None) is (train if on_device else None)
            res = fit(SupervisedTask(MLP(rngs=nnx.Rngs(0)), optax.adam(1e-2)), train, val_data=val,
                      epochs=2, mesh=mesh, fsdp_min_size=100, progress=False,
                      log=lambda s: None, steps_per_call=steps_per_call)
            return jax.device_get(res.state.params), res.history["val_loss"]
        one, one_val = run(None, 3)
        for shape in ({"data": 8}, {"data": 2, "fsdp": 4}):
            scanned, val = run(make_mesh(shape), 3)
            stepped, _ = run(make_mesh(shape), 1, on_device=False)
            chex.assert_trees_all_close(scanned, stepped, rtol=1e-6, atol=1e-6)
            chex.assert_trees_all_close(scanned, one, rtol=1e-5, atol=1e-5)
            chex.assert_trees_all_close(val, one_val, rtol=1e-5)
        print("ok")
        """
    )
    _run_on_8_devices(code)


def _run(precision, epochs=3):
    return fit(
        SupervisedTask(MLP(rngs=nnx.Rngs(0)), optax.adam(1e-2), precision=precision),
        ArrayLoader(blobs(), 64, seed=0),
        val_data=ArrayLoader(blobs(256, 1), 128, shuffle=False),
        epochs=epochs,
        progress=False,
        log=lambda s: None,
    )


def test_bfloat16_tracks_float32_with_float32_master_weights():
    """bf16 compute: the master parameters, the Adam moments and the batch-norm statistics stay
    float32; per-epoch train losses agree with the float32 run within 0.02 absolute and the
    parameters within 0.05 (bf16 keeps 8 bits of mantissa: ~0.4% per operation)."""
    f32 = _run("float32")
    bf16 = _run("bfloat16")
    for tree in (bf16.state.params, bf16.state.opt_state, bf16.state.model_state):
        for leaf in jax.tree.leaves(tree):
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                assert leaf.dtype == jnp.float32
    np.testing.assert_allclose(bf16.history["train_loss"], f32.history["train_loss"], atol=0.02)
    assert bf16.history["val_accuracy"][-1] > 0.9
    chex.assert_trees_all_close(
        jax.device_get(bf16.state.params), jax.device_get(f32.state.params), atol=0.05
    )
    # The step really computes in bfloat16: its loss differs from the float32 loss.
    assert bf16.history["train_loss"] != f32.history["train_loss"]


def test_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        _run("fp8", epochs=1)
