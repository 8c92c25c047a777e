"""Tests of d2ljax.data.tabular on the real Kaggle house-price CSVs in shared/data (skipped when
absent). Offline, with no network access."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from d2ljax.data import hub, tabular

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HAVE_HOUSE = (SHARED_DATA / "kaggle_house_pred_train.csv").is_file() and (
    SHARED_DATA / "kaggle_house_pred_test.csv"
).is_file()
needs_house = pytest.mark.skipif(not HAVE_HOUSE, reason=f"no house CSVs in {SHARED_DATA}")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(SHARED_DATA))
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.fixture(scope="module")
def house():
    if not HAVE_HOUSE:
        pytest.skip(f"no house CSVs in {SHARED_DATA}")
    train, test = tabular.load_kaggle_house(data_dir=SHARED_DATA)
    return train, test, tabular.preprocess_house(train, test)


@needs_house
def test_load_shapes(house):
    train, test, _ = house
    assert train.shape == (1460, 81) and test.shape == (1459, 80)
    assert "SalePrice" in train.columns and "SalePrice" not in test.columns
    # "None" means "no masonry veneer" here, not missing (see the module docstring)
    assert (train["MasVnrType"] == "None").sum() == 864
    assert train["MasVnrType"].isna().sum() == 8


@needs_house
def test_load_via_search_path():
    train, test = tabular.load_kaggle_house()  # found through D2LJAX_DATA_PATH
    assert len(train) == 1460 and len(test) == 1459


def test_missing_files_are_a_clear_error(monkeypatch):
    monkeypatch.delenv("D2LJAX_DATA_PATH")
    with pytest.raises(hub.DataNotFoundError, match="kaggle_house_pred_train.csv"):
        tabular.load_kaggle_house()


@needs_house
def test_preprocess_matches_the_book(house):
    train, test, data = house
    assert data.train_x.shape == (1460, tabular.NUM_FEATURES) == (1460, 331)
    assert data.test_x.shape == (1459, 331) and data.num_features == 331
    assert data.train_y.shape == (1460, 1)
    for array in (data.train_x, data.train_y, data.test_x):
        assert array.dtype == np.float32
        assert np.isfinite(array).all()
    np.testing.assert_allclose(data.train_y[:, 0], np.log(train["SalePrice"].to_numpy()), rtol=1e-6)
    np.testing.assert_array_equal(data.test_ids, np.arange(1461, 2920))
    assert len(data.feature_names) == 331
    assert "Id" not in data.feature_names and "SalePrice" not in data.feature_names
    assert {"MSZoning_RL", "MSZoning_nan", "MasVnrType_None", "MasVnrType_nan"} <= set(
        data.feature_names
    )


@needs_house
def test_numeric_columns_are_standardized(house):
    train, _, data = house
    numeric = train.drop(columns=["Id", "SalePrice"]).select_dtypes(include="number").columns
    assert len(numeric) == 36
    cols = [data.feature_names.index(c) for c in numeric]
    everything = np.concatenate([data.train_x, data.test_x])[:, cols].astype(np.float64)
    # mean over train+test is 0 (missing values were set to 0 = the mean after standardizing)
    np.testing.assert_allclose(everything.mean(axis=0), 0.0, atol=1e-5)
    assert (everything.std(axis=0) <= 1.0 + 1e-3).all() and (everything.std(axis=0) > 0.5).all()
    onehot = np.concatenate([data.train_x, data.test_x])[:, len(numeric) :]
    assert set(np.unique(onehot)) <= {0.0, 1.0}


@needs_house
def test_train_stats_option(house):
    train, test, _ = house
    data = tabular.preprocess_house(train, test, stats_from="train")
    col = data.feature_names.index("LotArea")
    assert abs(float(data.train_x[:, col].mean())) < 1e-5
    with pytest.raises(ValueError, match="stats_from"):
        tabular.preprocess_house(train, test, stats_from="test")


def test_preprocess_bad_input():
    df = pd.DataFrame({"Id": [1], "A": [1.0]})
    with pytest.raises(ValueError, match="SalePrice"):
        tabular.preprocess_house(df, df)
    with pytest.raises(ValueError, match="'Id'"):
        tabular.preprocess_house(df.drop(columns=["Id"]), df)


@pytest.mark.parametrize(("n", "k"), [(1460, 5), (10, 3), (7, 7)])
def test_k_fold_partition(n, k):
    vals = []
    for fold in range(k):
        train_idx, val_idx = tabular.k_fold_indices(n, k, fold)
        assert len(train_idx) + len(val_idx) == n
        assert np.intersect1d(train_idx, val_idx).size == 0
        assert (np.diff(val_idx) == 1).all()  # contiguous
        vals.append(val_idx)
    np.testing.assert_array_equal(np.concatenate(vals), np.arange(n))
    if n % k == 0:
        assert {len(v) for v in vals} == {n // k}


def test_k_fold_bad_input():
    with pytest.raises(ValueError, match="2 <= k <= n"):
        tabular.k_fold_indices(10, 1, 0)
    with pytest.raises(ValueError, match="fold must be"):
        tabular.k_fold_indices(10, 5, 5)


def test_submission_round_trip(tmp_path):
    ids = np.arange(1461, 1466)
    prices = np.array([[208500.0], [181500.5], [223500.0], [140000.0], [250000.25]])
    path = tabular.write_submission(tmp_path / "out" / "submission.csv", ids, prices)
    back = pd.read_csv(path)
    assert list(back.columns) == ["Id", "SalePrice"]
    np.testing.assert_array_equal(back["Id"], ids)
    np.testing.assert_allclose(back["SalePrice"], prices[:, 0])
    path = tabular.write_submission(tmp_path / "log.csv", ids, np.log(prices), log_space=True)
    np.testing.assert_allclose(pd.read_csv(path)["SalePrice"], prices[:, 0], rtol=1e-12)
    with pytest.raises(ValueError, match="5 ids but 4"):
        tabular.write_submission(tmp_path / "x.csv", ids, prices[:4])
    with pytest.raises(ValueError, match="NaN"):
        tabular.write_submission(tmp_path / "x.csv", ids, np.full(5, np.nan))
