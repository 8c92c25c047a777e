"""LeNet with batch normalization, concise (book §8.5.5): nnx.BatchNorm before each sigmoid.

    d2ljax train bn_lenet

Book settings: batch 128, SGD lr 0.1, 10 epochs, 28x28. Expected: val accuracy ~0.85+.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="bn_lenet",
        lr=0.1,
        epochs=10,
        variant=variant,
    )
