"""Search spaces and searchers (book §19.1.1, §19.2).

A search space maps each hyperparameter's name to a :class:`Domain`, a distribution a searcher
draws from: :func:`loguniform` (a learning rate), :func:`uniform`, :func:`randint` (a batch size)
and :func:`choice`. The book's space for LeNet::

    space = {"learning_rate": loguniform(1e-2, 1), "batch_size": randint(32, 256)}

A :class:`Searcher` proposes configurations (``sample_configuration()``) and may learn from the
errors it is told about (``update(config, error)``). :class:`RandomSearcher` is the book's random
search: it returns the ``initial_config`` first (the default a user would try by hand), then
independent draws from the space, from its own seeded generator, so a seed fixes the sequence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class Domain:
    """The range of one hyperparameter: ``sample(rng)`` draws a value from a NumPy Generator and
    ``contains(value)`` says whether a value lies in the range."""

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError


def _check_range(low, high, what: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ValueError(f"{what} needs finite low < high, got low={low!r}, high={high!r}")


@dataclass(frozen=True)
class Uniform(Domain):
    """Floats uniform on ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self):
        _check_range(self.low, self.high, "uniform")

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def contains(self, value):
        return isinstance(value, int | float) and self.low <= value <= self.high


@dataclass(frozen=True)
class LogUniform(Domain):
    """Floats whose logarithm is uniform on ``[log low, log high)`` (``scipy.stats.loguniform``):
    each factor of ten is as likely as any other, the usual prior for a learning rate."""

    low: float
    high: float

    def __post_init__(self):
        _check_range(self.low, self.high, "loguniform")
        if self.low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {self.low!r}")

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def contains(self, value):
        return isinstance(value, int | float) and self.low <= value <= self.high


@dataclass(frozen=True)
class RandInt(Domain):
    """Integers uniform on ``[low, high)`` -- ``high`` excluded, as in ``scipy.stats.randint``
    (the book's ``randint(32, 256)`` draws batch sizes 32 to 255)."""

    low: int
    high: int

    def __post_init__(self):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)):
            raise ValueError(f"randint needs integer bounds, got {self.low!r}, {self.high!r}")
        _check_range(self.low, self.high, "randint")

    def sample(self, rng):
        return int(rng.integers(self.low, self.high))

    def contains(self, value):
        return isinstance(value, int | np.integer) and self.low <= value < self.high


@dataclass(frozen=True)
class Choice(Domain):
    """One of ``values``, each equally likely."""

    values: tuple

    def __post_init__(self):
        if not self.values:
            raise ValueError("choice needs at least one value")

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def contains(self, value):
        return value in self.values


def uniform(low: float, high: float) -> Uniform:
    return Uniform(float(low), float(high))


def loguniform(low: float, high: float) -> LogUniform:
    return LogUniform(float(low), float(high))


def randint(low: int, high: int) -> RandInt:
    ints = [int(v) if isinstance(v, np.integer) else v for v in (low, high)]
    return RandInt(*ints)


def choice(values: Sequence) -> Choice:
    return Choice(tuple(values))


def check_space(space: Mapping[str, Domain], config: Mapping | None = None) -> None:
    """Refuse a space that is not ``{name: Domain}``, and a ``config`` (e.g. the initial one) that
    lacks one of its names or has a value outside its domain, with a ValueError naming it."""
    if not space:
        raise ValueError("the search space is empty")
    for name, domain in space.items():
        if not isinstance(domain, Domain):
            raise ValueError(
                f"search space entry {name!r} must be a domain (loguniform, uniform, randint, "
                f"choice), got {domain!r}"
            )
    if config is None:
        return
    missing = sorted(set(space) - set(config))
    if missing:
        raise ValueError(f"the configuration {dict(config)} has no value for {missing}")
    for name, domain in space.items():
        if not domain.contains(config[name]):
            raise ValueError(f"{name}={config[name]!r} lies outside its domain {domain}")


class Searcher:
    """Proposes configurations (dicts ``{name: value}`` over the space's names)."""

    def sample_configuration(self) -> dict:
        raise NotImplementedError

    def update(self, config: dict, error: float, info: dict | None = None) -> None:
        """The objective's ``error`` for ``config`` (at some resource level, in ``info``); a
        model-based searcher learns from it, random search ignores it."""


class RandomSearcher(Searcher):
    """Random search (§19.2): ``initial_config`` first (if given), then independent draws from
    ``space``; ``seed`` fixes the whole sequence."""

    def __init__(
        self, space: Mapping[str, Domain], initial_config: Mapping | None = None, seed: int = 0
    ):
        check_space(space, initial_config)
        self.space = dict(space)
        self.initial_config = dict(initial_config) if initial_config is not None else None
        self.rng = np.random.default_rng(seed)

    def sample_configuration(self) -> dict:
        if self.initial_config is not None:
            config, self.initial_config = self.initial_config, None
            return config
        return {name: domain.sample(self.rng) for name, domain in self.space.items()}
