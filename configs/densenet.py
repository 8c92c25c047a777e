"""DenseNet (book §8.7): dense blocks and transition layers, at 96x96.

    d2ljax train densenet           # book setting (GPU/TPU)
    d2ljax train densenet:cpu       # 32x32 (DenseNet needs at least 29), 2 epochs

Book settings: resize 96, batch 128, SGD lr 0.01, 10 epochs.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="densenet",
        resize=96,
        lr=0.01,
        epochs=10,
        cpu={"data.resize": 32, "epochs": 2},
        variant=variant,
    )
