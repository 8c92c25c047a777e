"""Tests of d2ljax.data.translation: the book's preprocessing and tokenizing, the MTFraEng arrays
on the real fra-eng.zip of shared/data (skipped when absent), both zip layouts (tiny synthetic
zips registered under a temporary hub entry) and the missing-file error. Offline."""

from __future__ import annotations

import hashlib
import urllib.request
import zipfile

import numpy as np
import pytest

from d2ljax.data import hub, load_dataset, translation
from d2ljax.data.translation import preprocess_nmt, tokenize_nmt, truncate_pad


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", fail)


@pytest.fixture(scope="module")
def fra(shared_data):
    return translation.load_fra_eng()


def _book_preprocess(text):
    """The 1.0 edition's MTFraEng._preprocess, written as the book writes it (the reference)."""
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    no_space = lambda char, prev_char: char in ",.!?" and prev_char != " "  # noqa: E731
    out = [
        " " + char if i > 0 and no_space(char, text[i - 1]) else char
        for i, char in enumerate(text.lower())
    ]
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Text functions


@pytest.mark.parametrize(
    "raw",
    [
        "Go.\tVa !\nHi.\tSalut !\nRun!\tCours\u202f!",
        "Wait, what?!\tAttends,\xa0quoi ?!",
        ".Leading\t!a!!b,,c",
        "\u0130stanbul.\tIstanbul.",  # lowercasing changes the length here
        "",
    ],
)
def test_preprocess_matches_the_book(raw):
    assert preprocess_nmt(raw) == _book_preprocess(raw)


def test_preprocess_examples():
    assert preprocess_nmt("Go.\tVa !\nRun!\tCours\u202f!") == "go .\tva !\nrun !\tcours !"
    assert preprocess_nmt("I won!\nHe's 20.") == "i won !\nhe's 20 ."


def test_tokenize_nmt():
    text = "go .\tva !\nbad line\nhi  there\tsalut\n\na\tb\tc\nx\ty"
    src, tgt = tokenize_nmt(text)
    assert src == [["go", ".", "<eos>"], ["hi", "there", "<eos>"], ["x", "<eos>"]]
    assert tgt == [["va", "!", "<eos>"], ["salut", "<eos>"], ["y", "<eos>"]]
    # As in the book, lines 0..max_examples are read (max_examples + 1 lines).
    assert tokenize_nmt(text, max_examples=1)[0] == [["go", ".", "<eos>"]]
    assert len(tokenize_nmt(text, max_examples=2)[0]) == 2
    assert tokenize_nmt(text, max_examples=0) == (src, tgt)


def test_truncate_pad():
    assert truncate_pad([1, 2], 4, 0) == [1, 2, 0, 0]
    assert truncate_pad([1, 2, 3, 4, 5], 3, 0) == [1, 2, 3]
    assert truncate_pad(("a",), 1, "<pad>") == ["a"]


# ----------------------------------------------------------------------------------------------
# The real data


def test_fra_eng_shapes_and_vocab(fra):
    info = fra["_info"]
    # What the book's §10.5 code gives on this fra.txt (num_steps=9, 512 + 128 examples).
    assert info["src_vocab_size"] == len(info["src_vocab"]) == 194
    assert info["tgt_vocab_size"] == len(info["tgt_vocab"]) == 214
    tgt_vocab = info["tgt_vocab"]
    assert (info["bos"], info["eos"], info["pad"]) == (
        tgt_vocab["<bos>"], tgt_vocab["<eos>"], tgt_vocab["<pad>"],
    )  # fmt: skip
    assert len({info["bos"], info["eos"], info["pad"], tgt_vocab.unk}) == 4
    assert "<bos>" not in info["src_vocab"]  # as in the book: sources never hold <bos>
    for name, n in (("train", 512), ("val", 128)):
        split = fra[name]
        assert set(split) == {"x", "x_len", "dec_x", "y", "y_len"}
        for key in ("x", "dec_x", "y"):
            assert split[key].shape == (n, 9) and split[key].dtype == np.int32
        for key in ("x_len", "y_len"):
            assert split[key].shape == (n,) and split[key].dtype == np.int32


def test_fra_eng_first_examples(fra):
    info, train = fra["_info"], fra["train"]
    src_vocab, tgt_vocab = info["src_vocab"], info["tgt_vocab"]
    pads = ["<pad>"] * 6
    assert src_vocab.to_tokens(train["x"][0]) == ["go", ".", "<eos>", *pads]
    assert tgt_vocab.to_tokens(train["dec_x"][0]) == ["<bos>", "va", "!", "<eos>", *pads[1:]]
    assert tgt_vocab.to_tokens(train["y"][0]) == ["va", "!", "<eos>", *pads]
    assert train["x_len"][0] == 3 and train["y_len"][0] == 3


def _check_arrays(split, info, num_steps):
    bos, eos, pad = info["bos"], info["eos"], info["pad"]
    src_pad, src_eos = info["src_vocab"]["<pad>"], info["src_vocab"]["<eos>"]
    np.testing.assert_array_equal(split["dec_x"][:, 0], bos)
    np.testing.assert_array_equal(split["dec_x"][:, 1:], split["y"][:, :-1])
    assert not (split["y"] == bos).any()
    pairs = ((split["x"], split["x_len"], src_pad), (split["y"], split["y_len"], pad))
    for arr, lengths, p in pairs:
        np.testing.assert_array_equal(lengths, (arr != p).sum(1))
        # the valid tokens come first, then only pads
        positions = np.arange(num_steps)[None, :]
        np.testing.assert_array_equal(arr != p, positions < lengths[:, None])
    # a sequence that was not truncated ends with <eos>
    rows = np.arange(len(split["x"]))
    short = split["x_len"] < num_steps
    assert (split["x"][rows[short], split["x_len"][short] - 1] == src_eos).all()
    short = split["y_len"] < num_steps
    assert (split["y"][rows[short], split["y_len"][short] - 1] == eos).all()


def test_fra_eng_array_relations(fra):
    for name in ("train", "val"):
        _check_arrays(fra[name], fra["_info"], 9)


def test_fra_eng_truncation(shared_data):
    num_steps = 4
    data = translation.load_fra_eng(num_steps=num_steps, num_train=200, num_val=20)
    info, train = data["_info"], data["train"]
    _check_arrays(train, info, num_steps)
    _check_arrays(data["val"], info, num_steps)
    src_vocab, tgt_vocab = info["src_vocab"], info["tgt_vocab"]
    head = "\n".join(translation.read_fra_eng().split("\n", 300)[:300])
    src, tgt = tokenize_nmt(preprocess_nmt(head), 220)
    long_src = np.array([len(s) > num_steps for s in src[:200]])
    long_tgt = np.array([len(t) > num_steps for t in tgt[:200]])
    assert long_src.any() and (~long_src).any() and long_tgt.any()
    # The book truncates first, then pads: a long sentence keeps its first num_steps tokens and
    # loses its <eos>.
    for i in range(200):
        assert train["x"][i].tolist() == src_vocab[truncate_pad(src[i], num_steps, "<pad>")]
        assert train["y"][i].tolist() == tgt_vocab[truncate_pad(tgt[i], num_steps, "<pad>")]
    assert (train["x_len"][long_src] == num_steps).all()
    assert not (train["x"][long_src] == src_vocab["<eos>"]).any()
    assert not (train["y"][long_tgt] == info["eos"]).any()
    # the decoder input holds <bos> and the first num_steps - 1 target tokens
    assert (train["dec_x"][long_tgt] != info["pad"]).all()


def test_fra_eng_min_freq_and_registry(shared_data):
    data = load_dataset("fra_eng", num_train=64, num_val=16, min_freq=1)
    assert data["train"]["x"].shape == (64, 9) and data["val"]["y"].shape == (16, 9)
    # min_freq=1 keeps every word, so nothing is unknown
    for split in ("train", "val"):
        assert not (data[split]["x"] == data["_info"]["src_vocab"].unk).any()
    small = translation.load_fra_eng(num_train=64, num_val=16)
    assert small["_info"]["src_vocab_size"] < data["_info"]["src_vocab_size"]


def test_fra_eng_bad_args():
    with pytest.raises(ValueError, match="num_steps"):
        translation.load_fra_eng(num_steps=0)
    with pytest.raises(ValueError, match="num_val"):
        translation.load_fra_eng(num_val=-1)


def test_build_src_matches_training_sources(fra):
    info, train = fra["_info"], fra["train"]
    x, x_len = translation.build_src(["Go.", "go .", "Hi."], info["src_vocab"], 9)
    assert x.shape == (3, 9) and x.dtype == np.int32 and x_len.dtype == np.int32
    np.testing.assert_array_equal(x[0], train["x"][0])
    np.testing.assert_array_equal(x[1], train["x"][0])
    np.testing.assert_array_equal(x[2], train["x"][1])
    np.testing.assert_array_equal(x_len, [3, 3, 3])
    x, x_len = translation.build_src(["zzyzx qwerty, a b c d e f g h"], info["src_vocab"], 4)
    assert x.shape == (1, 4) and x_len.tolist() == [4]
    assert x[0, :2].tolist() == [info["src_vocab"].unk] * 2
    assert x[0, 2] == info["src_vocab"][","]
    with pytest.raises(TypeError, match="not one string"):
        translation.build_src("go .", info["src_vocab"], 9)
    with pytest.raises(ValueError, match="tabs or newlines"):
        translation.build_src(["go .\tva !"], info["src_vocab"], 9)


def test_build_arrays_matches_training_arrays(fra):
    info, train = fra["_info"], fra["train"]
    split = translation.build_arrays(
        ["Go.", "Hi."], ["Va !", "Salut !"], info["src_vocab"], info["tgt_vocab"], 9
    )
    for key, arr in split.items():
        np.testing.assert_array_equal(arr, train[key][:2], err_msg=key)


# ----------------------------------------------------------------------------------------------
# Both archive layouts, a bad archive, a missing archive

PAIRS = "Go.\tVa !\nHi.\tSalut !\nGo.\tBouge !\nHi.\tSalut.\nRun!\tCours !\nRun!\tCourez !\n"


def _register_zip(monkeypatch, tmp_path, members: dict[str, str]) -> tuple:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / "fra-eng.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
    entry = hub.HubEntry("http://example.invalid/fra-eng.zip", (f"sha1:{sha1}",))
    monkeypatch.setitem(hub.DATA_HUB, "fra-eng", entry)
    monkeypatch.setenv("D2LJAX_DATA_PATH", "")
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")
    return data_dir


@pytest.mark.parametrize(
    "members",
    [
        {"fra-eng/_about.txt": "about", "fra-eng/fra.txt": PAIRS},  # the hub's archive
        {"_about.txt": "about", "fra.txt": PAIRS},  # the copy in shared/data
        {"__MACOSX/fra.txt": "junk", "fra-eng/fra.txt": PAIRS},
    ],
    ids=["hub-layout", "root-layout", "macos-junk"],
)
def test_both_zip_layouts(tmp_path, monkeypatch, members):
    data_dir = _register_zip(monkeypatch, tmp_path, members)
    assert translation.read_fra_eng(data_dir) == PAIRS
    assert translation.read_fra_eng(data_dir) == PAIRS  # second call: already extracted
    data = translation.load_fra_eng(num_steps=4, num_train=3, num_val=2, data_dir=data_dir)
    assert data["train"]["x"].shape == (3, 4) and data["val"]["x"].shape == (2, 4)
    src_vocab = data["_info"]["src_vocab"]
    assert src_vocab.idx_to_token == ["!", ".", "<eos>", "<pad>", "<unk>", "go", "hi", "run"]
    _check_arrays(data["train"], data["_info"], 4)


def test_too_many_examples(tmp_path, monkeypatch):
    data_dir = _register_zip(monkeypatch, tmp_path, {"fra.txt": PAIRS})
    assert translation.load_fra_eng(num_train=4, num_val=1, data_dir=data_dir)["val"]["x"].shape[0]
    with pytest.raises(ValueError, match="only 6 sentence pairs"):
        translation.load_fra_eng(num_train=5, num_val=2, data_dir=data_dir)


def test_zip_without_fra_txt(tmp_path, monkeypatch):
    data_dir = _register_zip(monkeypatch, tmp_path, {"fra-eng/other.txt": PAIRS})
    with pytest.raises(hub.CorruptFileError, match="no fra.txt"):
        translation.read_fra_eng(data_dir)


def test_missing_archive_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("D2LJAX_DATA_PATH", "")
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(hub.DataNotFoundError, match="fra-eng") as err:
        translation.load_fra_eng(data_dir=tmp_path / "nothing")
    message = str(err.value)
    assert "fra-eng.zip" in message and str(tmp_path / "nothing") in message
