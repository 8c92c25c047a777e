"""Learning a Gaussian process's hyperparameters (book §18.3) by its marginal likelihood.

The objective is GPyTorch's ``ExactMarginalLogLikelihood``: ``-log p(y | x, theta) / n`` over
the whole training set, so a batch is the whole training set (``batch_size = n``; a GP's
likelihood does not split into per-example terms). The book's run: Adam, learning rate 0.1, 50
steps.

Two ways to run it, with the same result:

* :func:`learn_hyperparameters`: the plain loop a reader can follow (grad, optax update);
* :class:`GPTask`: the same step as a :class:`~d2ljax.train.Task` for :func:`d2ljax.train.fit`
  (checkpoints, resume, metrics; the registered loss ``"gp_marginal_likelihood"`` lets a config
  name it, see ``configs/gp_regression.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from d2ljax.tasks.supervised import SupervisedTask
from d2ljax.train.losses import register_loss

__all__ = ["GPTask", "gp_marginal_likelihood", "learn_hyperparameters"]


@register_loss("gp_marginal_likelihood")
def gp_marginal_likelihood(model, batch: dict):
    """``-log p(y | x) / n`` of a :class:`~d2ljax.models.gp.GPRegression` on the batch
    ``{"x": [N, D], "y": [N], "mask": [N] (optional)}`` (masked rows left out exactly). The
    metric sums report it (``loss``) and the hyperparameters after the step's forward pass,
    each once per step (``count`` 1: an epoch reports their mean over its steps)."""
    mask = batch.get("mask")
    n = batch["y"].shape[0] if mask is None else mask.astype(jnp.float32).sum()
    loss = -model.log_marginal_likelihood(batch["x"], batch["y"], mask) / n
    metrics = {"loss": loss, "count": jnp.float32(1.0)}
    metrics.update({k: v.astype(jnp.float32) for k, v in model.hyperparameters().items()})
    return loss, metrics


class GPTask(SupervisedTask):
    """Train a GP's hyperparameters with ``optimizer`` (e.g. ``optax.adam(0.1)``) on full-batch
    data (``ArrayLoader(train, batch_size=n)``: one step an epoch). The state is a
    :class:`~d2ljax.train.TrainState`; ``fit`` checkpoints and resumes it like any other."""

    def __init__(self, model: nnx.Module, optimizer):
        super().__init__(model, optimizer, gp_marginal_likelihood)

    def program_key(self):
        return (GPTask, gp_marginal_likelihood)


def learn_hyperparameters(model: nnx.Module, x, y, optimizer=None, *, steps: int = 50):
    """Fit ``model``'s hyperparameters in place by ``steps`` optimizer steps on
    ``-log p(y | x) / n`` (default optimizer: the book's Adam 0.1). Returns the loss before each
    step, ``[steps]``."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    optimizer = optimizer or optax.adam(0.1)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params):
        m = nnx.merge(graphdef, params, rest)
        return -m.log_marginal_likelihood(x, y) / y.shape[0]

    @jax.jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    opt_state = optimizer.init(params)
    losses = []
    for _ in range(steps):
        params, opt_state, value = step(params, opt_state)
        losses.append(value)
    nnx.update(model, params)
    return jnp.stack(losses)
