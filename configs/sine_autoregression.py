"""Autoregressive linear model on a noisy sine (book §9.1.2): predict x_t from the tau=4 previous
values.

    d2ljax train sine_autoregression

Book settings (1.0 edition, §9.1): ``Data(batch_size=16, T=1000, num_train=600, tau=4)`` with
``x_t = sin(0.01 t) + N(0, 0.2^2)``; ``LinearRegression(lr=0.01)`` (weights ``N(0, 0.01^2)``,
mean squared error, SGD); ``Trainer(max_epochs=5)``. The book shows the plot only (one-step-ahead
predictions follow the sine, k-step-ahead ones decay); the noise alone makes an MSE of 0.04 the
floor.

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="linear_regression",
        dataset="sine_autoregression",
        data_kwargs=dict(T=1000, tau=4, num_train=600),
        batch_size=16,
        loss="mse",
        optimizer="sgd",
        lr=0.01,
        epochs=5,
        val_split="val",
        variant=variant,
    )
