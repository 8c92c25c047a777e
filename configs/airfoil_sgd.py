"""Minibatch SGD on the airfoil data (book §12.5): the book's linear model, batch 10 by default.

    d2ljax train airfoil_sgd                 # minibatch 10, lr 0.05, 2 epochs (the book's mini2)
    d2ljax train airfoil_sgd:gd              # full batch 1500, lr 1, 10 epochs (gradient descent)
    d2ljax train airfoil_sgd:sgd             # batch 1, lr 0.005, 2 epochs (SGD)
    d2ljax train airfoil_sgd:mini100         # batch 100, lr 0.4, 2 epochs (the book's mini1)
    d2ljax train airfoil_sgd --set data.batch_size=100 --set optimizer.learning_rate=0.4

The first 1500 rows of the NASA airfoil self-noise data, every column standardized; a linear
model (w ~ N(0, 0.01^2), b = 0) and the squared loss (y_hat - y)^2 / 2, trained with the scratch
SGD (``scratch_sgd``, §12.4). ``val_loss`` is the book's curve: the loss over all 1500 training
examples at the end of each epoch (there is no held-out split).

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import experiment

# variant -> (batch size, learning rate, epochs), the four runs of §12.5.3-§12.5.4
BOOK_RUNS = {
    "gd": (1500, 1.0, 10),
    "sgd": (1, 0.005, 2),
    "mini10": (10, 0.05, 2),
    "mini100": (100, 0.4, 2),
}


def airfoil_config(
    variant,
    *,
    description=None,
    optimizer="scratch_sgd",
    lr=0.05,
    batch_size=10,
    epochs=2,
    optimizer_kwargs=None,
):
    """The shared airfoil setup (also used by ``airfoil_momentum`` and ``airfoil_adam``)."""
    if variant in BOOK_RUNS:
        batch_size, lr, epochs = BOOK_RUNS[variant]
        variant = None
    cfg = experiment(
        description=description or __doc__.splitlines()[0],
        model="linear_regression",
        model_kwargs=dict(num_inputs=5),
        dataset="airfoil",
        batch_size=batch_size,
        lr=lr,
        epochs=epochs,
        loss="squared",
        optimizer=optimizer,
        val_split="train",
        variant=variant,
        smoke_limit=None,
    )
    cfg.data.eval_batch_size = 1500
    cfg.optimizer.kwargs = dict(optimizer_kwargs or {})
    cfg.checkpoint_every = 0
    return cfg


def get_config(variant=None):
    if variant not in (None, "", "default", "smoke", "cpu", *BOOK_RUNS):
        raise ValueError(
            f"unknown variant {variant!r}; this experiment has: smoke, cpu, {', '.join(BOOK_RUNS)}"
        )
    return airfoil_config(variant)
