"""GANs through the experiment layer (book ch 20): the §20.1 config trains its GANTask end to
end, the task's losses equal hand-computed ones, bad task settings are clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from d2ljax.cli import load_config, main
from d2ljax.config import ConfigError, apply_overrides
from d2ljax.data.synthetic import gan_toy_data
from d2ljax.experiment import build, run, validate
from d2ljax.models.gan import ToyDiscriminator, ToyGenerator
from d2ljax.tasks import GANTask


@pytest.mark.slow
def test_gan_gaussian_config_learns_the_gaussian(tmp_path):
    """``d2ljax train gan_gaussian`` as configured (book §20.1: 20 epochs, batch 8, Adam 0.005 /
    0.05): the generated points' mean within 0.3 of the data's ([1, 2]) and covariance within
    0.6 of A^T A = [[1.01, 1.95], [1.95, 4.25]] (elementwise), where the untrained generator's
    mean is more than 0.3 off; the losses end near log 2 = 0.693 (the discriminator is fooled)."""
    res = run(load_config("gan_gaussian"), tmp_path, progress=False)
    assert res.history["epoch"][-1] == 20
    real = gan_toy_data(1000, seed=0)["x"]
    fake = np.asarray(res.task.sample(res.state, jax.random.key(7), 5000))
    err = lambda x: np.abs(x.mean(0) - real.mean(0)).max()
    untrained = build(load_config("gan_gaussian")).model
    start = untrained(jax.random.normal(jax.random.key(7), (5000, 2)))
    assert err(fake) < 0.3 < err(np.asarray(start))
    assert np.abs(np.cov(fake.T) - np.cov(real.T)).max() < 0.6
    assert abs(res.history["train_loss_D"][-1] - np.log(2)) < 0.05
    assert (tmp_path / "metrics.json").is_file()


def test_gan_losses_equal_hand_computed_values():
    """The first step's reported losses: loss_D = (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2 with the
    initial networks, loss_G = BCE(D'(G(z)), 1) with D' the discriminator after its Adam step,
    BCE(l, 1) = log(1 + e^-l), BCE(l, 0) = log(1 + e^l), z = N(0, 1) from fold_in(key, 0)."""
    g, d = ToyGenerator(rngs=nnx.Rngs(0)), ToyDiscriminator(rngs=nnx.Rngs(1))
    task = GANTask(g, d, optax.sgd(0.0), optax.sgd(0.5), latent_dim=2)
    x = jnp.asarray(gan_toy_data(8, seed=3)["x"])
    state = task.init(jax.random.key(4))
    new, sums = jax.jit(task.train_step)(state, {"x": x})
    z = jax.random.normal(jax.random.fold_in(jax.random.key(4), 0), (8, 2))
    fake = np.asarray(g(z), np.float64)
    real_l, fake_l = np.asarray(d(x), np.float64), np.asarray(d(fake), np.float64)
    loss_d = (np.log1p(np.exp(-real_l)).mean() + np.log1p(np.exp(fake_l)).mean()) / 2
    np.testing.assert_allclose(float(sums["loss_D"]) / 8, loss_d, rtol=1e-5)
    # the discriminator moved by SGD 0.5 along its gradient; the generator (lr 0) did not
    d_new = new.discriminator()
    assert not np.allclose(np.asarray(d_new(x)), real_l)
    loss_g = np.log1p(np.exp(-np.asarray(d_new(fake), np.float64))).mean()
    np.testing.assert_allclose(float(sums["loss_G"]) / 8, loss_g, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(new.generator()(z)), np.asarray(g(z)))
    assert float(sums["count"]) == 8


@pytest.mark.parametrize(
    "override, message",
    [
        ("task.name=gam", "config key `task.name` must be one of"),
        ("task.discriminator.name=nope", "unknown model 'nope'"),
        ("task.d_optimizer.learning_rate=-1.0", "config key `task.d_optimizer.learning_rate`"),
    ],
)
def test_bad_gan_settings_are_clear_errors(override, message, capsys):
    with pytest.raises(ConfigError, match=message):
        validate(apply_overrides(load_config("gan_gaussian"), [override]))
    assert main(["train", "gan_gaussian", "--set", override]) == 2
    assert message.split("'")[0] in capsys.readouterr().err
