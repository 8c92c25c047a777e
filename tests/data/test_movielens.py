"""MovieLens 100K (book §21.2): the real table's statistics, the splits against the book's own
loops, explicit and implicit feedback; the GroupLens-zip path on a small zip built here. The
real-data tests skip when neither the RecBole 1.2.1 wheel nor ml-100k.zip is present
(`python -m pip download --no-deps recbole==1.2.1 -d ~/.cache/d2ljax/wheels`)."""

import hashlib
import io
import zipfile

import numpy as np
import pytest

from d2ljax.data import hub, load_dataset
from d2ljax.data.recsys import load_ml100k, ml100k_sequences, read_ml100k, split_ml100k


@pytest.fixture(scope="module")
def ml100k():
    try:
        return read_ml100k()
    except hub.DataNotFoundError:
        pytest.skip("MovieLens 100K not present: python -m pip download --no-deps recbole==1.2.1 "
                    "-d ~/.cache/d2ljax/wheels")


def test_the_real_table_has_the_books_statistics(ml100k):
    data, num_users, num_items = ml100k
    assert (num_users, num_items, len(data)) == (943, 1682, 100_000)
    sparsity = 1 - len(data) / (num_users * num_items)
    assert round(100 * sparsity, 3) == 93.695  # the book: "sparsity 93.695%"
    assert data.iloc[0].tolist() == [196, 242, 3, 881250949]  # u.data's first line
    counts = np.bincount(data["rating"], minlength=6)[1:].tolist()
    assert counts == [6110, 11370, 27145, 34174, 21201]
    assert not data.duplicated(["user_id", "item_id"]).any()


def test_random_split_is_deterministic_in_its_seed(ml100k):
    data, nu, ni = ml100k
    train, test = split_ml100k(data, nu, ni, "random", 0.1, seed=0)
    again, _ = split_ml100k(data, nu, ni, "random", 0.1, seed=0)
    other, _ = split_ml100k(data, nu, ni, "random", 0.1, seed=1)
    assert (len(train), len(test)) == (90095, 9905)
    assert train.index.equals(again.index) and not train.index.equals(other.index)
    assert sorted(train.index.append(test.index)) == list(range(100_000))


def test_seq_aware_split_equals_the_books_loop(ml100k):
    data, nu, ni = ml100k
    # the book's split_data_ml100k(split_mode="seq-aware"), as written (a set for `not in`)
    train_items, test_items, train_list = {}, {}, []
    for line in data.itertuples():
        u, i, rating, time = line[1], line[2], line[3], line[4]
        train_items.setdefault(u, []).append((u, i, rating, time))
        if u not in test_items or test_items[u][-1] < time:
            test_items[u] = (i, rating, time)
    for u in range(1, nu + 1):
        train_list.extend(sorted(train_items[u], key=lambda k: k[3]))
    test_data = [(key, *value) for key, value in test_items.items()]
    test_set = set(test_data)
    train_data = [item for item in train_list if item not in test_set]

    train, test = split_ml100k(data, nu, ni, "seq-aware")
    assert list(test.itertuples(index=False, name=None)) == test_data
    assert list(train.itertuples(index=False, name=None)) == train_data
    assert (len(train), len(test)) == (99057, 943)


def test_explicit_and_implicit_feedback_equal_the_books_loop(ml100k):
    data, nu, ni = ml100k
    train, _ = split_ml100k(data, nu, ni, "random", 0.1, seed=0)
    users, items, scores, inter = load_ml100k(train, nu, ni, "explicit")
    ref = np.zeros((ni, nu))
    for line in train.itertuples():
        ref[int(line[2] - 1), int(line[1] - 1)] = int(line[3])
    np.testing.assert_array_equal(inter, ref)
    assert inter.shape == (1682, 943) and (inter > 0).sum() == len(train)
    np.testing.assert_array_equal(scores, train["rating"])
    assert users.min() == 0 and users.max() == 942 and items.max() <= 1681
    users, items, scores, inter = load_ml100k(train, nu, ni, "implicit")
    assert set(scores.tolist()) == {1}
    ref = {}
    for line in train.itertuples():
        ref.setdefault(int(line[1] - 1), []).append(int(line[2] - 1))
    assert inter == ref


def test_the_datasets_configs_name(ml100k):
    s = load_dataset("ml100k")
    assert s["_info"] == {"num_users": 943, "num_items": 1682}
    assert s["train"]["user"].dtype == np.int32 and s["train"]["rating"].dtype == np.float32
    assert len(s["train"]["user"]) == 90095 and len(s["test"]["item"]) == 9905
    v = load_dataset("ml100k_autorec")
    assert v["train"]["x"].shape == v["test"]["y"].shape == (1682, 943)
    assert (v["train"]["x"] > 0).sum() == 90095 and (v["test"]["y"] > 0).sum() == 9905
    assert not ((v["train"]["x"] > 0) & (v["test"]["y"] > 0)).any()
    seq = load_dataset("ml100k", split_mode="seq-aware", feedback="implicit")
    assert len(seq["test"]["user"]) == 943 and set(seq["test"]["rating"].tolist()) == {1.0}


def test_caser_windows_are_the_books_seqdataset(ml100k):
    data, nu, ni = ml100k
    s = ml100k_sequences(5)
    train, test = split_ml100k(data, nu, ni, "seq-aware")
    per_user = {u: g["item_id"].to_numpy() - 1 for u, g in train.groupby("user_id", sort=True)}
    assert len(s["train"]["user"]) == 99057 - 5 * 943 == 94342  # SeqDataset's ns
    u0 = per_user[1]  # user 1's windows, latest first: its[-6:], its[-7:-1], ...
    np.testing.assert_array_equal(s["train"]["seq"][0], u0[-6:-1])
    assert s["train"]["item"][0] == u0[-1] and s["train"]["item"][1] == u0[-2]
    rows = np.flatnonzero(s["train"]["user"] == 0)
    assert len(rows) == len(u0) - 5
    windows = np.c_[s["train"]["seq"][rows], s["train"]["item"][rows]]
    expected = [u0[e - 6 : e] for e in range(len(u0), 5, -1)]
    np.testing.assert_array_equal(windows, expected)
    for u in (0, 500, 942):  # test_seq: the last L training items, before the held-out one
        last = s["test"]["seq"][s["test"]["user"] == u][0]
        np.testing.assert_array_equal(last, per_user[u + 1][-5:])
    held_out = dict(zip(test["user_id"] - 1, test["item_id"] - 1, strict=True))
    assert all(held_out[u] == i for u, i in zip(s["test"]["user"], s["test"]["item"], strict=True))


def test_bad_arguments_are_refused(ml100k):
    data, nu, ni = ml100k
    with pytest.raises(ValueError, match="split_mode"):
        split_ml100k(data, nu, ni, "leave-one-out")
    with pytest.raises(ValueError, match="test_ratio"):
        split_ml100k(data, nu, ni, "random", 1.5)
    with pytest.raises(ValueError, match="feedback"):
        load_ml100k(data, nu, ni, "ratings")


def test_the_grouplens_zip_is_read_when_no_wheel_is_there(tmp_path, monkeypatch):
    # only this test's folders: the real files may be in the user's cache
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("D2LJAX_DATA_PATH", raising=False)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t2\t5\t100\n2\t1\t3\t90\n1\t1\t4\t120\n")
    (tmp_path / "ml-100k.zip").write_bytes(buf.getvalue())
    real = hub.DATA_HUB["ml-100k"]
    entry = hub.HubEntry(real.url, (hashlib.sha1(buf.getvalue()).hexdigest(),))
    monkeypatch.setitem(hub.DATA_HUB, "ml-100k", entry)
    data, nu, ni = read_ml100k(data_dir=tmp_path)
    assert (nu, ni) == (2, 2) and data.values.tolist() == [[1, 2, 5, 100], [2, 1, 3, 90],
                                                          [1, 1, 4, 120]]
    train, test = split_ml100k(data, nu, ni, "seq-aware")
    assert test.values.tolist() == [[1, 1, 4, 120], [2, 1, 3, 90]]
    assert train.values.tolist() == [[1, 2, 5, 100]]
    (tmp_path / "ml-100k.zip").unlink()
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")
    with pytest.raises(hub.DataNotFoundError, match="recbole==1.2.1"):
        read_ml100k(data_dir=tmp_path / "nothing")
