"""Search spaces and random search (book §19.1.1, §19.2)."""

import math

import numpy as np
import pytest

from d2ljax.tune import RandomSearcher, choice, loguniform, randint, uniform

SPACE = {"learning_rate": loguniform(1e-2, 1), "batch_size": randint(32, 256)}


def _draws(searcher, n):
    return [searcher.sample_configuration() for _ in range(n)]


def test_random_search_is_fixed_by_its_seed_and_starts_with_the_initial_config():
    first = {"learning_rate": 0.1, "batch_size": 128}
    a = _draws(RandomSearcher(SPACE, first, seed=3), 6)
    b = _draws(RandomSearcher(SPACE, first, seed=3), 6)
    c = _draws(RandomSearcher(SPACE, first, seed=4), 6)
    assert a == b
    assert a[0] == c[0] == first
    assert a[1:] != c[1:]
    assert len({tuple(d.values()) for d in a}) == 6
    for d in a[1:]:
        assert 1e-2 <= d["learning_rate"] < 1
        assert isinstance(d["batch_size"], int) and 32 <= d["batch_size"] < 256


def test_the_domains_draw_what_they_say():
    rng = np.random.default_rng(0)
    lr = np.array([loguniform(1e-2, 1).sample(rng) for _ in range(4000)])
    # log-uniform: each factor of ten as likely; uniform would put 9 % below 0.1
    assert 0.46 < np.mean(lr < 0.1) < 0.54
    assert lr.min() >= 1e-2 and lr.max() < 1
    ints = {randint(0, 3).sample(rng) for _ in range(300)}
    assert ints == {0, 1, 2}  # high excluded, as scipy.stats.randint
    u = np.array([uniform(-1, 1).sample(rng) for _ in range(4000)])
    assert abs(u.mean()) < 0.05 and u.min() >= -1 and u.max() < 1
    assert {choice(["a", "b"]).sample(rng) for _ in range(100)} == {"a", "b"}


@pytest.mark.parametrize(
    "make",
    [
        lambda: loguniform(0, 1),
        lambda: loguniform(1, 0.5),
        lambda: uniform(0, math.inf),
        lambda: randint(5, 5),
        lambda: randint(0.5, 3),
        lambda: choice([]),
    ],
)
def test_bad_domains_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_a_bad_space_or_initial_config_is_refused():
    with pytest.raises(ValueError, match="outside its domain"):
        RandomSearcher(SPACE, {"learning_rate": 2.0, "batch_size": 128})
    with pytest.raises(ValueError, match="no value for"):
        RandomSearcher(SPACE, {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="must be a domain"):
        RandomSearcher({"learning_rate": (1e-2, 1)})
