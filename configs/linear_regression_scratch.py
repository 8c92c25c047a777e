"""Linear regression from scratch on synthetic data (book §3.4): explicit w, b and hand-written SGD.

    d2ljax train linear_regression_scratch

Book settings: w=[2, -3.4], b=4.2, noise 0.01, 1000 train / 1000 val examples, batch 32, lr 0.03,
3 epochs, scratch SGD (an optax transformation from d2ljax.optim). Measured: val loss 0.046 after 3
epochs (w, b within ~0.2 of the truth, as in the book); more epochs reach the noise floor 5e-5.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="linear_regression_scratch",
        model_kwargs=dict(num_inputs=2),
        dataset="synthetic_regression",
        batch_size=32,
        lr=0.03,
        epochs=3,
        loss="squared",
        optimizer="scratch_sgd",
        val_split="val",
        variant=variant,
    )
