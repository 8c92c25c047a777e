"""Schedulers against cases computed by hand (book §19.2-19.4; Li et al., Hyperband, Table 1)."""

import pytest

from d2ljax.tune import ASHA, FIFOScheduler, Hyperband, SuccessiveHalving, rung_levels
from d2ljax.tune.searchers import Searcher


class Listed(Searcher):
    """Configurations ``{"x": x}`` for x in a fixed list, then 0.5 + 0.01 n for the n-th draw:
    trial ids and values known in advance."""

    def __init__(self, xs):
        self.xs, self.n = list(xs), 0

    def sample_configuration(self):
        x = self.xs.pop(0) if self.xs else 0.5 + 0.01 * self.n
        self.n += 1
        return {"x": x}


def test_rung_levels():
    assert rung_levels(2, 2, 10) == [2, 4, 8, 10]  # the book's: 10 is not a power step
    assert rung_levels(1, 3, 81) == [1, 3, 9, 27, 81]
    assert rung_levels(1, 2, 1) == [1]
    for bad in [(0, 2, 10), (2, 1, 10), (4, 2, 2), (2.0, 2, 10)]:
        with pytest.raises(ValueError):
            rung_levels(*bad)


def test_fifo_trains_every_new_trial_for_max_epochs():
    s = FIFOScheduler(Listed([0.3, 0.1]), max_epochs=10)
    jobs = [s.suggest() for _ in range(3)]
    assert [(j.trial_id, j.config["x"], j.epochs) for j in jobs] == [
        (0, 0.3, 10),
        (1, 0.1, 10),
        (2, 0.52, 10),
    ]


# trial ids 0..7 and their x; the objective below ranks by x on rungs 2 and 8, by 1 - x on rung 4
XS = [0.5, 0.1, 0.8, 0.3, 0.9, 0.2, 0.7, 0.4]


def error(config, epochs):
    return 1 - config["x"] if epochs == 4 else config["x"]


def test_successive_halving_the_books_setting_by_hand():
    """r_min 2, eta 2, r_max 10: rungs 2, 4, 8, 10 holding 8, 4, 2, 1 trials. Rung 2 keeps the
    four smallest x (trials 1, 5, 3, 7, best first); on rung 4 the error is 1 - x, so 7 and 3
    go on; on rung 8, x again: trial 3 reaches 10 epochs. 15 jobs; resumed, they train
    8*2 + 4*2 + 2*4 + 1*2 = 34 epochs (retrained from scratch: 8*2 + 4*4 + 2*8 + 10 = 58)."""
    s = SuccessiveHalving(Listed(XS), eta=2, r_min=2, r_max=10)
    assert s.levels == [2, 4, 8, 10] and s.rung_sizes == [8, 4, 2, 1]
    seen, have = [], {}
    for _ in range(15):
        job = s.suggest()
        seen.append((job.trial_id, job.epochs))
        s.update(job, error(job.config, job.epochs))
        have[job.trial_id] = job.epochs
    assert seen == [(i, 2) for i in range(8)] + [(1, 4), (5, 4), (3, 4), (7, 4)] + [
        (7, 8),
        (3, 8),
        (3, 10),
    ]
    assert s.promotions == [
        (1, 2, 4),
        (5, 2, 4),
        (3, 2, 4),
        (7, 2, 4),
        (7, 4, 8),
        (3, 4, 8),
        (3, 8, 10),
    ]
    increments = sum(b - a for _, a, b in s.promotions) + 8 * 2
    assert increments == 34
    assert sum(e for _, e in seen) == 58
    # the round is over: the next job starts a new round with a new trial on the lowest rung
    nxt = s.suggest()
    assert (nxt.trial_id, nxt.epochs) == (8, 2) and s.rounds == 2


def test_successive_halving_waits_for_its_rung():
    """Synchronous: while a rung-2 job is still running no promotion can be decided, so a free
    worker gets nothing (the waste ASHA removes)."""
    s = SuccessiveHalving(Listed(XS), eta=2, r_min=2, r_max=10)
    jobs = [s.suggest() for _ in range(8)]
    for job in jobs[:7]:
        s.update(job, error(job.config, job.epochs))
    assert s.suggest() is None
    s.update(jobs[7], error(jobs[7].config, 2))
    assert (s.suggest().trial_id, s.rung_sizes[1]) == (1, 4)


def test_prefact_and_eta_3():
    s = SuccessiveHalving(Listed([]), eta=3, r_min=1, r_max=9, prefact=2)
    assert s.levels == [1, 3, 9] and s.rung_sizes == [18, 6, 2]


def test_asha_promotes_asynchronously_by_hand():
    """eta 2, rungs 1, 2, 4. A trial is promoted from a rung once it is in the top
    floor(n / 2) of the n results that rung has so far; else a new trial starts."""
    s = ASHA(Listed([0.5, 0.3, 0.1, 0.9]), eta=2, r_min=1, r_max=4)
    steps = []

    def step(err):
        job = s.suggest()
        steps.append((job.trial_id, job.epochs))
        s.update(job, err)

    step(0.5)  # trial 0 on rung 1: one result, top 0 -> nothing to promote
    step(0.3)  # trial 1; rung 1 now {0: .5, 1: .3}
    step(0.25)  # top 1 of 2 is trial 1 -> promoted to 2 epochs
    step(0.1)  # rung 2 has 1 result (top 0); trial 1 already promoted from rung 1 -> trial 2
    step(0.2)  # rung 1: {.5, .3, .1}: top 1 = trial 2 -> promoted to 2
    step(0.15)  # rung 2: {1: .25, 2: .2}: top 1 = trial 2 -> promoted to 4
    step(0.9)  # nothing promotable: trial 3 starts
    assert steps == [(0, 1), (1, 1), (1, 2), (2, 1), (2, 2), (2, 4), (3, 1)]
    assert s.promotions == [(1, 1, 2), (2, 1, 2), (2, 2, 4)]


def test_asha_never_waits():
    """With jobs still running (no result yet) every free worker gets a job at once."""
    s = ASHA(Listed([]), eta=2, r_min=2, r_max=10)
    jobs = [s.suggest() for _ in range(5)]
    assert [(j.trial_id, j.epochs) for j in jobs] == [(i, 2) for i in range(5)]
    s.update(jobs[3], 0.4)
    s.update(jobs[1], 0.2)  # results arrive out of order: rung 2 {3: .4, 1: .2}
    job = s.suggest()
    assert (job.trial_id, job.epochs) == (1, 4)


def test_hyperband_brackets_equal_the_papers_table():
    """Li et al. (2018), Table 1: R = 81, eta = 3 (rungs 1, 3, 9, 27, 81)."""
    hb = Hyperband(Listed([]), eta=3, r_min=1, r_max=81)
    assert hb.bracket_sizes == {
        4: [81, 27, 9, 3, 1],
        3: [34, 11, 3, 1],
        2: [15, 5, 1],
        1: [8, 2],
        0: [5],
    }
    assert hb.bracket_levels(2) == [9, 27, 81]


def test_hyperband_runs_its_brackets_in_turn():
    """r_min 2, eta 2, r_max 10 (rungs 2, 4, 8, 10), by hand: brackets s = 3..0 start
    ceil(4 * 2^s / (s + 1)) = 8, 6, 4, 4 trials on rungs 2, 4, 8 and 10."""
    hb = Hyperband(Listed([]), eta=2, r_min=2, r_max=10)
    assert hb.bracket_sizes == {3: [8, 4, 2, 1], 2: [6, 3, 1], 1: [4, 2], 0: [4]}
    jobs = []
    for _ in range(15 + 10 + 6 + 4 + 1):
        job = hb.suggest()
        jobs.append(job)
        hb.update(job, job.config["x"] + 1 / job.epochs)
    per_bracket = {}
    for j in jobs:
        per_bracket.setdefault(j.bracket, []).append(j.epochs)
    assert per_bracket[3][:15] == [2] * 8 + [4] * 4 + [8] * 2 + [10]
    assert per_bracket[2] == [4] * 6 + [8] * 3 + [10]
    assert per_bracket[1] == [8] * 4 + [10] * 2
    assert per_bracket[0] == [10] * 4
    assert jobs[15].trial_id == 8  # bracket 2 samples new trials
    assert jobs[-1].bracket == 3 and jobs[-1].trial_id == 8 + 6 + 4 + 4  # and round two begins
    with pytest.raises(ValueError, match="running bracket"):
        hb.update(jobs[16], 0.1)
