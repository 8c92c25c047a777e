"""Data parallelism written out (book §13.5 "Training on Multiple GPUs") and concise (§13.6).

From scratch, as the book teaches it: keep a copy of the parameters on every device
(:func:`replicate`), split each minibatch into one slice per device (:func:`split_batch`), compute
each slice's gradient on its own device, add the gradients up over the devices (:func:`allreduce`,
``lax.psum``), and let every device apply the same update, so the copies stay identical. In JAX
the per-device program is one function mapped over the devices with ``jax.pmap`` (upstream keeps
``pmap`` in maintenance mode; it stays here because it is the clearest picture of the algorithm).

Concise: the same step as one ``jax.jit`` over a device mesh (:func:`mesh_train_step`): the batch
is laid out with ``NamedSharding(mesh, P("data"))``, the parameters replicated, and XLA inserts the
all-reduce itself. This is what :func:`d2ljax.train.fit` does.

The model of the section is the book's scratch LeNet (:func:`init_lenet`, :func:`lenet`): a pure
function of a parameter dict, so the parallel code is plain JAX.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from d2ljax.parallel.mesh import in_flight_limit, throttle

AXIS = "devices"

# -- the section's model: LeNet from scratch, a pure function of its parameters --------------------


def init_lenet(key: jax.Array, scale: float = 0.01) -> dict[str, jax.Array]:
    """The book's §13.5 LeNet parameters: N(0, scale^2) weights, zero biases (NHWC/HWIO)."""
    k = jax.random.split(key, 4)
    return {
        "w1": scale * jax.random.normal(k[0], (3, 3, 1, 20)),
        "b1": jnp.zeros(20),
        "w2": scale * jax.random.normal(k[1], (5, 5, 20, 50)),
        "b2": jnp.zeros(50),
        "w3": scale * jax.random.normal(k[2], (800, 128)),
        "b3": jnp.zeros(128),
        "w4": scale * jax.random.normal(k[3], (128, 10)),
        "b4": jnp.zeros(10),
    }


def _conv(x_BHWC, w_HWIO, b):
    y = lax.conv_general_dilated(
        x_BHWC, w_HWIO, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y + b


def _max_pool(x_BHWC):
    return lax.reduce_window(x_BHWC, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def lenet(params: dict[str, jax.Array], x_BHWC: jax.Array) -> jax.Array:
    """Logits of the §13.5 LeNet (conv 3x3x20, pool, conv 5x5x50, pool, 128, 10) on 28x28x1."""
    h = _max_pool(jax.nn.relu(_conv(x_BHWC, params["w1"], params["b1"])))
    h = _max_pool(jax.nn.relu(_conv(h, params["w2"], params["b2"])))
    h = h.reshape(h.shape[0], -1)
    h = jax.nn.relu(h @ params["w3"] + params["b3"])
    return h @ params["w4"] + params["b4"]


def cross_entropy_sum(params, x, y, apply: Callable = lenet) -> jax.Array:
    """Summed (not averaged) softmax cross-entropy, as the book's ``loss(...).sum()``."""
    logits = apply(params, x)
    return -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


# -- from scratch: replicate, split, per-device gradients, all-reduce, update ----------------------


def replicate(tree, num_devices: int | None = None):
    """One copy of every array per device: a leading device axis for ``jax.pmap``."""
    n = num_devices or jax.local_device_count()
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), tree)


def unreplicate(tree):
    """The first device's copy (all copies are equal after an all-reduced update)."""
    return jax.tree.map(lambda x: x[0], tree)


def split_batch(x, y, num_devices: int | None = None):
    """Split a minibatch into ``num_devices`` equal slices: ``(B, ...) -> (n, B/n, ...)``."""
    n = num_devices or jax.local_device_count()
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y have {x.shape[0]} and {y.shape[0]} examples")
    if x.shape[0] % n:
        raise ValueError(
            f"the batch ({x.shape[0]} examples) must split evenly over {n} devices; use a batch "
            f"size that is a multiple of {n}"
        )
    return (
        jnp.reshape(x, (n, x.shape[0] // n, *x.shape[1:])),
        jnp.reshape(y, (n, y.shape[0] // n, *y.shape[1:])),
    )


def allreduce(tree, axis_name: str = AXIS):
    """Sum every array over the devices (the book's ``allreduce``): ``lax.psum``."""
    return lax.psum(tree, axis_name)


def sgd(params, grads, lr: float, batch_size: int):
    """Minibatch SGD on summed gradients (the book's ``sgd(params, lr, batch_size)``)."""
    return jax.tree.map(lambda p, g: p - lr * g / batch_size, params, grads)


def pmap_train_step(loss_fn: Callable = cross_entropy_sum, lr: float = 0.2, axis_name: str = AXIS):
    """The §13.5 step as one per-device program, mapped over the devices with ``jax.pmap``.

    ``loss_fn(params, x, y)`` is a *summed* loss. Returns ``step(params_rep, x_split, y_split) ->
    (params_rep, loss_sum)`` with a leading device axis on every argument (see :func:`replicate`,
    :func:`split_batch`).
    """

    def step(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)  # this device's slice only
        grads = allreduce(grads, axis_name)  # sum over all devices' slices
        batch_size = lax.psum(x.shape[0], axis_name)
        return sgd(params, grads, lr, batch_size), allreduce(loss, axis_name)

    return jax.pmap(step, axis_name=axis_name)


# -- concise: one jit over a mesh ------------------------------------------------------------------


def _step(loss_fn: Callable, lr: float):
    def step(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return sgd(params, grads, lr, x.shape[0]), loss

    return step


def single_train_step(loss_fn: Callable = cross_entropy_sum, lr: float = 0.2):
    """The same update on one device: ``step(params, x, y) -> (params, loss_sum)``."""
    return jax.jit(_step(loss_fn, lr))


def mesh_train_step(
    mesh: Mesh, loss_fn: Callable = cross_entropy_sum, lr: float = 0.2, axis: str = "data"
):
    """§13.6, the JAX way: the single-device step, compiled once for a mesh. Parameters are
    replicated, the batch is sharded over ``axis``; the gradient's sum over the batch becomes an
    all-reduce that XLA inserts (and overlaps with the backward pass)."""
    rep = NamedSharding(mesh, PartitionSpec())
    data = NamedSharding(mesh, PartitionSpec(axis))
    return jax.jit(_step(loss_fn, lr), in_shardings=(rep, data, data), out_shardings=(rep, rep))


def train_batches(
    step_kind: str,
    params,
    batches,
    *,
    lr: float = 0.2,
    mesh: Mesh | None = None,
    loss_fn: Callable = cross_entropy_sum,
):
    """Run ``batches`` (an iterable of ``(x, y)``) through the ``"pmap"``, ``"mesh"`` or
    ``"single"`` step and return the final parameters and the per-step summed losses (host
    floats, read once at the end)."""
    losses = []
    if step_kind == "pmap":
        n = jax.local_device_count() if mesh is None else mesh.size
        step = pmap_train_step(loss_fn, lr)
        p = replicate(params, n)
        limit = in_flight_limit(jax.local_devices()[:n])
        for x, y in batches:
            p, loss = step(p, *split_batch(x, y, n))
            losses.append(loss[0])
            throttle(len(losses), limit, loss)
        params = unreplicate(p)
    elif step_kind in ("mesh", "single"):
        if step_kind == "mesh":
            if mesh is None:
                raise ValueError("the mesh step needs a mesh (d2ljax.parallel.make_mesh())")
            step = mesh_train_step(mesh, loss_fn, lr)
        else:
            step = single_train_step(loss_fn, lr)
        limit = in_flight_limit(mesh.devices.flat) if step_kind == "mesh" else 0
        for x, y in batches:
            params, loss = step(params, x, y)
            losses.append(loss)
            throttle(len(losses), limit, loss)
    else:
        raise ValueError(f"step_kind must be 'pmap', 'mesh' or 'single', got {step_kind!r}")
    return params, [float(v) for v in np.asarray(jax.device_get(losses))]
