"""Schedulers: which trial runs next, and for how many epochs (book §19.2-19.4).

A scheduler hands out :class:`Job` s -- a trial (its id and configuration) and the resource level
``epochs`` it is to be trained *up to* -- and is told each job's validation error:

* ``suggest() -> Job | None``: the next job to start; None when none can start until a running
  job reports (synchronous successive halving waits for its whole rung).
* ``update(job, error)``: the job's result.

A promoted trial keeps its ``trial_id`` and gets a higher ``epochs``: the objective continues its
checkpoint from the epochs it already has (multi-fidelity by epochs) instead of retraining.

Rung levels (:func:`rung_levels`): ``r_min, r_min η, r_min η², ...`` up to ``r_max``, and
``r_max`` itself as the last rung when it is not a power step (the book's ``r_min=2, η=2,
r_max=10`` gives rungs 2, 4, 8, 10).

* :class:`FIFOScheduler`: every trial a new configuration trained for ``max_epochs`` (§19.2).
* :class:`SuccessiveHalving`: ``n₀`` configurations on the lowest rung; once a rung has all its
  results, the best ``1/η`` go on to the next (§19.3). With ``n₀ = η^K`` (the book's choice) the
  rungs hold ``η^K, η^(K-1), ..., 1`` trials.
* :class:`ASHA`: asynchronous successive halving (§19.4): a free worker promotes a trial as soon
  as it is in the top ``1/η`` of the results its rung has *so far*, else starts a new
  configuration on the lowest rung; nobody waits for a rung to fill.
* :class:`Hyperband`: brackets of successive halving that start on ever higher rungs with fewer
  configurations (Li et al., 2018), so a bad guess of ``r_min`` costs less.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from d2ljax.tune.searchers import Searcher


@dataclass(frozen=True)
class Job:
    """Train trial ``trial_id`` (configuration ``config``) up to ``epochs`` epochs."""

    trial_id: int
    config: dict = field(hash=False)
    epochs: int
    bracket: int = 0


def rung_levels(r_min: int, eta: int, r_max: int) -> list[int]:
    """``[r_min η^k for r_min η^k <= r_max]``, with ``r_max`` appended if it is not among them."""
    for name, v in (("r_min", r_min), ("eta", eta), ("r_max", r_max)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an integer, got {v!r}")
    if r_min < 1:
        raise ValueError(f"r_min must be >= 1, got {r_min}")
    if eta < 2:
        raise ValueError(f"eta must be >= 2, got {eta}")
    if r_max < r_min:
        raise ValueError(f"r_max ({r_max}) must be >= r_min ({r_min})")
    levels = [r_min]
    while levels[-1] * eta <= r_max:
        levels.append(levels[-1] * eta)
    if levels[-1] != r_max:
        levels.append(r_max)
    return levels


class Scheduler:
    """Base class (see the module docstring). ``searcher`` proposes new configurations; each new
    configuration gets the next trial id (0, 1, ...)."""

    def __init__(self, searcher: Searcher):
        self.searcher = searcher
        self.next_trial_id = 0
        self.promotions: list[tuple[int, int, int]] = []  # (trial_id, from epochs, to epochs)

    def new_job(self, epochs: int, bracket: int = 0) -> Job:
        job = Job(self.next_trial_id, self.searcher.sample_configuration(), epochs, bracket)
        self.next_trial_id += 1
        return job

    def suggest(self) -> Job | None:
        raise NotImplementedError

    def update(self, job: Job, error: float) -> None:
        self.searcher.update(job.config, error, {"epochs": job.epochs, "trial_id": job.trial_id})


class FIFOScheduler(Scheduler):
    """Each job a new configuration, trained for ``max_epochs`` (the book's basic scheduler)."""

    def __init__(self, searcher: Searcher, max_epochs: int):
        super().__init__(searcher)
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        self.max_epochs = max_epochs

    def suggest(self) -> Job:
        return self.new_job(self.max_epochs)


class SuccessiveHalving(Scheduler):
    """Synchronous successive halving (§19.3) on the rungs ``rung_levels(r_min, eta, r_max)``.

    A round starts ``n0`` new configurations on the lowest rung (default ``prefact * η^K``, K+1
    rungs: the book's). Rung ``i`` holds ``n_i = floor(n0 / η^i)`` trials (at least 1): when all
    of its results are in, the ``n_{i+1}`` with the lowest error are queued for rung ``i+1``,
    best first. While a rung waits for a running job, ``suggest`` returns None. When the top
    rung is complete the round is over; the next ``suggest`` starts a new round, or, with
    ``repeat=False``, returns None for good (:attr:`done`).
    """

    def __init__(
        self,
        searcher: Searcher,
        eta: int,
        r_min: int,
        r_max: int,
        *,
        prefact: int = 1,
        n0: int | None = None,
        repeat: bool = True,
        bracket: int = 0,
        new_job: Callable[[int, int], Job] | None = None,
    ):
        super().__init__(searcher)
        self.eta, self.r_min, self.r_max = eta, r_min, r_max
        self.levels = rung_levels(r_min, eta, r_max)
        self.K = len(self.levels) - 1
        self.n0 = int(n0) if n0 is not None else int(prefact) * eta**self.K
        if self.n0 < 1:
            raise ValueError(f"the first rung needs at least one configuration, got {self.n0}")
        self.rung_sizes = [max(1, self.n0 // eta**i) for i in range(len(self.levels))]
        self.repeat, self.bracket = repeat, bracket
        self._new_job = new_job or self.new_job
        self.queue: list[Job] = []
        self.results: list[list[tuple[Job, float]]] = [[] for _ in self.levels]
        self.pending: set[tuple[int, int]] = set()  # (trial_id, epochs) handed out, not reported
        self.rounds = 0
        self._in_round = False
        self.done = False

    def _start_round(self) -> None:
        self.rounds += 1
        self._in_round = True
        self.results = [[] for _ in self.levels]
        self.queue = [self._new_job(self.levels[0], self.bracket) for _ in range(self.n0)]

    def suggest(self) -> Job | None:
        if not self.queue:
            if self.pending or self.done:
                return None
            if self._in_round:  # cannot happen: a round ends when its top rung is complete
                raise RuntimeError("successive halving: a round has no job left to run")
            self._start_round()
        job = self.queue.pop(0)
        self.pending.add((job.trial_id, job.epochs))
        return job

    def update(self, job: Job, error: float) -> None:
        super().update(job, error)
        self.pending.discard((job.trial_id, job.epochs))
        i = self.levels.index(job.epochs)
        self.results[i].append((job, float(error)))
        if len(self.results[i]) < self.rung_sizes[i]:
            return
        if i == self.K:
            self._in_round = False
            self.done = not self.repeat
            return
        ranked = sorted(self.results[i], key=lambda je: je[1])[: self.rung_sizes[i + 1]]
        for done, _ in ranked:
            self.queue.append(Job(done.trial_id, done.config, self.levels[i + 1], done.bracket))
            self.promotions.append((done.trial_id, done.epochs, self.levels[i + 1]))


class ASHA(Scheduler):
    """Asynchronous successive halving (§19.4; Li et al., 2020, promotion type).

    ``suggest`` looks at the rungs from the second highest down: the first trial that is among
    the best ``floor(len(results of its rung) / η)`` of its rung and not yet promoted from it is
    promoted to the next rung; if there is none, a new configuration starts on the lowest rung.
    It never waits, so a free worker always has a job."""

    def __init__(self, searcher: Searcher, eta: int, r_min: int, r_max: int):
        super().__init__(searcher)
        self.eta, self.r_min, self.r_max = eta, r_min, r_max
        self.levels = rung_levels(r_min, eta, r_max)
        self.results: list[list[tuple[Job, float]]] = [[] for _ in self.levels]
        self.promoted: list[set[int]] = [set() for _ in self.levels]

    def suggest(self) -> Job:
        for i in range(len(self.levels) - 2, -1, -1):
            rung = self.results[i]
            top = sorted(rung, key=lambda je: je[1])[: len(rung) // self.eta]
            for job, _ in top:
                if job.trial_id not in self.promoted[i]:
                    self.promoted[i].add(job.trial_id)
                    self.promotions.append((job.trial_id, job.epochs, self.levels[i + 1]))
                    return Job(job.trial_id, job.config, self.levels[i + 1])
        return self.new_job(self.levels[0])

    def update(self, job: Job, error: float) -> None:
        super().update(job, error)
        self.results[self.levels.index(job.epochs)].append((job, float(error)))


class Hyperband(Scheduler):
    """Synchronous Hyperband (Li et al., 2018) on the rungs ``rung_levels(r_min, eta, r_max)``.

    With K+1 rungs there are K+1 brackets ``s = K, K-1, ..., 0``; bracket ``s`` is a round of
    successive halving on the top ``s+1`` rungs that starts ``ceil((K+1) η^s / (s+1))``
    configurations (the paper's ``n``): bracket K is the book's successive halving, bracket 0
    trains a few configurations for ``r_max`` straight away. The brackets run one after the
    other and then begin again. :attr:`bracket_sizes` lists each bracket's rung sizes."""

    def __init__(self, searcher: Searcher, eta: int, r_min: int, r_max: int):
        super().__init__(searcher)
        self.eta, self.r_min, self.r_max = eta, r_min, r_max
        self.levels = rung_levels(r_min, eta, r_max)
        self.K = len(self.levels) - 1
        self.bracket_index = -1
        self.current: SuccessiveHalving | None = None
        self.bracket_sizes = {s: self._bracket(s).rung_sizes for s in range(self.K, -1, -1)}

    def bracket_levels(self, s: int) -> list[int]:
        return self.levels[self.K - s :]

    def bracket_n0(self, s: int) -> int:
        return -(-(self.K + 1) * self.eta**s // (s + 1))  # ceil, in integers

    def _bracket(self, s: int) -> SuccessiveHalving:
        sh = SuccessiveHalving(
            self.searcher,
            self.eta,
            self.bracket_levels(s)[0],
            self.r_max,
            n0=self.bracket_n0(s),
            repeat=False,
            bracket=s,
            new_job=self.new_job,
        )
        sh.promotions = self.promotions
        return sh

    def suggest(self) -> Job | None:
        if self.current is None or (self.current.done and not self.current.pending):
            self.bracket_index += 1
            self.current = self._bracket(self.K - self.bracket_index % (self.K + 1))
        return self.current.suggest()

    def update(self, job: Job, error: float) -> None:
        if self.current is None or job.bracket != self.current.bracket:
            raise ValueError(f"{job} is not a job of the running bracket")
        self.current.update(job, error)
