"""Autoencoder and VAE (beyond the book): the ELBO's terms against closed forms, the
reparameterisation, the models' sizes, and both learning real Fashion-MNIST."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.data import ArrayLoader, image_transform
from d2ljax.models import get_model
from d2ljax.models.vae import VAE, Autoencoder
from d2ljax.tasks import SupervisedTask
from d2ljax.tasks.vae import VAETask, bernoulli_nll, gaussian_kl, vae_elbo
from d2ljax.train import fit, num_params


def test_parameter_counts():
    """784 -> 512 -> 2 latent (VAE: 2 x 2 outputs, mean and log-variance) -> 512 -> 784:
    VAE 784*512 + 512 + 512*4 + 4 = 403,972 encoder, 2*512 + 512 + 512*784 + 784 = 403,728
    decoder, 807,700 in all; the autoencoder's encoder has 512*2 + 2 outputs: 806,674."""
    assert num_params(get_model("vae", rngs=nnx.Rngs(0))) == 807_700
    assert num_params(get_model("autoencoder", rngs=nnx.Rngs(0))) == 806_674
    out = VAE(latent_dim=3, rngs=nnx.Rngs(0))(jnp.zeros((4, 28, 28, 1)))
    assert [o.shape for o in out] == [(4, 28, 28, 1), (4, 3), (4, 3)]
    assert Autoencoder(rngs=nnx.Rngs(0))(jnp.zeros((4, 28, 28, 1))).shape == (4, 28, 28, 1)


def test_elbo_terms_against_closed_forms():
    """KL(N(1, e^0.5) || N(0, 1)) = (e^0.5 + 1 - 1 - 0.5) / 2 = 0.57436, and the same as a
    Monte Carlo mean of log q(z) - log p(z) over 400,000 draws; KL of N(0, 1) is 0; the
    reconstruction term is -sum(x log s + (1 - x) log(1 - s)), s = sigmoid(logits)."""
    mu, logvar = jnp.array([[1.0, 0.0]]), jnp.array([[0.5, 0.0]])
    np.testing.assert_allclose(gaussian_kl(mu, logvar), [(np.exp(0.5) - 0.5) / 2], rtol=1e-6)
    z = 1.0 + np.exp(0.25) * np.random.default_rng(0).standard_normal(400_000)
    log_q = -0.5 * ((z - 1.0) ** 2 / np.exp(0.5) + 0.5 + np.log(2 * np.pi))
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    assert (log_q - log_p).mean() == pytest.approx(0.57436, rel=0.01)
    logits = jnp.array([[[[0.3], [-2.0]]]])  # [1, 1, 2, 1]
    x = jnp.array([[[[1.0], [0.25]]]])
    s = 1 / (1 + np.exp(-np.array([0.3, -2.0])))
    want = -(np.log(s[0]) + 0.25 * np.log(s[1]) + 0.75 * np.log(1 - s[1]))
    np.testing.assert_allclose(bernoulli_nll(logits, x), [want], rtol=1e-5)


def test_reparameterisation_samples_the_posterior_and_passes_gradients():
    """z = mu + exp(logvar / 2) eps: mean mu, standard deviation exp(logvar / 2); dz/dmu = 1,
    d mean(z^2)/d logvar = exp(logvar) (E[z^2] = mu^2 + exp(logvar))."""
    vae = VAE(rngs=nnx.Rngs(0))
    mu, logvar = jnp.full((20000, 2), 0.5), jnp.full((20000, 2), np.log(0.09))
    z = np.asarray(vae.reparameterize(mu, logvar))
    np.testing.assert_allclose(z.mean(0), 0.5, atol=0.01)
    np.testing.assert_allclose(z.std(0), 0.3, rtol=0.02)

    def second_moment(lv):  # a fresh (tiny) module inside the trace: its noise stream is local
        tiny = VAE(latent_dim=1, num_hiddens=1, num_pixels=1, rngs=nnx.Rngs(1))
        return (tiny.reparameterize(jnp.zeros((20000, 1)), jnp.full((20000, 1), lv)) ** 2).mean()

    assert float(jax.grad(second_moment)(0.0)) == pytest.approx(1.0, rel=0.05)


def test_elbo_loss_weights_padding_out():
    """Masked rows change neither the loss nor its sums: a padded batch equals the real one."""
    vae = VAE(rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
    nnx.reseed(vae, noise=jax.random.key(5))
    loss, sums = vae_elbo(vae, {"x": x})
    padded = {
        "x": jnp.concatenate([x, jnp.zeros((2, 28, 28, 1))]),
        "mask": jnp.array([1.0, 1, 1, 0, 0]),
    }
    nnx.reseed(vae, noise=jax.random.key(5))
    loss_p, sums_p = vae_elbo(vae, padded)
    assert float(sums_p["count"]) == 3
    chex.assert_trees_all_close(loss_p, loss, rtol=1e-5)
    chex.assert_trees_all_close(sums_p["kl"], sums["kl"], rtol=1e-5)
    chex.assert_trees_all_close(sums["loss"], sums["recon"] + sums["kl"], rtol=1e-6)


@pytest.mark.slow
def test_vae_and_autoencoder_learn_fashion_mnist(fashion_mnist):
    """One epoch (12000 real training images, batch 128, Adam 1e-3, latent 2): on 2000 test
    images the VAE's negative ELBO (an upper bound on -log p(x)) and the autoencoder's
    reconstruction loss fall below the negative log-likelihood of the best input-independent
    Bernoulli model (each pixel's training mean), and the ELBO's KL term is in use (> 1 nat)."""
    train_x, test_x = fashion_mnist["train"]["x"][:12000], fashion_mnist["test"]["x"][:2000]
    train = ArrayLoader({"x": train_x}, 128, seed=0, transform=image_transform(), on_device=True)
    val = ArrayLoader(
        {"x": test_x}, 500, shuffle=False, transform=image_transform(), on_device=True
    )
    kw = dict(val_data=val, epochs=1, progress=False, log=lambda s: None, plot=False)
    vae = fit(VAETask(VAE(rngs=nnx.Rngs(0)), optax.adam(1e-3)), train, **kw)
    ae = fit(
        SupervisedTask(Autoencoder(rngs=nnx.Rngs(0)), optax.adam(1e-3), "reconstruction"),
        train,
        **kw,
    )
    m = (train_x.astype(np.float64) / 255).mean(0).clip(1e-6, 1 - 1e-6)
    x = test_x.astype(np.float64) / 255
    baseline = -(x * np.log(m) + (1 - x) * np.log(1 - m)).reshape(len(x), -1).sum(1).mean()
    h_vae, h_ae = vae.history, ae.history
    print(
        f"baseline {baseline:.1f}, VAE -ELBO {h_vae['val_loss'][-1]:.1f} (recon "
        f"{h_vae['val_recon'][-1]:.1f}, kl {h_vae['val_kl'][-1]:.2f}), "
        f"AE {h_ae['val_loss'][-1]:.1f}"
    )
    assert h_vae["val_loss"][-1] < baseline
    assert h_ae["val_loss"][-1] < baseline
    assert h_vae["val_kl"][-1] > 1.0
