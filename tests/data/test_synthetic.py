"""Tests of d2ljax.data.synthetic (the book's own synthetic data sets)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from d2ljax.data import synthetic


def _least_squares(x: np.ndarray, y: np.ndarray, bias: bool = True) -> np.ndarray:
    x = x.astype(np.float64)
    if bias:
        x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    return np.linalg.lstsq(x, y[:, 0].astype(np.float64), rcond=None)[0]


def test_synthetic_regression_shapes_and_dtypes():
    data = synthetic.synthetic_regression([2.0, -3.4], 4.2, num_train=30, num_val=20)
    assert set(data) == {"train", "val"}
    assert data["train"]["x"].shape == (30, 2) and data["train"]["y"].shape == (30, 1)
    assert data["val"]["x"].shape == (20, 2) and data["val"]["y"].shape == (20, 1)
    for split in data.values():
        assert split["x"].dtype == np.float32 and split["y"].dtype == np.float32


def test_synthetic_regression_is_deterministic():
    a = synthetic.synthetic_regression([2.0, -3.4], 4.2, seed=3)
    b = synthetic.synthetic_regression([2.0, -3.4], 4.2, seed=3)
    c = synthetic.synthetic_regression([2.0, -3.4], 4.2, seed=4)
    np.testing.assert_array_equal(a["train"]["x"], b["train"]["x"])
    np.testing.assert_array_equal(a["val"]["y"], b["val"]["y"])
    assert not np.array_equal(a["train"]["x"], c["train"]["x"])


def test_synthetic_regression_recovers_w_and_b():
    w, b = np.array([2.0, -3.4]), 4.2
    data = synthetic.synthetic_regression(w, b)
    est = _least_squares(data["train"]["x"], data["train"]["y"])
    np.testing.assert_allclose(est[:2], w, atol=2e-3)
    np.testing.assert_allclose(est[2], b, atol=2e-3)
    residual = data["train"]["y"][:, 0] - data["train"]["x"] @ w - b
    assert abs(residual.std() - 0.01) < 2e-3  # the noise level
    assert abs(data["train"]["x"].mean()) < 0.1 and abs(data["train"]["x"].std() - 1) < 0.1


def test_synthetic_regression_bad_input():
    with pytest.raises(ValueError, match="num_train"):
        synthetic.synthetic_regression([1.0], 0.0, num_train=-1)
    with pytest.raises(ValueError, match="at least one"):
        synthetic.synthetic_regression([], 0.0)


def test_weight_decay_data():
    data = synthetic.weight_decay_data()
    assert data["train"]["x"].shape == (20, 200) and data["train"]["y"].shape == (20, 1)
    assert data["val"]["x"].shape == (100, 200) and data["val"]["y"].shape == (100, 1)
    np.testing.assert_array_equal(data["val"]["y"], synthetic.weight_decay_data()["val"]["y"])
    big = synthetic.weight_decay_data(num_train=1000, num_val=1, num_inputs=200)
    est = _least_squares(big["train"]["x"], big["train"]["y"])
    np.testing.assert_allclose(est[:200], np.full(200, 0.01), atol=2e-3)
    np.testing.assert_allclose(est[200], 0.05, atol=2e-3)


def test_polynomial_data():
    data = synthetic.polynomial_data()
    assert data["train"]["x"].shape == (100, 20) and data["test"]["x"].shape == (100, 20)
    assert data["train"]["y"].shape == (100, 1) and data["train"]["x_raw"].shape == (100, 1)
    x_raw = data["train"]["x_raw"][:, 0].astype(np.float64)
    for i in (0, 1, 3, 7):
        np.testing.assert_allclose(
            data["train"]["x"][:, i], x_raw**i / math.factorial(i), rtol=1e-5, atol=1e-7
        )
    x = np.concatenate([data["train"]["x"], data["test"]["x"]])[:, :4]
    y = np.concatenate([data["train"]["y"], data["test"]["y"]])
    est = _least_squares(x, y, bias=False)
    np.testing.assert_allclose(est, synthetic.POLY_TRUE_W, atol=0.1)
    again = synthetic.polynomial_data()
    np.testing.assert_array_equal(again["test"]["y"], data["test"]["y"])
    with pytest.raises(ValueError, match="max_degree"):
        synthetic.polynomial_data(max_degree=3)
