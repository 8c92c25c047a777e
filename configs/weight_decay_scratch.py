"""Weight decay from scratch (book §3.7): L2 penalty lambd*|w|^2/2 added to the loss.

    d2ljax train weight_decay_scratch --set model.kwargs.lambd=0   # no decay: overfits

Book settings: 20 train / 100 val examples with 200 inputs, batch 5, lr 0.01, 10 epochs, lambd 3.
Measured: lambd=3 ends at val loss 0.012 (train 7e-4); lambd=0 overfits: train 1e-4, val 0.022.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="linear_regression_scratch",
        model_kwargs=dict(num_inputs=200, lambd=3.0),
        dataset="weight_decay",
        batch_size=5,
        lr=0.01,
        epochs=10,
        loss="squared",
        optimizer="scratch_sgd",
        val_split="val",
        variant=variant,
    )
