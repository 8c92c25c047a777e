"""The book's toy GAN networks (§20.1): a linear generator and a small tanh discriminator."""

from __future__ import annotations

from flax import nnx

from d2ljax.models.registry import register


@register("gan_toy_generator", description="§20.1 toy GAN generator: Linear(2, 2)")
class ToyGenerator(nnx.Module):
    """``Linear(latent, 2)``: maps Gaussian noise to 2-D points (§20.1.2); 6 parameters at 2-D."""

    def __init__(self, latent_dim: int = 2, out_dim: int = 2, *, rngs: nnx.Rngs):
        self.net = nnx.Linear(latent_dim, out_dim, rngs=rngs)

    def __call__(self, z_BL):
        return self.net(z_BL)


@register(
    "gan_toy_discriminator", description="§20.1 toy GAN discriminator: 2-5-3-1, tanh"
)
class ToyDiscriminator(nnx.Module):
    """``Linear(2, 5)``, tanh, ``Linear(5, 3)``, tanh, ``Linear(3, 1)`` (§20.1.2): one logit per
    point (real: 1); 37 parameters."""

    def __init__(self, in_dim: int = 2, *, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(in_dim, 5, rngs=rngs)
        self.l2 = nnx.Linear(5, 3, rngs=rngs)
        self.l3 = nnx.Linear(3, 1, rngs=rngs)

    def __call__(self, x_BD):
        return self.l3(nnx.tanh(self.l2(nnx.tanh(self.l1(x_BD)))))[:, 0]
