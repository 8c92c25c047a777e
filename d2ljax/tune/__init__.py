"""Hyperparameter optimisation (book chapter 19): the book's pieces, as teaching code.

* :mod:`d2ljax.tune.searchers`: a search space (``loguniform``, ``uniform``, ``randint``,
  ``choice``) and the :class:`Searcher` that proposes configurations (random search, §19.1.2).
* :mod:`d2ljax.tune.schedulers`: the :class:`Scheduler` API (``suggest()`` a job, ``update()`` with
  its result), FIFO, successive halving (§19.2), asynchronous successive halving (ASHA, §19.4),
  Hyperband (brackets of successive halving).
* :mod:`d2ljax.tune.tuner`: the :class:`Tuner` that runs a scheduler's jobs against an objective and
  keeps the trajectory (the incumbent's error against wall-clock time).
* :mod:`d2ljax.tune.objective`: the book's objective, LeNet on Fashion-MNIST (validation error
  after ``r`` epochs); a promoted trial resumes its own checkpoint, and trials that differ only in
  the learning rate run the same compiled step.

``tune`` sits above :mod:`d2ljax.experiment` (a trial is a run); nothing but the CLI imports it.
"""

from d2ljax.tune.objective import SEARCH_KEYS, TrialObjective, run_trial
from d2ljax.tune.schedulers import (
    ASHA,
    FIFOScheduler,
    Hyperband,
    Job,
    Scheduler,
    SuccessiveHalving,
    rung_levels,
)
from d2ljax.tune.searchers import (
    Domain,
    RandomSearcher,
    Searcher,
    choice,
    loguniform,
    randint,
    uniform,
)
from d2ljax.tune.tuner import Tuner

__all__ = [
    "ASHA",
    "Domain",
    "FIFOScheduler",
    "Hyperband",
    "Job",
    "RandomSearcher",
    "SEARCH_KEYS",
    "Scheduler",
    "Searcher",
    "SuccessiveHalving",
    "TrialObjective",
    "Tuner",
    "choice",
    "loguniform",
    "randint",
    "rung_levels",
    "run_trial",
    "uniform",
]
