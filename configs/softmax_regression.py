"""Softmax regression, concise (book §4.5), on Fashion-MNIST.

    d2ljax train softmax_regression

Book settings: nnx.Linear(784, 10), batch 256, SGD lr 0.1, 10 epochs. Expected: val accuracy
~0.83-0.84 (measured 0.83+ on a 2-core CPU, ~0.15 s/epoch).
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="softmax_regression",
        dataset="fashion_mnist",
        batch_size=256,
        lr=0.1,
        epochs=10,
        variant=variant,
    )
