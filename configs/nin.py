"""Network in Network (book §8.3): 1x1 convolutions and global average pooling.

    d2ljax train nin                # book setting (GPU/TPU)
    d2ljax train nin:cpu            # 68x68 (NiN needs at least 67), 2 epochs

Book settings: resize 224, batch 128, SGD lr 0.05, 10 epochs.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="nin",
        resize=224,
        lr=0.05,
        epochs=10,
        cpu={"data.resize": 68, "epochs": 2},
        variant=variant,
    )
