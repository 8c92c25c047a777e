"""A long data-parallel run on several CPU devices finishes (``in_flight_limit``).

Without the limit, XLA:CPU aborted this exact run after ~60 s with "Termination timeout for all
reduce" (2 simulated devices on a 2-core machine, 400 MLP steps on an on-device uint8 dataset: the
queue of dispatched steps grows long); with it, the run takes ~5 s. Run ``LONG_RUN`` with an
argument to see the unprotected loop fail.
"""

import jax
from _fake_devices import run_on_fake_devices

from d2ljax.parallel import in_flight_limit
from d2ljax.parallel.mesh import CPU_MAX_IN_FLIGHT

LONG_RUN = """
import sys
import numpy as np, optax
from flax import nnx
import d2ljax.parallel.mesh as mesh_mod
from d2ljax.data import ArrayLoader
from d2ljax.tasks import SupervisedTask
from d2ljax.data.pipeline import image_transform
from d2ljax.models.mlp import MLP
from d2ljax.train import fit
if len(sys.argv) > 1:  # the unprotected loop, to show what the limit prevents
    mesh_mod.CPU_MAX_IN_FLIGHT = 10**9
rng = np.random.default_rng(0)
n = 256 * 400
data = {"x": rng.integers(0, 256, (n, 28, 28, 1), np.uint8), "y": rng.integers(0, 10, n, np.int32)}
loader = ArrayLoader(data, 256, seed=0, on_device=True, transform=image_transform())
res = fit(SupervisedTask(MLP(rngs=nnx.Rngs(0)), optax.sgd(0.1)), loader,
          epochs=1, progress=False, log=lambda s: None, steps_per_call=1)  # a call per step
assert len(res.state.params["hidden"]["kernel"][...].sharding.device_set) == 2
print("ok", res.history["train_loss"][-1])
"""


def test_limit_only_for_several_cpu_devices():
    cpu = jax.devices("cpu")[0]
    assert in_flight_limit([cpu]) == 0
    assert in_flight_limit([cpu, cpu]) == CPU_MAX_IN_FLIGHT


def test_long_data_parallel_run_on_two_cpu_devices_finishes():
    out = run_on_fake_devices(LONG_RUN, n=2, timeout=240)
    assert out.strip().splitlines()[-1].startswith("ok")
