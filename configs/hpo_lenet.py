"""LeNet on Fashion-MNIST as chapter 19's tuning objective: learning rate and batch size searched.

    d2ljax train hpo_lenet          # the first configuration alone: lr 0.1, batch 128, 10 epochs
    d2ljax tune hpo_lenet:cpu --trials 20 --workers 2   # Optuna: TPE + ASHA, resumable study
    notebooks/ch19_hyperparameter_optimization.ipynb   # random search, SH, ASHA, Hyperband

The book's objective (§19.1-19.2): LeNet trained with SGD, validation error on the Fashion-MNIST
test split after at most 10 epochs (``r_max``); search space ``learning_rate`` loguniform(1e-2, 1)
and ``batch_size`` randint(32, 256) (:data:`SEARCH_SPACE`); the first configuration is the
hand-picked one, lr 0.1 and batch 128 (:data:`INITIAL_CONFIG`). ``d2ljax.tune.run_trial`` trains
one trial of it (``base="hpo_lenet"``), resuming its checkpoint when a scheduler promotes it.

Variants: ``cpu`` is the book's setting on half the training set (the first 30000 images; the
whole 10000-image test split still measures the error), so the notebook's three searches (about
120 epochs of LeNet) fit in some 6 minutes of a 2-core CPU; ``smoke`` is 1 epoch on 2048 images.
Expected: see the notebook's results table (figures measured on a shared 2-core CPU).
"""

from d2ljax.configs.common import experiment

from d2ljax.tune.searchers import loguniform, randint

#: The book's search space (§19.2).
SEARCH_SPACE = {"learning_rate": loguniform(1e-2, 1), "batch_size": randint(32, 256)}

#: The configuration tried first, the book's default.
INITIAL_CONFIG = {"learning_rate": 0.1, "batch_size": 128}


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="lenet",
        lr=0.1,
        epochs=10,
        variant=variant,
        cpu={"data.limit": 30000},  # the first 30000 training images; all 10000 test images
    )
