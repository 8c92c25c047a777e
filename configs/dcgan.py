"""DCGAN (book §20.2): a convolutional generator of 64x64 Pokémon sprites from 100-d noise.

    d2ljax train dcgan          # the book's setting, on a GPU (the Pokémon data is downloaded)
    d2ljax train dcgan:cpu      # offline, on a CPU: the same nets, smaller, on Fashion-MNIST

Book settings (§20.2): ``pokemon.zip`` (the d2l hub) through ``ImageFolder``, ``Resize((64, 64))``
and ``Normalize(0.5, 0.5)`` (pixels in [-1, 1], ``task.preprocess = "signed_pixels"``), batch
256; generator and discriminator of ``G_block``s / ``D_block``s with ``n_G = n_D = 64``, latent
dimension 100, every parameter drawn from N(0, 0.02); Adam with learning rate 0.005 and betas
(0.5, 0.999) for both players; 20 epochs. (The book's text calls 0.005 its rate; DCGAN's paper,
and the authors' later edition, use 2e-4.) The nets' sizes: 3,576,704 and 2,765,696 parameters.

Variants: ``cpu`` keeps the design and the optimizer but trains on real Fashion-MNIST resized to
16x16 (grey, one channel), with ``n_G = n_D = 16``, batch 64 (four times the book's steps for the
same compute) and 3 epochs: a step of the book-size nets takes seconds on a CPU, one of these a
tenth of a second. ``smoke`` is one epoch of that on 2048 images.
Expected (``cpu``, measured by ``tests/tasks/test_dcgan_experiments.py`` on 150 of its steps):
the Fréchet distance of 8x8-pooled pixels to the test images falls far below the untrained
generator's and below that of the best constant image.
"""

from d2ljax.configs.common import VARIANTS, experiment

from d2ljax.config import Config

ADAM = {"b1": 0.5, "b2": 0.999}


def get_config(variant=None):
    if variant not in (None, "", "default", *VARIANTS):
        raise ValueError(f"unknown variant {variant!r}; this experiment has: {', '.join(VARIANTS)}")
    small = variant in VARIANTS
    size, width, channels = (16, 16, 1) if small else (64, 64, 3)
    cfg = experiment(
        description=__doc__.splitlines()[0],
        model="dcgan_generator",
        model_kwargs=dict(latent_dim=100, n_G=width, out_channels=channels, image_size=size),
        dataset="fashion_mnist" if small else "pokemon",
        data_kwargs={} if small else dict(size=64),
        resize=16 if small else None,
        batch_size=64 if small else 256,
        loss="gan",  # not read: the GAN task has its own binary cross-entropy losses
        optimizer="adam",
        lr=0.005,
        epochs=3 if small else 20,
        val_split=None,
    )
    cfg.optimizer.kwargs = Config(ADAM)
    cfg.task = Config(
        name="gan",
        latent_shape=[1, 1, 100],
        discriminator=dict(
            name="dcgan_discriminator",
            kwargs=dict(in_channels=channels, n_D=width, image_size=size),
        ),
        d_optimizer=dict(name="adam", learning_rate=0.005, kwargs=dict(ADAM)),
        preprocess="signed_pixels",
    )
    cfg.early_stopping = None
    if variant == "smoke":
        cfg.epochs = 1
        cfg.data.limit = 2048
    return cfg
