"""Dropout MLP, concise (book §5.6.3): two hidden layers of 256 with nnx.Dropout.

    d2ljax train dropout_mlp

Book settings: 256/256 hidden, dropout 0.5/0.5, batch 256, SGD lr 0.1, 10 epochs. Expected: val
accuracy ~0.84.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="dropout_mlp",
        model_kwargs=dict(num_hiddens_1=256, num_hiddens_2=256, dropout_1=0.5, dropout_2=0.5),
        dataset="fashion_mnist",
        batch_size=256,
        lr=0.1,
        epochs=10,
        variant=variant,
    )
