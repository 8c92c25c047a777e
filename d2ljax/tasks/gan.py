"""Generative adversarial training (book §20.1): two models, two optimizers, one step.

Each step first updates the discriminator on real points (label 1) and generated ones (label 0),
then the generator, through the updated discriminator, towards having its points called real
(the book's ``update_D`` then ``update_G``). The noise of step ``t`` is drawn from
``fold_in(rng, t)``, so a resumed run draws exactly what an uninterrupted one does.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from d2ljax.train.task import Task, TaskState


class GANState(TaskState, struct.PyTreeNode):
    step: jax.Array
    g_params: Any
    d_params: Any
    g_opt: Any
    d_opt: Any
    rng: jax.Array
    g_def: Any = struct.field(pytree_node=False)
    d_def: Any = struct.field(pytree_node=False)

    def generator(self) -> nnx.Module:
        return nnx.merge(self.g_def, self.g_params)

    def discriminator(self) -> nnx.Module:
        return nnx.merge(self.d_def, self.d_params)


def _bce(logits_B, label: float, w_B):
    """Weighted mean binary cross-entropy against a constant label (``nn.BCEWithLogitsLoss``)."""
    ce_B = optax.sigmoid_binary_cross_entropy(logits_B, jnp.full_like(logits_B, label))
    return (ce_B * w_B).sum() / jnp.maximum(w_B.sum(), 1.0)


class GANTask(Task):
    """Train ``generator`` (noise ``[B, latent_dim]`` -> samples) against ``discriminator``
    (samples -> one logit each) on batches ``{"x": real samples}``, with ``g_optimizer`` and
    ``d_optimizer`` (the book: Adam 0.005 and 0.05). Reported: ``loss_D`` and ``loss_G`` (the
    book's per-example losses).

    The generator and discriminator are NNX modules holding only parameters.
    """

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, *, latent_dim: int):
        self.generator, self.discriminator = generator, discriminator
        self.g_tx, self.d_tx = g_optimizer, d_optimizer
        self.latent_dim = latent_dim

    def init(self, rng, spec=None) -> GANState:
        g_def, g_params = nnx.split(self.generator)
        d_def, d_params = nnx.split(self.discriminator)
        return GANState(
            step=jnp.zeros((), jnp.int32),
            g_params=g_params,
            d_params=d_params,
            g_opt=self.g_tx.init(g_params),
            d_opt=self.d_tx.init(d_params),
            rng=rng,
            g_def=g_def,
            d_def=d_def,
        )

    def train_step(self, state: GANState, batch):
        x_BD = batch["x"]
        w_B = batch.get("mask", jnp.ones(x_BD.shape[0], jnp.float32))
        z_BL = jax.random.normal(
            jax.random.fold_in(state.rng, state.step), (x_BD.shape[0], self.latent_dim)
        )
        fake_BD = jax.lax.stop_gradient(nnx.merge(state.g_def, state.g_params)(z_BL))

        def loss_d(d_params):
            d = nnx.merge(state.d_def, d_params)
            return (_bce(d(x_BD), 1.0, w_B) + _bce(d(fake_BD), 0.0, w_B)) / 2

        l_d, g_d = jax.value_and_grad(loss_d)(state.d_params)
        upd, d_opt = self.d_tx.update(g_d, state.d_opt, state.d_params)
        d_params = optax.apply_updates(state.d_params, upd)

        def loss_g(g_params):
            fake = nnx.merge(state.g_def, g_params)(z_BL)
            return _bce(nnx.merge(state.d_def, d_params)(fake), 1.0, w_B)

        l_g, g_g = jax.value_and_grad(loss_g)(state.g_params)
        upd, g_opt = self.g_tx.update(g_g, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, upd)
        n = w_B.sum()
        new = state.replace(
            step=state.step + 1, g_params=g_params, d_params=d_params, g_opt=g_opt, d_opt=d_opt
        )
        return new, {"loss_D": l_d * n, "loss_G": l_g * n, "count": n}

    def model(self, state: GANState) -> nnx.Module:
        return state.generator()

    def sample(self, state: GANState, key, n: int) -> jax.Array:
        """``n`` generated samples from noise drawn with ``key``."""
        return state.generator()(jax.random.normal(key, (n, self.latent_dim)))
