import os
import subprocess
import sys
import textwrap

import pytest

from d2ljax.parallel import make_mesh


def test_make_mesh_single_device():
    mesh = make_mesh()
    assert mesh.axis_names == ("data",) and mesh.shape["data"] >= 1
    with pytest.raises(ValueError, match="at most one"):
        make_mesh({"data": -1, "model": -1})
    with pytest.raises(ValueError, match="needs"):
        make_mesh({"data": 3})


def test_data_parallel_fit_matches_single_device():
    """fit over a 4-device data mesh gives the parameters of a single-device run (the batch is
    split over devices and the gradient all-reduced by XLA)."""
    code = textwrap.dedent("""
        import jax, numpy as np, optax, chex
        from flax import nnx
        from d2ljax.data import ArrayLoader
        from d2ljax.parallel import make_mesh, batch_sharding
        from d2ljax.train import fit
        from d2ljax.tasks import SupervisedTask
        rng = np.random.default_rng(0)
        d = {"x": rng.normal(size=(256, 8)).astype(np.float32),
             "y": rng.integers(0, 3, 256).astype(np.int32)}
        def run(mesh):
            sh = batch_sharding(mesh) if mesh is not None else None
            loader = ArrayLoader(d, 32, seed=0, sharding=sh, on_device=True)
            model = nnx.Linear(8, 3, rngs=nnx.Rngs(0))
            return fit(SupervisedTask(model, optax.sgd(0.1)), loader, epochs=2, mesh=mesh,
                       progress=False, log=lambda s: None)
        single = run(None)
        mesh = make_mesh({"data": 4})
        multi = run(mesh)
        leaf = jax.tree.leaves(multi.state.params)[0]
        assert len(leaf.sharding.device_set) == 4, leaf.sharding
        chex.assert_trees_all_close(jax.device_get(single.state.params),
                                    jax.device_get(multi.state.params), rtol=1e-5, atol=1e-6)
        print("ok", single.history["train_loss"][-1], multi.history["train_loss"][-1])
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")
