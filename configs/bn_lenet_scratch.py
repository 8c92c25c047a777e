"""LeNet with batch normalization from scratch (book §8.5.4): moving statistics by hand.

    d2ljax train bn_lenet_scratch

Book settings: batch 128, SGD lr 0.1, 10 epochs. Numerically equal to bn_lenet (tested).
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="bn_lenet_scratch",
        lr=0.1,
        epochs=10,
        variant=variant,
    )
