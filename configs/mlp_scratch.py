"""Multilayer perceptron from scratch (book §5.2.1): explicit weights, hand-written ReLU.

    d2ljax train mlp_scratch

Book settings: 256 hidden units, weights ~ N(0, 0.01^2), batch 256, SGD lr 0.1, 10 epochs.
Expected: val accuracy ~0.84.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="mlp_scratch",
        model_kwargs=dict(num_hiddens=256),
        dataset="fashion_mnist",
        batch_size=256,
        lr=0.1,
        epochs=10,
        optimizer="scratch_sgd",
        variant=variant,
    )
