"""Multilayer perceptron, concise (book §5.2.2), on Fashion-MNIST.

    d2ljax train mlp

Book settings: one hidden layer of 256 ReLU units, batch 256, SGD lr 0.1, 10 epochs. Expected:
val accuracy ~0.85.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="mlp",
        model_kwargs=dict(num_hiddens=256),
        dataset="fashion_mnist",
        batch_size=256,
        lr=0.1,
        epochs=10,
        variant=variant,
    )
