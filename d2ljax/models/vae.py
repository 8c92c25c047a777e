"""An autoencoder and a variational autoencoder (Kingma & Welling 2014) on 28x28 grey images:
generative models beyond the book (Hung-yi Lee's course; the issue's "beyond the book").

Both are MLPs: encoder ``784 -> num_hiddens -> latent``, decoder ``latent -> num_hiddens -> 784``
(ReLU), the decoder giving per-pixel Bernoulli logits. The VAE's encoder gives the mean and the
log-variance of a diagonal Gaussian posterior ``q(z | x)``; in training mode it samples ``z`` by
the reparameterisation ``z = mu + exp(logvar / 2) * eps``, ``eps`` drawn from its ``noise`` RNG
stream (which a Task reseeds from its key and step), in training and in evaluation alike (so a
validation loss is a one-sample estimate of the ELBO); :meth:`VAE.reconstruct` decodes the mean.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register


def _mlp(n_in: int, n_hidden: int, n_out: int, rngs: nnx.Rngs) -> nnx.Sequential:
    return nnx.Sequential(
        nnx.Linear(n_in, n_hidden, rngs=rngs), nnx.relu, nnx.Linear(n_hidden, n_out, rngs=rngs)
    )


@register("autoencoder", description="beyond the book: MLP autoencoder, 784 -> latent -> 784")
class Autoencoder(nnx.Module):
    """``x [B, 28, 28, 1]`` in [0, 1] -> reconstruction logits of the same shape, through a
    ``latent_dim`` bottleneck (:meth:`encode`, :meth:`decode`)."""

    def __init__(
        self, latent_dim: int = 2, num_hiddens: int = 512, num_pixels: int = 784, *, rngs: nnx.Rngs
    ):
        self.encoder = _mlp(num_pixels, num_hiddens, latent_dim, rngs)
        self.decoder = _mlp(latent_dim, num_hiddens, num_pixels, rngs)

    def encode(self, x_BHWC):
        return self.encoder(x_BHWC.reshape(x_BHWC.shape[0], -1))

    def decode(self, z_BL, shape=(28, 28, 1)):
        return self.decoder(z_BL).reshape(z_BL.shape[0], *shape)

    def __call__(self, x_BHWC):
        return self.decode(self.encode(x_BHWC), x_BHWC.shape[1:])


@register("vae", description="beyond the book: MLP VAE, Gaussian posterior, Bernoulli pixels")
class VAE(nnx.Module):
    """``x [B, 28, 28, 1]`` in [0, 1] -> ``(logits [B, 28, 28, 1], mu [B, L], logvar [B, L])``;
    :meth:`decode` maps latents (e.g. prior samples) to pixel logits."""

    def __init__(
        self, latent_dim: int = 2, num_hiddens: int = 512, num_pixels: int = 784, *, rngs: nnx.Rngs
    ):
        self.encoder = _mlp(num_pixels, num_hiddens, 2 * latent_dim, rngs)
        self.decoder = _mlp(latent_dim, num_hiddens, num_pixels, rngs)
        self.noise = nnx.Rngs(noise=rngs.params())
        self.latent_dim = latent_dim

    def encode(self, x_BHWC):
        """The posterior's mean and log-variance, ``[B, L]`` each."""
        h = self.encoder(x_BHWC.reshape(x_BHWC.shape[0], -1))
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def decode(self, z_BL, shape=(28, 28, 1)):
        return self.decoder(z_BL).reshape(z_BL.shape[0], *shape)

    def reparameterize(self, mu_BL, logvar_BL):
        """``mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)`` from the ``noise`` stream."""
        eps = jax.random.normal(self.noise.noise(), mu_BL.shape)
        return mu_BL + jnp.exp(0.5 * logvar_BL) * eps

    def __call__(self, x_BHWC):
        mu, logvar = self.encode(x_BHWC)
        return self.decode(self.reparameterize(mu, logvar), x_BHWC.shape[1:]), mu, logvar

    def reconstruct(self, x_BHWC):
        """Pixel logits decoded from the posterior mean."""
        return self.decode(self.encode(x_BHWC)[0], x_BHWC.shape[1:])
