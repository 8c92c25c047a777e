"""The Task design beyond supervised learning: a two-player task (the book's toy GAN, §20.1) and a
task that reads no data (a bandit policy whose step samples its own actions) train through the
same ``fit``, checkpoint and resume."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from d2ljax.data import ArrayLoader
from d2ljax.data.synthetic import gan_toy_data
from d2ljax.models.gan import ToyDiscriminator, ToyGenerator
from d2ljax.tasks import GANTask
from d2ljax.train import Task, TaskState, fit, num_params


def _gan_task():
    return GANTask(
        ToyGenerator(rngs=nnx.Rngs(0)),
        ToyDiscriminator(rngs=nnx.Rngs(1)),
        optax.adam(0.005),
        optax.adam(0.05),
        latent_dim=2,
    )


def _gan_fit(epochs, **kw):
    data = ArrayLoader(gan_toy_data(1000, seed=0), 8, seed=0, on_device=True)
    return fit(_gan_task(), data, epochs=epochs, progress=False, log=lambda s: None, **kw)


def test_toy_gan_learns_the_data_distribution():
    """The book's setting (batch 8, Adam 0.005 / 0.05, latent 2): the generated points' mean
    and covariance approach the data's (mean [1, 2], covariance A^T A)."""
    assert num_params(ToyGenerator(rngs=nnx.Rngs(0))) == 6
    assert num_params(ToyDiscriminator(rngs=nnx.Rngs(0))) == 37
    res = _gan_fit(10)
    real = gan_toy_data(1000, seed=0)["x"]
    fake = np.asarray(res.task.sample(res.state, jax.random.key(7), 5000))
    start = np.asarray(
        _gan_task().sample(_gan_task().init(jax.random.key(0)), jax.random.key(7), 5000)
    )
    err = lambda x: np.abs(x.mean(0) - real.mean(0)).max()
    assert err(fake) < 0.3 < err(start)
    assert np.abs(np.cov(fake.T) - np.cov(real.T)).max() < 0.6
    assert {"train_loss_D", "train_loss_G"} <= set(res.history)


def test_toy_gan_resumes_bit_identically(tmp_path):
    straight = _gan_fit(3)
    _gan_fit(1, workdir=tmp_path / "w", plot=False)
    resumed = _gan_fit(3, workdir=tmp_path / "w", resume=True, plot=False)
    chex.assert_trees_all_equal(
        jax.device_get(straight.state.arrays()["g_params"]),
        jax.device_get(resumed.state.arrays()["g_params"]),
    )
    assert straight.history["train_loss_G"] == resumed.history["train_loss_G"]


class BanditState(TaskState, struct.PyTreeNode):
    step: jax.Array
    logits: jax.Array
    opt: optax.OptState
    rng: jax.Array


class BanditTask(Task):
    """A 5-armed Gaussian bandit and a softmax policy trained by REINFORCE with a mean-reward
    baseline: the step draws its 64 actions and rewards from ``fold_in(rng, step)`` and reads
    no data."""

    means = jnp.array([0.1, 0.5, -0.2, 1.0, 0.3])

    def __init__(self):
        self.tx = optax.adam(0.05)

    def init(self, rng, spec=None):
        assert spec is None
        logits = jnp.zeros(5)
        return BanditState(jnp.zeros((), jnp.int32), logits, self.tx.init(logits), rng)

    def train_step(self, state, batch):
        assert batch == {}
        k_a, k_r = jax.random.split(jax.random.fold_in(state.rng, state.step))
        a = jax.random.categorical(k_a, state.logits, shape=(64,))
        r = self.means[a] + jax.random.normal(k_r, (64,))

        def loss(logits):
            logp = jax.nn.log_softmax(logits)[a]
            return -(logp * (r - r.mean())).mean()

        g = jax.grad(loss)(state.logits)
        upd, opt = self.tx.update(g, state.opt)
        new = state.replace(step=state.step + 1, logits=state.logits + upd, opt=opt)
        return new, {"reward": r.sum(), "count": jnp.float32(64)}

    def model(self, state):
        return jax.nn.softmax(state.logits)


def test_a_task_without_data_trains_checkpoints_and_resumes(tmp_path):
    kw = dict(steps_per_epoch=25, steps_per_call=10, progress=False, log=lambda s: None)
    straight = fit(BanditTask(), None, epochs=4, **kw)
    probs = np.asarray(straight.model)
    assert probs.argmax() == 3 and probs[3] > 0.8
    h = straight.history["train_reward"]
    assert h[-1] > h[0] and h[-1] > 0.8
    assert int(straight.state.step) == 100  # 25 steps an epoch in chunks of 10: no extra step
    fit(BanditTask(), None, epochs=2, workdir=tmp_path, plot=False, **kw)
    resumed = fit(BanditTask(), None, epochs=4, workdir=tmp_path, resume=True, plot=False, **kw)
    np.testing.assert_array_equal(
        np.asarray(straight.state.logits), np.asarray(resumed.state.logits)
    )
    assert resumed.history["train_reward"] == h
