"""Generative adversarial training (book §20.1, §20.2): two models, two optimizers, one step.

Each step first updates the discriminator on real points (label 1) and generated ones (label 0),
then the generator, through the updated discriminator, towards having its points called real
(the book's ``update_D`` then ``update_G``). The noise of step ``t`` is drawn from
``fold_in(rng, t)``, so a resumed run draws exactly what an uninterrupted one does.

Both models are used in training mode throughout, as the book's networks are: a batch-norm layer
(DCGAN, §20.2) normalises by the statistics of the batch it is called on (the real and the
generated batch separately, in the discriminator), over the real rows only when the batch is
padded, and its moving statistics are carried in the state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from d2ljax.train.steps import _masked_batch_norms
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
    g_rest: Any = None  # the generator's non-parameter state (batch-norm statistics)
    d_rest: Any = None

    def generator(self) -> nnx.Module:
        return nnx.merge(self.g_def, self.g_params, self.g_rest)

    def discriminator(self) -> nnx.Module:
        return nnx.merge(self.d_def, self.d_params, self.d_rest)


def _bce(logits_B, label: float, w_B):
    """Weighted mean binary cross-entropy against a constant label (``nn.BCEWithLogitsLoss``)."""
    ce_B = optax.sigmoid_binary_cross_entropy(logits_B, jnp.full_like(logits_B, label))
    return (ce_B * w_B).sum() / jnp.maximum(w_B.sum(), 1.0)


def _apply(graphdef, params, rest, x, mask_B):
    """``model(x)`` of the module ``(graphdef, params, rest)`` and its updated ``rest``; with a
    ``mask_B``, batch norms take their statistics over the rows where it is 1."""
    model = nnx.merge(graphdef, params, rest, copy=True)
    if mask_B is not None:
        _masked_batch_norms(model, mask_B)
    out = model(x)
    _, _, rest = nnx.split(model, nnx.Param, ...)
    return out, rest


class GANTask(Task):
    """Train ``generator`` (noise ``[B, latent_dim]`` -> samples) against ``discriminator``
    (samples -> one logit each) on batches ``{"x": real samples}``, with ``g_optimizer`` and
    ``d_optimizer`` (the book, §20.1: Adam 0.005 and 0.05). Reported: ``loss_D`` and ``loss_G``
    (the book's per-example losses).

    ``preprocess`` (optional, traceable) maps a batch's real samples before the discriminator
    sees them, e.g. ``lambda x: 2 * x - 1`` for images in [0, 1] against a tanh generator
    (§20.2's ``Normalize(0.5, 0.5)``). The noise has shape ``[B, *latent_shape]``, with
    ``latent_shape = (latent_dim,)`` unless given (DCGAN's generator takes ``[B, 1, 1, 100]``).
    """

    def __init__(
        self,
        generator,
        discriminator,
        g_optimizer,
        d_optimizer,
        *,
        latent_dim: int,
        latent_shape: tuple[int, ...] | None = None,
        preprocess: Callable[[jax.Array], jax.Array] | None = None,
    ):
        self.generator, self.discriminator = generator, discriminator
        self.g_tx, self.d_tx = g_optimizer, d_optimizer
        self.latent_dim = latent_dim
        self.latent_shape = tuple(latent_shape) if latent_shape else (latent_dim,)
        self.preprocess = preprocess

    def init(self, rng, spec=None) -> GANState:
        g_def, g_params, g_rest = nnx.split(self.generator, nnx.Param, ...)
        d_def, d_params, d_rest = nnx.split(self.discriminator, nnx.Param, ...)
        return GANState(
            step=jnp.zeros((), jnp.int32),
            g_params=g_params,
            d_params=d_params,
            g_opt=self.g_tx.init(g_params),
            d_opt=self.d_tx.init(d_params),
            rng=rng,
            g_def=g_def,
            d_def=d_def,
            g_rest=g_rest,
            d_rest=d_rest,
        )

    def noise(self, key, n: int) -> jax.Array:
        """``n`` latent vectors, ``[n, *latent_shape]`` standard normal."""
        return jax.random.normal(key, (n, *self.latent_shape))

    def train_step(self, state: GANState, batch):
        x_B = batch["x"]
        if self.preprocess is not None:
            x_B = self.preprocess(x_B)
        mask_B = batch.get("mask")
        w_B = jnp.ones(x_B.shape[0], jnp.float32) if mask_B is None else mask_B
        z_B = self.noise(jax.random.fold_in(state.rng, state.step), x_B.shape[0])
        fake_B, g_rest = _apply(state.g_def, state.g_params, state.g_rest, z_B, mask_B)
        fake_B = jax.lax.stop_gradient(fake_B)

        def loss_d(d_params, d_rest):
            real_logits, d_rest = _apply(state.d_def, d_params, d_rest, x_B, mask_B)
            fake_logits, d_rest = _apply(state.d_def, d_params, d_rest, fake_B, mask_B)
            return (_bce(real_logits, 1.0, w_B) + _bce(fake_logits, 0.0, w_B)) / 2, d_rest

        (l_d, d_rest), g_d = jax.value_and_grad(loss_d, has_aux=True)(
            state.d_params, state.d_rest
        )
        upd, d_opt = self.d_tx.update(g_d, state.d_opt, state.d_params)
        d_params = optax.apply_updates(state.d_params, upd)

        def loss_g(g_params, g_rest, d_rest):
            fake, g_rest = _apply(state.g_def, g_params, g_rest, z_B, mask_B)
            logits, d_rest = _apply(state.d_def, d_params, d_rest, fake, mask_B)
            return _bce(logits, 1.0, w_B), (g_rest, d_rest)

        (l_g, (g_rest, d_rest)), g_g = jax.value_and_grad(loss_g, has_aux=True)(
            state.g_params, g_rest, d_rest
        )
        upd, g_opt = self.g_tx.update(g_g, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, upd)
        n = w_B.sum()
        new = state.replace(
            step=state.step + 1,
            g_params=g_params,
            d_params=d_params,
            g_opt=g_opt,
            d_opt=d_opt,
            g_rest=g_rest,
            d_rest=d_rest,
        )
        return new, {"loss_D": l_d * n, "loss_G": l_g * n, "count": n}

    def model(self, state: GANState) -> nnx.Module:
        return state.generator()

    def sample(self, state: GANState, key, n: int) -> jax.Array:
        """``n`` generated samples from noise drawn with ``key`` (the generator in training mode,
        as the book samples: batch norms use the statistics of these ``n`` samples)."""
        return state.generator()(self.noise(key, n))


def frechet_distance(a_ND, b_ND) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of feature vectors (rows):
    ``|m_a - m_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)``, in float64 on the host. On
    Inception features it is the FID; on other features it is that features' distance, not
    the FID. 0 for equal statistics; a constant set against ``b`` gives ``|m_a - m_b|^2 +
    tr(C_b)``."""
    a, b = np.asarray(a_ND, np.float64), np.asarray(b_ND, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two [N >= 2, D] arrays of one D, got {a.shape} and {b.shape}")
    ca, cb = np.atleast_2d(np.cov(a.T)), np.atleast_2d(np.cov(b.T))
    w, v = np.linalg.eigh(ca)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cb @ root_a), 0, None)).sum()
    mean = ((a.mean(0) - b.mean(0)) ** 2).sum()
    return float(mean + np.trace(ca) + np.trace(cb) - 2 * cross)
