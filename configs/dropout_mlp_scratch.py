"""Dropout MLP from scratch (book §5.6.2): the dropout mask written by hand.

    d2ljax train dropout_mlp_scratch

Book settings: 256/256 hidden, dropout 0.5/0.5, batch 256, SGD lr 0.1, 10 epochs. Expected: val
accuracy ~0.83.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="dropout_mlp_scratch",
        model_kwargs=dict(num_hiddens_1=256, num_hiddens_2=256, dropout_1=0.5, dropout_2=0.5),
        dataset="fashion_mnist",
        batch_size=256,
        lr=0.1,
        epochs=10,
        optimizer="scratch_sgd",
        variant=variant,
    )
