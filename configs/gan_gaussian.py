"""The book's first GAN (§20.1): a linear generator learns a 2-D Gaussian from 1000 points.

    d2ljax train gan_gaussian

Book settings (§20.1): data ``X A + b`` for 1000 standard-normal ``X``, ``A = [[1, 2], [-0.1,
0.5]]``, ``b = [1, 2]`` (a Gaussian of mean ``[1, 2]`` and covariance ``A^T A``); generator
``Linear(2, 2)``, discriminator ``Linear(2, 5)``-tanh-``Linear(5, 3)``-tanh-``Linear(3, 1)``;
batch 8, latent dimension 2, Adam with learning rate 0.005 for the generator and 0.05 for the
discriminator, 20 epochs (125 steps each). The CPU runs it as it is (a few seconds).

Expected: the book shows the generated points overlapping the data and losses settling near
``loss_D`` 0.69 (the discriminator can no longer tell); the generated mean lies within 0.3 of
``[1, 2]`` (``tests/tasks/test_gan_experiments.py`` checks it through this config).
"""

from d2ljax.configs.common import experiment

from d2ljax.config import Config


def get_config(variant=None):
    cfg = experiment(
        description=__doc__.splitlines()[0],
        model="gan_toy_generator",
        model_kwargs=dict(latent_dim=2),
        dataset="gan_toy",
        data_kwargs=dict(num_examples=1000, seed=0),
        batch_size=8,
        loss="gan",  # not read: the GAN task has its own binary cross-entropy losses
        optimizer="adam",
        lr=0.005,
        epochs=20,
        val_split=None,
        variant=variant,
    )
    cfg.task = Config(
        name="gan",
        latent_shape=[2],
        discriminator=dict(name="gan_toy_discriminator", kwargs={}),
        d_optimizer=dict(name="adam", learning_rate=0.05),
        preprocess="none",
    )
    cfg.early_stopping = None
    return cfg
