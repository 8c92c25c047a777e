r"""Momentum on the airfoil data (book §12.6.2): scratch momentum, beta 0.5, lr 0.02, batch 10.

    d2ljax train airfoil_momentum
    d2ljax train airfoil_momentum --set optimizer.kwargs.beta=0.9 \
        --set optimizer.learning_rate=0.005

The §12.5 setup (``airfoil_sgd``: linear model, squared loss, 1500 standardized rows, 2 epochs;
``val_loss`` is the loss over all training examples after each epoch) with the scratch momentum
optimizer (``scratch_momentum``). The book's second run raises the momentum to 0.9 and lowers
the rate to 0.005 (effective step lr / (1 - beta): 0.04 and 0.05). Measured after 2 epochs:
loss 0.2425 (beta 0.5) and 0.2437 (beta 0.9); the book reports ~0.24.
"""

from d2ljax.configs.airfoil_sgd import airfoil_config


def get_config(variant=None):
    return airfoil_config(
        variant,
        description=__doc__.splitlines()[0],
        optimizer="scratch_momentum",
        lr=0.02,
        optimizer_kwargs=dict(beta=0.5),
    )
