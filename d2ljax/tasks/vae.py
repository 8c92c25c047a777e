"""Autoencoders and variational autoencoders (beyond the book): their losses and the VAE's Task.

* ``"reconstruction"`` (a registered loss, for :class:`~d2ljax.tasks.SupervisedTask`): the
  Bernoulli negative log-likelihood of ``batch["x"]`` (pixels in [0, 1]) under the logits
  ``model(x)``, summed over pixels, averaged over examples.
* ``"vae_elbo"`` (:func:`vae_elbo`): the negative evidence lower bound, per example, ``recon +
  kl`` with ``recon`` as above at ``z ~ q(z | x)`` (one reparameterised sample) and ``kl =
  KL(N(mu, diag exp(logvar)) || N(0, I))`` in closed form (:func:`gaussian_kl`); both reported.
* :class:`VAETask`: a :class:`~d2ljax.tasks.SupervisedTask` on ``vae_elbo``; its step reseeds the
  model's ``noise`` stream from ``fold_in(rng, step)``, so a resumed run draws the same ``eps``.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from d2ljax.tasks.supervised import SupervisedTask
from d2ljax.train.losses import example_weights, register_loss

__all__ = ["VAETask", "bernoulli_nll", "gaussian_kl", "reconstruction", "vae_elbo"]


def bernoulli_nll(logits_BHWC, x_BHWC):
    """``-log p(x | logits)`` per example, summed over pixels (``x`` in [0, 1]), ``[B]``."""
    nll = optax.sigmoid_binary_cross_entropy(logits_BHWC, x_BHWC)
    return nll.reshape(nll.shape[0], -1).sum(-1)


def gaussian_kl(mu_BL, logvar_BL):
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per example: ``(exp(logvar) + mu^2 - 1 -
    logvar) / 2`` summed over the latent dimensions, ``[B]``."""
    return 0.5 * (jnp.exp(logvar_BL) + mu_BL**2 - 1.0 - logvar_BL).sum(-1)


def _sums(w_B, **values_B):
    n = w_B.sum()
    return {k: (v * w_B).sum() for k, v in values_B.items()} | {"count": n}


@register_loss("reconstruction")
def reconstruction(model, batch: dict):
    """An autoencoder's loss: the Bernoulli negative log-likelihood of the input (see above)."""
    x = batch["x"]
    nll_B = bernoulli_nll(model(x), x)
    w_B = example_weights(batch, nll_B.shape[0])
    sums = _sums(w_B, loss=nll_B)
    return sums["loss"] / jnp.maximum(sums["count"], 1.0), sums


@register_loss("vae_elbo")
def vae_elbo(model, batch: dict):
    """The negative ELBO per example (``loss``), with its two terms ``recon`` and ``kl``."""
    x = batch["x"]
    logits, mu, logvar = model(x)
    recon_B, kl_B = bernoulli_nll(logits, x), gaussian_kl(mu, logvar)
    w_B = example_weights(batch, recon_B.shape[0])
    sums = _sums(w_B, loss=recon_B + kl_B, recon=recon_B, kl=kl_B)
    return sums["loss"] / jnp.maximum(sums["count"], 1.0), sums


class VAETask(SupervisedTask):
    """Train a :class:`~d2ljax.models.vae.VAE` with ``optimizer`` on the negative ELBO
    (:func:`vae_elbo`); validation reports the same one-sample estimate."""

    def __init__(self, model, optimizer):
        super().__init__(model, optimizer, vae_elbo)

    def program_key(self):
        return (VAETask, vae_elbo)
