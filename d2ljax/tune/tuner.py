"""The tuner: run a scheduler's jobs against an objective, one after the other (book §19.2).

``objective(config, epochs, trial_id)`` trains trial ``trial_id`` (configuration ``config``) up
to ``epochs`` epochs and returns its validation error: a float, or a mapping with a
``"val_error"`` entry (what :class:`d2ljax.tune.objective.TrialObjective` returns, with its other
metrics). A promoted trial is the same ``trial_id`` asked for more epochs; an objective that
resumes its checkpoints trains only the difference.

The tuner keeps, as the book's ``HPOTuner`` does, one record per job and the incumbent -- the
lowest error seen so far, at any resource level -- against the cumulative wall-clock time
(:attr:`Tuner.trajectory`, the curve of the book's Figures 19.2-19.4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from d2ljax.tune.schedulers import Job, Scheduler

Objective = Callable[[dict, int, int], "float | Mapping[str, Any]"]


def _error(result) -> tuple[float, dict]:
    if isinstance(result, Mapping):
        if "val_error" not in result:
            raise ValueError(
                f"the objective returned {sorted(result)}; it must return the validation error, "
                "a float or a mapping with 'val_error'"
            )
        return float(result["val_error"]), dict(result)
    return float(result), {}


class Tuner:
    """Runs ``scheduler``'s jobs on ``objective`` (see the module docstring).

    ``records``: one dict per finished job (``job``, ``trial_id``, the configuration's values,
    ``epochs`` (the resource level), ``new_epochs`` (epochs this job added to its trial: the
    rung's increment when the objective resumes), ``error``, ``runtime`` and ``elapsed`` seconds,
    and the objective's other metrics). ``incumbent`` / ``incumbent_error``: the best
    configuration so far; ``trajectory``: ``[(elapsed seconds, incumbent error)]`` after each job.
    """

    def __init__(self, scheduler: Scheduler, objective: Objective):
        self.scheduler, self.objective = scheduler, objective
        self.records: list[dict] = []
        self.incumbent: dict | None = None
        self.incumbent_error = math.inf
        self.incumbent_trial: int | None = None
        self.trajectory: list[tuple[float, float]] = []
        self.elapsed = 0.0
        self._epochs: dict[int, int] = {}  # trial id -> the epochs it has been trained for

    def run(self, number_of_jobs: int, *, max_seconds: float | None = None) -> Tuner:
        """Run up to ``number_of_jobs`` more jobs (the book's ``number_of_trials``: with a
        multi-fidelity scheduler a promotion is a job too), stopping early once ``max_seconds``
        of wall clock have passed since this call began."""
        if number_of_jobs < 0:
            raise ValueError(f"number_of_jobs must be >= 0, got {number_of_jobs}")
        start = time.perf_counter()
        for _ in range(number_of_jobs):
            if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                break
            job = self.scheduler.suggest()
            if job is None:  # one worker: nothing is running, so nothing will report
                break
            self._run_job(job)
        return self

    def _run_job(self, job: Job) -> None:
        t0 = time.perf_counter()
        error, metrics = _error(self.objective(dict(job.config), job.epochs, job.trial_id))
        self.scheduler.update(job, error)
        runtime = time.perf_counter() - t0
        self.elapsed += runtime
        before = self._epochs.get(job.trial_id, 0)
        self._epochs[job.trial_id] = max(before, job.epochs)
        if error < self.incumbent_error:
            self.incumbent_error, self.incumbent = error, dict(job.config)
            self.incumbent_trial = job.trial_id
        self.trajectory.append((self.elapsed, self.incumbent_error))
        extra = {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}
        self.records.append(
            {
                **extra,
                "job": len(self.records),
                "trial_id": job.trial_id,
                "bracket": job.bracket,
                **job.config,
                "epochs": job.epochs,
                "new_epochs": job.epochs - before,
                "error": error,
                "runtime": runtime,
                "elapsed": self.elapsed,
            }
        )

    @property
    def epochs_trained(self) -> int:
        """Epochs trained over all jobs, counting a promotion's increment only (what an
        objective that resumes its checkpoints costs)."""
        return sum(r["new_epochs"] for r in self.records)

    def table(self):
        """The records as a pandas DataFrame, one row per job."""
        import pandas as pd

        return pd.DataFrame(self.records)

    def best_per_trial(self):
        """One row per trial: its configuration, the highest epochs it reached, and the error
        there; sorted by that error."""
        df = self.table()
        if df.empty:
            return df
        last = df.sort_values("epochs").groupby("trial_id").tail(1)
        return last.sort_values(["error", "trial_id"]).reset_index(drop=True)
