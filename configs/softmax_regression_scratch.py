"""Softmax regression from scratch (book §4.4): softmax and cross-entropy by hand.

    d2ljax train softmax_regression_scratch

Book settings: W ~ N(0, 0.01^2), batch 256, scratch SGD lr 0.1, 10 epochs. Expected: val accuracy
~0.83.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="softmax_regression_scratch",
        dataset="fashion_mnist",
        batch_size=256,
        lr=0.1,
        epochs=10,
        loss="classification_scratch",
        optimizer="scratch_sgd",
        variant=variant,
    )
