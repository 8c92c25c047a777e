"""Print what JAX sees (run on each host): platform, device kind, local/global device counts,
process index, and a sum over all devices of all hosts as a smoke test of the interconnect."""

import jax
import jax.numpy as jnp
import numpy as np

from d2ljax.parallel import data_sharding, distributed, make_mesh, replicated

distributed.initialize()  # a no-op on one host; on a pod slice, from the TPU environment
devices = jax.devices()
print(
    f"process {jax.process_index()}/{jax.process_count()}: {jax.local_device_count()} local "
    f"of {jax.device_count()} devices, {devices[0].platform} {devices[0].device_kind}"
)
mesh = make_mesh({"data": -1})
ones = jax.make_array_from_process_local_data(
    data_sharding(mesh), np.ones(jax.local_device_count(), np.float32), (jax.device_count(),)
)
total = jax.jit(jnp.sum, out_shardings=replicated(mesh))(ones)
print(f"sum over all devices: {float(total)} (expect {jax.device_count()})")
