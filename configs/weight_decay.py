"""Weight decay, concise (book §3.7): optax decoupled decay on the weights (not the bias).

    d2ljax train weight_decay

Book settings: 20 train / 100 val, 200 inputs, batch 5, lr 0.01, 10 epochs, wd 3. Measured: val
loss 0.012, equal to weight_decay_scratch (decoupled decay with SGD is the L2 penalty's gradient).
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="linear_regression",
        model_kwargs=dict(num_inputs=200),
        dataset="weight_decay",
        batch_size=5,
        lr=0.01,
        epochs=10,
        loss="squared",
        weight_decay=3.0,
        val_split="val",
        variant=variant,
    )
