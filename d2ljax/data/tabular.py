"""Kaggle house prices (book §5.7): loading, the book's preprocessing, k-fold splits, submission.

The CSV files come from the hub (``kaggle_house_train`` / ``kaggle_house_test``), found locally
first (the cache, ``$D2LJAX_DATA_PATH``...) or downloaded and SHA-1 checked.

On the feature count: the book gets 331 features. pandas >= 2.0 also reads the string ``"None"`` as
missing, and in this data ``MasVnrType == "None"`` means "no masonry veneer" (864 houses), a real
category distinct from the 8 truly missing values. :func:`load_kaggle_house` therefore reads the
files with pandas' default missing-value strings *minus* ``"None"``, which reproduces the book's
331 columns; with pandas' current defaults the category would vanish and 330 columns remain.

The module also reads the NASA airfoil self-noise data (book §12.5, hub entry ``airfoil``) with
:func:`load_airfoil`, the regression problem chapter 12 trains its optimizers on.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from d2ljax.data import hub

__all__ = [
    "HouseData",
    "NA_VALUES",
    "NUM_FEATURES",
    "k_fold_indices",
    "load_airfoil",
    "load_kaggle_house",
    "preprocess_house",
    "write_submission",
]

# pandas' default missing-value strings before 2.0 (the book's): today's defaults less "None".
NA_VALUES: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null",
)  # fmt: skip
NUM_FEATURES = 331  # 36 standardized numeric columns + 295 one-hot columns (43 with an NA column)
LABEL = "SalePrice"


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=list(NA_VALUES))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise hub.CorruptFileError(f"{path}: cannot be read as CSV ({e})") from e


def load_kaggle_house(
    *, data_dir: str | os.PathLike | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw Kaggle house-price tables ``(train_df, test_df)``: 1460 x 81 and 1459 x 80.

    ``train_df`` has ``Id``, 79 features and ``SalePrice``; ``test_df`` has no ``SalePrice``.
    """
    train = _read_csv(hub.download("kaggle_house_train", data_dir=data_dir))
    test = _read_csv(hub.download("kaggle_house_test", data_dir=data_dir))
    for name, df, needed in (("train", train, ("Id", LABEL)), ("test", test, ("Id",))):
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise hub.CorruptFileError(f"the {name} CSV has no column(s) {missing}")
    return train, test


@dataclass(frozen=True)
class HouseData:
    """Preprocessed house-price arrays.

    Attributes:
      train_x: float32 [n_train, F] features.
      train_y: float32 [n_train, 1] log(SalePrice).
      test_x: float32 [n_test, F] features.
      test_ids: int64 [n_test] the ``Id`` column of the test table (for the submission).
      feature_names: the F column names (numeric names, then ``<column>_<category>`` one-hots).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_ids: np.ndarray
    feature_names: tuple[str, ...]

    @property
    def num_features(self) -> int:
        return self.train_x.shape[1]


def preprocess_house(
    train_df: pd.DataFrame, test_df: pd.DataFrame, *, stats_from: str = "all"
) -> HouseData:
    """The book's preprocessing (§5.7).

    Drops ``Id``; standardizes every numeric column to zero mean and unit variance with statistics
    of the train and test features together (``stats_from="all"``, as the book does; ``"train"``
    uses the train rows only), then sets missing numeric values to 0 (the mean); one-hot encodes
    the other columns with an extra indicator column for missing values; labels are
    ``log(SalePrice)``.
    """
    if stats_from not in ("all", "train"):
        raise ValueError(f"stats_from must be 'all' or 'train', not {stats_from!r}")
    for name, df in (("train_df", train_df), ("test_df", test_df)):
        if "Id" not in df.columns:
            raise ValueError(f"{name} has no 'Id' column")
    if LABEL not in train_df.columns:
        raise ValueError(f"train_df has no {LABEL!r} column")
    labels = train_df[LABEL].to_numpy(dtype=np.float64)
    if np.isnan(labels).any() or (labels <= 0).any():
        raise ValueError(f"{LABEL} must be positive and present in every train row")

    n_train = len(train_df)
    features = pd.concat(
        (train_df.drop(columns=["Id", LABEL]), test_df.drop(columns=["Id"])), ignore_index=True
    )
    numeric = features.select_dtypes(include="number").columns
    stats_rows = features[numeric] if stats_from == "all" else features[numeric].iloc[:n_train]
    mean, std = stats_rows.mean(), stats_rows.std()
    std = std.where(std > 0, 1.0)  # a constant column becomes all zeros instead of NaN
    features[numeric] = ((features[numeric] - mean) / std).fillna(0)
    features = pd.get_dummies(features, dummy_na=True)
    values = features.to_numpy(dtype=np.float32)
    return HouseData(
        train_x=values[:n_train],
        train_y=np.log(labels).astype(np.float32).reshape(-1, 1),
        test_x=values[n_train:],
        test_ids=test_df["Id"].to_numpy(dtype=np.int64),
        feature_names=tuple(str(c) for c in features.columns),
    )


def k_fold_indices(n: int, k: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)`` for fold ``fold`` of ``k`` contiguous folds over ``range(n)``.

    As in the book, fold ``i`` is a contiguous block. When ``k`` does not divide ``n`` the first
    ``n % k`` folds get one extra example (the book drops the remainder instead), so the k
    validation sets always partition ``range(n)``.
    """
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= k <= n, got k={k}, n={n}")
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in [0, {k}), got {fold}")
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    start = int(sizes[:fold].sum())
    stop = start + int(sizes[fold])
    idx = np.arange(n)
    return np.concatenate((idx[:start], idx[stop:])), idx[start:stop]


_AIRFOIL_COLUMNS = 6  # frequency, angle, chord, velocity, thickness; sound level (the label)


def load_airfoil(
    *, data_dir: str | os.PathLike | None = None, num_examples: int = 1500
) -> dict[str, dict[str, np.ndarray]]:
    """The airfoil self-noise data as the book prepares it for chapter 12 (§12.5.3).

    Reads the 1503 tab-separated rows of ``airfoil_self_noise.dat`` (five features and the
    scaled sound pressure level), standardizes *every* column, the label included, to zero mean
    and unit variance over all 1503 rows (population standard deviation, as the book's NumPy
    ``std``), then keeps the first ``num_examples`` rows (the book's 1500).

    Returns:
      ``{"train": {"x": float32 [n, 5], "y": float32 [n, 1]}}``.
    """
    path = hub.download("airfoil", data_dir=data_dir)
    try:
        data = np.loadtxt(path, delimiter="\t", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise hub.CorruptFileError(f"{path}: cannot be read as tab-separated numbers ({e})") from e
    if data.shape[1] != _AIRFOIL_COLUMNS:
        raise hub.CorruptFileError(
            f"{path}: expected {_AIRFOIL_COLUMNS} tab-separated columns, found {data.shape[1]}"
        )
    if not 1 <= num_examples <= len(data):
        raise ValueError(f"num_examples must be in [1, {len(data)}], got {num_examples}")
    data = (data - data.mean(axis=0)) / data.std(axis=0)
    data = data[:num_examples].astype(np.float32)
    return {"train": {"x": data[:, :-1], "y": data[:, -1:]}}


def write_submission(path: str | os.PathLike, ids, predictions, *, log_space: bool = False) -> Path:
    """Writes the Kaggle submission CSV ``Id,SalePrice``; returns its path.

    ``predictions`` are prices, or log-prices with ``log_space=True`` (they are exponentiated).
    """
    ids = np.asarray(ids).reshape(-1)
    preds = np.asarray(predictions, dtype=np.float64)
    if preds.ndim == 2 and preds.shape[1] == 1:
        preds = preds[:, 0]
    if preds.ndim != 1:
        raise ValueError(f"predictions must have shape [n] or [n, 1], got {preds.shape}")
    if len(ids) != len(preds):
        raise ValueError(f"{len(ids)} ids but {len(preds)} predictions")
    if log_space:
        preds = np.exp(preds)
    if not np.all(np.isfinite(preds)):
        raise ValueError("predictions contain NaN or infinite values")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Id", LABEL])
        for i, p in zip(ids, preds, strict=True):
            writer.writerow([int(i), repr(float(p))])
    return path
