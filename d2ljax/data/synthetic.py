"""The book's synthetic data sets (and only those): §3.3, §3.6 and §3.7.

Every generator is deterministic given ``seed`` (``np.random.default_rng``) and returns
``{split: {"x": float32 [n, d], "y": float32 [n, 1]}}``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "POLY_MAX_DEGREE",
    "POLY_TRUE_W",
    "polynomial_data",
    "sine_autoregression",
    "synthetic_regression",
    "weight_decay_data",
]

Split = dict[str, np.ndarray]

POLY_MAX_DEGREE = 20
POLY_TRUE_W = (5.0, 1.2, -3.4, 5.6)


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _split(x: np.ndarray, y: np.ndarray, n_first: int, names: tuple[str, str]) -> dict[str, Split]:
    x = x.astype(np.float32)
    y = y.astype(np.float32).reshape(-1, 1)
    return {
        names[0]: {"x": x[:n_first], "y": y[:n_first]},
        names[1]: {"x": x[n_first:], "y": y[n_first:]},
    }


def synthetic_regression(
    w, b: float, num_train: int = 1000, num_val: int = 1000, noise: float = 0.01, seed: int = 0
) -> dict[str, Split]:
    """Linear-regression data (book §3.3): ``X ~ N(0, 1)``, ``y = X w + b + noise * N(0, 1)``.

    Returns ``{"train": {"x": [num_train, d], "y": [num_train, 1]}, "val": {...}}`` in float32,
    where ``d = len(w)``.
    """
    _check_sizes(num_train=num_train, num_val=num_val)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if w.size == 0:
        raise ValueError("w must have at least one element")
    rng = np.random.default_rng(seed)
    n = num_train + num_val
    x = rng.standard_normal((n, w.size))
    y = x @ w + float(b) + noise * rng.standard_normal(n)
    return _split(x, y, num_train, ("train", "val"))


def weight_decay_data(
    num_train: int = 20, num_val: int = 100, num_inputs: int = 200, seed: int = 0
) -> dict[str, Split]:
    """High-dimensional linear data for weight decay (book §3.7).

    ``y = 0.05 + sum_i 0.01 * x_i + 0.01 * N(0, 1)`` with ``x ~ N(0, 1)`` of ``num_inputs``
    dimensions: few examples, many inputs, so an unregularized model overfits.
    """
    return synthetic_regression(
        np.full(num_inputs, 0.01),
        0.05,
        num_train=num_train,
        num_val=num_val,
        noise=0.01,
        seed=seed,
    )


def polynomial_data(
    n_train: int = 100,
    n_test: int = 100,
    max_degree: int = POLY_MAX_DEGREE,
    true_w=POLY_TRUE_W,
    noise: float = 0.1,
    seed: int = 0,
) -> dict[str, Split]:
    """Polynomial model-selection data (book §3.6, "underfitting or overfitting?").

    ``x ~ N(0, 1)``; the features are ``x**i / i!`` for ``i < max_degree`` (dividing by ``i!`` keeps
    large powers from exploding); ``y = features @ w + noise * N(0, 1)`` where ``w`` is ``true_w``
    padded with zeros (by default ``y = 5 + 1.2 x - 3.4 x^2/2! + 5.6 x^3/3! + noise``).

    Returns ``{"train": {"x": [n_train, max_degree], "y": [n_train, 1], "x_raw": [n_train, 1]},
    "test": {...}}``: train a linear model on the first 4 (normal), 2 (underfitting) or all
    ``max_degree`` (overfitting) feature columns.
    """
    _check_sizes(n_train=n_train, n_test=n_test, max_degree=max_degree)
    true_w = np.asarray(true_w, dtype=np.float64).reshape(-1)
    if true_w.size > max_degree:
        raise ValueError(f"true_w has {true_w.size} terms but max_degree is {max_degree}")
    w = np.zeros(max_degree)
    w[: true_w.size] = true_w
    rng = np.random.default_rng(seed)
    x_raw = rng.standard_normal((n_train + n_test, 1))
    factorials = np.array([math.factorial(i) for i in range(max_degree)], dtype=np.float64)
    features = np.power(x_raw, np.arange(max_degree)) / factorials
    y = features @ w + noise * rng.standard_normal(n_train + n_test)
    out = _split(features, y, n_train, ("train", "test"))
    out["train"]["x_raw"] = x_raw[:n_train].astype(np.float32)
    out["test"]["x_raw"] = x_raw[n_train:].astype(np.float32)
    return out


def sine_autoregression(
    T: int = 1000,
    tau: int = 4,
    num_train: int = 600,
    seed: int = 0,
    noise: float = 0.2,
) -> dict:
    """The noisy sine of book §9.1 for autoregressive models.

    ``x_t = sin(0.01 t) + noise * N(0, 1)`` for ``t = 1, ..., T``; example ``i`` has the ``tau``
    previous values ``[x_i, ..., x_{i+tau-1}]`` as features and ``x_{i+tau}`` as label, so there
    are ``T - tau`` examples; the first ``num_train`` form the training split, the rest ``val``.

    Returns ``{"train": {"x": [num_train, tau], "y": [num_train, 1]}, "val": {...},
    "_info": {"series": x [T], "time": t [T], "tau": tau, "num_inputs": tau}}`` in float32
    (``series`` lets a notebook make the book's k-step-ahead predictions).
    """
    _check_sizes(T=T, tau=tau, num_train=num_train)
    if tau < 1 or num_train < 1:
        raise ValueError(f"tau and num_train must be positive, got {tau=}, {num_train=}")
    if num_train >= T - tau:
        raise ValueError(
            f"num_train={num_train} leaves no validation examples: there are T - tau = "
            f"{T - tau} examples"
        )
    rng = np.random.default_rng(seed)
    time = np.arange(1, T + 1, dtype=np.float64)
    x = (np.sin(0.01 * time) + noise * rng.standard_normal(T)).astype(np.float32)
    features = np.stack([x[i : T - tau + i] for i in range(tau)], axis=1)
    labels = x[tau:].reshape(-1, 1)
    out = _split(features, labels, num_train, ("train", "val"))
    return {
        **out,
        "_info": {"series": x, "time": time.astype(np.float32), "tau": tau, "num_inputs": tau},
    }


def gan_toy_data(num_examples: int = 1000, *, seed: int = 0) -> dict[str, np.ndarray]:
    """The book's GAN data (§20.1.1): ``X A + b`` for standard normal ``X`` ``[n, 2]``, with
    ``A = [[1, 2], [-0.1, 0.5]]`` and ``b = [1, 2]``: a Gaussian of mean ``b`` and covariance
    ``A^T A``. Returns ``{"x": float32 [n, 2]}``."""
    _check_sizes(num_examples=num_examples)
    x = np.random.default_rng(seed).normal(0.0, 1.0, (num_examples, 2))
    a = np.array([[1.0, 2.0], [-0.1, 0.5]])
    b = np.array([1.0, 2.0])
    return {"x": (x @ a + b).astype(np.float32)}


def gp_regression_data(
    num_train: int = 50, num_test: int = 500, *, noise: float = 0.25, seed: int = 0
) -> dict:
    """The book's GP regression data (§18.3): ``y = sin(x) + 0.5 sin(4x) + noise * N(0, 1)`` at
    ``num_train`` evenly spaced points of ``[0, 5]``; the test split is the noise-free function at
    ``num_test`` evenly spaced points of ``[0, 5]``.

    Returns ``{"train": {"x": [num_train, 1], "y": [num_train]}, "test": {...}}`` in float32.
    """
    _check_sizes(num_train=num_train, num_test=num_test)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)

    def f(x):
        return np.sin(x) + 0.5 * np.sin(4 * x)

    x_train = np.linspace(0.0, 5.0, num_train)
    x_test = np.linspace(0.0, 5.0, num_test)
    y_train = f(x_train) + noise * rng.standard_normal(num_train)
    split = lambda x, y: {"x": x[:, None].astype(np.float32), "y": y.astype(np.float32)}
    return {"train": split(x_train, y_train), "test": split(x_test, f(x_test))}
