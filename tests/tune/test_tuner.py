"""The Tuner with a cheap deterministic objective (book §19.2's HPOTuner)."""

import pytest

from d2ljax.tune import (
    ASHA,
    FIFOScheduler,
    RandomSearcher,
    SuccessiveHalving,
    Tuner,
    loguniform,
    randint,
)

SPACE = {"learning_rate": loguniform(1e-2, 1), "batch_size": randint(32, 256)}
FIRST = {"learning_rate": 0.1, "batch_size": 128}


class Bowl:
    """Error ``(log10 lr + 1)^2 / 4 + 0.5 / epochs``: best at lr 0.1, lower with more epochs;
    records how many epochs each call *adds* to its trial, as a resuming objective would."""

    def __init__(self):
        self.calls, self.have = [], {}

    def __call__(self, config, epochs, trial_id):
        import math

        self.calls.append((trial_id, epochs - self.have.get(trial_id, 0)))
        self.have[trial_id] = epochs
        return (math.log10(config["learning_rate"]) + 1) ** 2 / 4 + 0.5 / epochs


def test_random_search_five_trials():
    bowl = Bowl()
    tuner = Tuner(FIFOScheduler(RandomSearcher(SPACE, FIRST, seed=0), max_epochs=10), bowl)
    tuner.run(5)
    df = tuner.table()
    assert len(df) == 5 and list(df.trial_id) == [0, 1, 2, 3, 4]
    assert (df.epochs == 10).all() and (df.new_epochs == 10).all()
    assert df.iloc[0].learning_rate == 0.1 and df.iloc[0].batch_size == 128
    # the first config sits at the bowl's bottom: it stays the incumbent
    assert tuner.incumbent == FIRST and tuner.incumbent_error == pytest.approx(0.05)
    assert tuner.incumbent_error == df.error.min()
    errors = [e for _, e in tuner.trajectory]
    assert errors == sorted(errors, reverse=True)
    assert [t for t, _ in tuner.trajectory] == sorted(t for t, _ in tuner.trajectory)


def test_successive_halving_counts_only_the_increments():
    """The book's SH (r_min 2, eta 2, r_max 10): 15 jobs, 34 epochs trained when promotions
    resume; the best trial is the one trained for 10 epochs, and the incumbent is the lowest
    error at any rung."""
    bowl = Bowl()
    tuner = Tuner(SuccessiveHalving(RandomSearcher(SPACE, FIRST, seed=1), 2, 2, 10), bowl)
    tuner.run(15)
    df = tuner.table()
    assert list(df.epochs) == [2] * 8 + [4] * 4 + [8] * 2 + [10]
    assert tuner.epochs_trained == sum(added for _, added in bowl.calls) == 34
    best = tuner.best_per_trial()
    assert len(best) == 8 and best.iloc[0].epochs == 10
    assert tuner.incumbent_trial == best.iloc[0].trial_id
    assert tuner.incumbent_error == pytest.approx(df.error.min())


def test_asha_and_a_time_budget():
    tuner = Tuner(ASHA(RandomSearcher(SPACE, seed=2), 2, 2, 10), Bowl())
    tuner.run(40)
    df = tuner.table()
    assert len(df) == 40 and set(df.epochs) <= {2, 4, 8, 10}
    assert (df.epochs > 2).any()  # some promotions
    assert (
        len(Tuner(FIFOScheduler(RandomSearcher(SPACE), 10), Bowl()).run(5, max_seconds=0).records)
        == 0
    )


def test_the_objective_must_return_an_error():
    tuner = Tuner(FIFOScheduler(RandomSearcher(SPACE), 10), lambda c, e, t: {"loss": 1.0})
    with pytest.raises(ValueError, match="val_error"):
        tuner.run(1)
    tuner = Tuner(FIFOScheduler(RandomSearcher(SPACE), 10), lambda c, e, t: {"val_error": 0.3})
    assert tuner.run(2).incumbent_error == 0.3
    with pytest.raises(ValueError):
        tuner.run(-1)
