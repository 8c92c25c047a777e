"""GoogLeNet with Inception blocks (book §8.4) on Fashion-MNIST at 96x96.

    d2ljax train googlenet          # book setting (GPU/TPU)
    d2ljax train googlenet:cpu      # 32x32, 2 epochs

Book settings: resize 96, batch 128, SGD lr 0.01, 10 epochs.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="googlenet",
        resize=96,
        lr=0.01,
        epochs=10,
        cpu={"data.resize": 32, "epochs": 2},
        variant=variant,
    )
