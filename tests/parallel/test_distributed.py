"""Multi-process training for real: two processes on 127.0.0.1 (gloo collectives), each with 2
simulated CPU devices, train data parallel over the 4-device global mesh and end with the
parameters of a single-process, single-device run."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import chex
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.data import ArrayLoader
from d2ljax.parallel import distributed
from d2ljax.tasks import SupervisedTask
from d2ljax.train import fit

WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from d2ljax.parallel import distributed
    addr, pid, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    assert distributed.initialize(addr, 2, pid)
    import jax, optax
    from flax import nnx
    from d2ljax.parallel import make_mesh, data_sharding
    from d2ljax.train import fit
    from d2ljax.tasks import SupervisedTask
    sys.path.insert(0, sys.argv[4])
    from test_distributed import Net, blobs
    assert jax.process_count() == 2 and jax.device_count() == 4
    assert jax.local_device_count() == 2
    mesh = make_mesh({"data": -1})
    train = distributed.ProcessLocalLoader(blobs(), 32, sharding=data_sharding(mesh), seed=0)
    res = fit(SupervisedTask(Net(nnx.Rngs(0)), optax.adam(0.01)), train,
              val_data=distributed.ProcessLocalLoader(
                  blobs(), 64, sharding=data_sharding(mesh), shuffle=False),
              epochs=2, workdir=workdir, mesh=mesh,
              progress=False, log=lambda s: print(f"[{pid}] {s}", flush=True))
    leaf = res.state.params["l1"]["kernel"][...]
    assert not leaf.is_fully_addressable and leaf.is_fully_replicated
    params = {"/".join(map(str, k)): np.asarray(v) for k, v in
              nnx.to_flat_state(res.state.params)}
    if distributed.is_primary():
        np.savez(f"{workdir}/params.npz", **params)
        print("history", res.history["train_loss"], flush=True)
    distributed.shutdown()
    """
)


class Net(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(6, 16, rngs=rngs)
        self.l2 = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.relu(self.l1(x)))


def blobs(n=256):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n).astype(np.int32)
    x = (rng.normal(size=(3, 6))[y] * 2 + rng.normal(size=(n, 6))).astype(np.float32)
    return {"x": x, "y": y}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_initialize_single_process_is_a_no_op(monkeypatch):
    for k in (distributed.ENV_COORDINATOR, distributed.ENV_NUM_PROCESSES, "TPU_WORKER_HOSTNAMES"):
        monkeypatch.delenv(k, raising=False)
    assert distributed.initialize() is False
    assert distributed.is_primary()
    with pytest.raises(ValueError, match="number of processes"):
        distributed.initialize("127.0.0.1:1234")
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "2")
    with pytest.raises(ValueError, match="coordinator"):
        distributed.initialize()


def test_two_processes_match_one(tmp_path):
    port = _free_port()
    here = os.path.dirname(os.path.abspath(__file__))
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, f"127.0.0.1:{port}", str(pid), str(tmp_path), here],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for pid in (0, 1)
    ]
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=120)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the two-process run timed out")
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-4000:]
    # Only process 0 logs; both took part in the checkpoint, process 0 wrote metrics.json.
    assert "[0] epoch 2/2" in outs[0] and "epoch" not in outs[1].replace("epochs", "")
    history = json.loads((tmp_path / "metrics.json").read_text())
    assert history["epoch"] == [1, 2]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]

    single = fit(
        SupervisedTask(Net(nnx.Rngs(0)), optax.adam(0.01)),
        ArrayLoader(blobs(), 32, seed=0),
        val_data=ArrayLoader(blobs(), 64, shuffle=False),
        epochs=2,
        mesh=None,
        progress=False,
        log=lambda s: None,
    )
    got = dict(np.load(tmp_path / "params.npz"))
    want = {"/".join(map(str, k)): np.asarray(v) for k, v in nnx.to_flat_state(single.state.params)}
    assert got.keys() == want.keys()
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history["train_loss"], single.history["train_loss"], rtol=1e-5)
