"""Tests of d2ljax.data.text: tokenizing, Vocab, the partitioning iterators (on synthetic
``arange`` corpora, where a token's value is its position) and the Time Machine data (the real
file from shared/data; skipped when absent). Offline."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest

from d2ljax.data import hub, load_dataset, text
from d2ljax.data.text import Vocab, ngram_freqs, tokenize


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", fail)


@pytest.fixture(scope="module")
def corpus_vocab(shared_data):
    return text.load_corpus_timemachine()


# ----------------------------------------------------------------------------------------------
# tokenize


def test_tokenize_string_and_lines():
    assert tokenize("ab c") == ["a", "b", " ", "c"]
    assert tokenize("the time  machine\n", "word") == ["the", "time", "machine"]
    assert tokenize(["ab", "c d"], "char") == [["a", "b"], ["c", " ", "d"]]
    assert tokenize(["the time", "", "machine"], token="word") == [["the", "time"], [], ["machine"]]


def test_tokenize_bad_input():
    with pytest.raises(ValueError, match="'char' or 'word'"):
        tokenize("abc", token="bpe")
    with pytest.raises(TypeError, match="line 1"):
        tokenize(["ok", 3])


def test_preprocess_timemachine():
    assert text.preprocess_timemachine("The Time-Machine, by H. G. Wells\n\n1895") == (
        "the time machine by h g wells "
    )


# ----------------------------------------------------------------------------------------------
# Vocab


def test_vocab_sorted_round_trip_and_unknown():
    tokens = list("hello world")
    vocab = Vocab(tokens)
    assert vocab.idx_to_token == sorted(set(tokens) | {"<unk>"})
    assert len(vocab) == 9
    ids = vocab[tokens]
    assert isinstance(ids, list) and len(ids) == len(tokens)
    assert vocab.to_tokens(ids) == tokens
    assert vocab.to_tokens(np.array(ids, dtype=np.int32)) == tokens
    assert vocab.to_tokens(np.array([[ids[0], ids[1]]])) == [["h", "e"]]
    assert vocab.to_tokens(np.int64(ids[0])) == "h" == vocab.to_tokens(ids[0])
    assert vocab.to_tokens([ids[4]]) == ["o"]  # a one-element list is still a list
    assert vocab["z"] == vocab.unk == vocab["<unk>"] == vocab.idx_to_token.index("<unk>")
    assert vocab[("h", "zz")] == [vocab["h"], vocab.unk]
    assert "h" in vocab and "zz" not in vocab
    with pytest.raises(IndexError, match="out of range"):
        vocab.to_tokens(len(vocab))


def test_vocab_token_freqs_min_freq_and_reserved():
    tokens = [["b", "a", "b"], ["c", "b", "a", "d"]]  # lines are flattened
    vocab = Vocab(tokens, min_freq=2, reserved_tokens=["<pad>", "<bos>"])
    assert vocab.token_freqs == [("b", 3), ("a", 2), ("c", 1), ("d", 1)]
    assert vocab.idx_to_token == ["<bos>", "<pad>", "<unk>", "a", "b"]
    assert vocab["c"] == vocab["d"] == vocab.unk == 2
    assert vocab["<pad>"] == 1 and vocab[["a", "b"]] == [3, 4]
    assert len(Vocab(tokens, min_freq=4)) == 1  # only <unk>
    assert len(Vocab()) == 1 and Vocab().unk == 0
    with pytest.raises(TypeError, match="not one string"):
        Vocab(tokens, reserved_tokens="<pad>")


def test_timemachine_char_vocab_and_corpus(corpus_vocab):
    corpus, vocab = corpus_vocab
    assert len(vocab) == 28  # book §9.2: 26 letters, ' ' and '<unk>'
    assert vocab.idx_to_token[:3] == [" ", "<unk>", "a"] and vocab.idx_to_token[-1] == "z"
    assert corpus.dtype == np.int32 and corpus.shape == (173428,)
    assert "".join(vocab.to_tokens(corpus[:16])) == "the time machine"
    assert not (corpus == vocab.unk).any()
    assert vocab.token_freqs[0] == (" ", 32775) and vocab.token_freqs[1][0] == "e"
    short, _ = text.load_corpus_timemachine(max_tokens=100)
    np.testing.assert_array_equal(short, corpus[:100])


def test_timemachine_word_statistics(shared_data):
    words = tokenize(text.preprocess_timemachine(text.read_timemachine()), "word")
    assert len(Vocab(words)) == 4580
    # The book's §9.2.5 figures.
    assert ngram_freqs(words, 1)[:3] == [(("the",), 2261), (("i",), 1267), (("and",), 1245)]
    assert ngram_freqs(words, 2)[:2] == [(("of", "the"), 309), (("in", "the"), 169)]
    assert ngram_freqs(words, 3)[0] == (("the", "time", "traveller"), 59)
    stats = text.corpus_stats(words, max_n=3, top=2)
    assert stats["num_tokens"] == 32775 and stats["num_unique"][1] == 4579
    assert stats["num_unique"][2] < stats["num_unique"][3]
    assert (np.diff(stats["freqs"][2]) <= 0).all() and stats["freqs"][2].sum() == 32774


def test_ngram_freqs_small():
    assert ngram_freqs("abab", 2) == [(("a", "b"), 2), (("b", "a"), 1)]
    assert ngram_freqs(["x"], 2) == []
    with pytest.raises(ValueError, match="positive"):
        ngram_freqs("ab", 0)


# ----------------------------------------------------------------------------------------------
# Partitioning iterators


@pytest.mark.parametrize("length,batch_size,num_steps", [(35, 2, 5), (1000, 4, 7), (101, 3, 10)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_iterator_covers_each_subsequence_once(length, batch_size, num_steps, seed):
    corpus = np.arange(length)
    batches = list(text.seq_data_iter_random(corpus, batch_size, num_steps, seed=seed))
    assert batches
    for x, y in batches:
        assert x.shape == y.shape == (batch_size, num_steps)
        assert x.dtype == y.dtype == np.int32
        np.testing.assert_array_equal(y, x + 1)  # Y is X shifted by one in the corpus
        np.testing.assert_array_equal(x, x[:, :1] + np.arange(num_steps))  # contiguous rows
    starts = np.concatenate([x[:, 0] for x, _ in batches])
    offset = int(starts.min() % num_steps)
    assert 0 <= offset < num_steps
    num_subseqs = (length - offset - 1) // num_steps
    assert len(batches) == num_subseqs // batch_size
    assert len(set(starts.tolist())) == len(starts)  # each start once per epoch
    all_starts = set(range(offset, offset + num_subseqs * num_steps, num_steps))
    assert set(starts.tolist()) <= all_starts
    if num_subseqs % batch_size == 0:
        assert set(starts.tolist()) == all_starts


def test_random_iterator_is_random_and_seeded():
    corpus = np.arange(1000)
    first = [x[:, 0].tolist() for x, _ in text.seq_data_iter_random(corpus, 4, 7, seed=3)]
    again = [x[:, 0].tolist() for x, _ in text.seq_data_iter_random(corpus, 4, 7, seed=3)]
    assert first == again
    orders = {
        tuple(next(text.seq_data_iter_random(corpus, 4, 7, seed=s))[0][:, 0]) for s in range(10)
    }
    assert len(orders) > 1
    first_x = [next(text.seq_data_iter_random(corpus, 4, 7, seed=s))[0] for s in range(30)]
    offsets = {int(x[0, 0]) % 7 for x in first_x}
    assert len(offsets) > 1


@pytest.mark.parametrize("length,batch_size,num_steps", [(35, 2, 5), (1000, 4, 7), (64, 8, 3)])
def test_sequential_iterator_rows_continue(length, batch_size, num_steps):
    corpus = np.arange(length)
    offsets = set()
    for seed in range(8):
        batches = list(text.seq_data_iter_sequential(corpus, batch_size, num_steps, seed=seed))
        assert batches
        x0 = batches[0][0]
        offset = int(x0[0, 0])
        offsets.add(offset)
        assert 0 <= offset <= num_steps
        row_len = (length - offset - 1) // batch_size
        assert len(batches) == row_len // num_steps
        np.testing.assert_array_equal(x0[:, 0], offset + row_len * np.arange(batch_size))
        for i, (x, y) in enumerate(batches):
            assert x.shape == y.shape == (batch_size, num_steps) and x.dtype == np.int32
            np.testing.assert_array_equal(y, x + 1)
            np.testing.assert_array_equal(x, x[:, :1] + np.arange(num_steps))
            if i:  # each row continues the same row of the previous batch
                np.testing.assert_array_equal(x[:, 0], batches[i - 1][0][:, -1] + 1)
    assert len(offsets) > 1


def test_iterators_on_real_corpus_shift(corpus_vocab):
    corpus, _ = corpus_vocab
    for it in (text.seq_data_iter_random, text.seq_data_iter_sequential):
        x, y = next(it(corpus, 32, 35))
        assert x.shape == (32, 35)
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])


def test_iterators_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        next(text.seq_data_iter_random(np.arange(10), 0, 2))
    with pytest.raises(ValueError, match="one-dimensional"):
        next(text.seq_data_iter_sequential(np.zeros((2, 5)), 1, 2))
    assert list(text.seq_data_iter_sequential(np.arange(5), 2, 10)) == []


# ----------------------------------------------------------------------------------------------
# load_timemachine_lm


def test_timemachine_lm_windows(corpus_vocab):
    corpus, vocab = corpus_vocab
    data = text.load_timemachine_lm(num_steps=8, num_train=100, num_val=50)
    train, val, info = data["train"], data["val"], data["_info"]
    assert train["x"].shape == train["y"].shape == (100, 8)
    assert val["x"].shape == val["y"].shape == (50, 8)
    assert all(a.dtype == np.int32 for s in (train, val) for a in s.values())
    assert info["vocab_size"] == len(info["vocab"]) == 28
    x = np.concatenate([train["x"], val["x"]])
    y = np.concatenate([train["y"], val["y"]])
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # label = input shifted by one
    for i in (0, 1, 99, 100, 149):  # window i starts at corpus position i
        np.testing.assert_array_equal(x[i], corpus[i : i + 8])
        np.testing.assert_array_equal(y[i], corpus[i + 1 : i + 9])


def test_timemachine_lm_defaults_and_registry(shared_data):
    data = load_dataset("timemachine")
    assert data["train"]["x"].shape == (10000, 32) and data["val"]["y"].shape == (5000, 32)
    assert data["_info"]["vocab_size"] == 28


def test_timemachine_lm_too_large_is_an_error(shared_data):
    with pytest.raises(ValueError, match="173428 char tokens"):
        text.load_timemachine_lm(num_steps=32, num_train=170000, num_val=5000)
    with pytest.raises(ValueError, match="num_steps"):
        text.load_timemachine_lm(num_steps=0)


def test_missing_timemachine_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("D2LJAX_DATA_PATH", "")
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(hub.DataNotFoundError, match="timemachine") as err:
        text.load_timemachine_lm(data_dir=tmp_path / "nothing")
    assert str(tmp_path / "nothing") in str(err.value)
    assert "timemachine.txt" in str(err.value)
