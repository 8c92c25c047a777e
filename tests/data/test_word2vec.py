"""The word-embedding dataset (book §15.3): the pipeline's steps on small inputs, and its
statistics on the real PTB file against the book's figures."""

import numpy as np
import pytest

from d2ljax.data import word2vec as w2v
from d2ljax.data.text import Vocab


def test_centers_and_contexts_on_the_books_tiny_dataset():
    # the book's tiny_dataset: lines [0..6] and [7..9], max_window_size 2
    ids = np.arange(10, dtype=np.int32)
    lengths = np.array([7, 3])
    for seed in range(5):
        centers, contexts, num = w2v.centers_and_contexts(
            ids, lengths, 2, np.random.default_rng(seed)
        )
        np.testing.assert_array_equal(centers, ids)
        for center, row, n in zip(centers, contexts, num, strict=True):
            line = list(range(7)) if center < 7 else list(range(7, 10))
            i = line.index(center)
            windows = [line[max(0, i - w) : i] + line[i + 1 : i + 1 + w] for w in (1, 2)]
            assert list(row[:n]) in windows
            assert not row[n:].any()


def test_lines_shorter_than_two_have_no_centers():
    centers, contexts, num = w2v.centers_and_contexts(
        np.array([5, 6, 7, 8], np.int32), np.array([1, 0, 3]), 5, np.random.default_rng(0)
    )
    np.testing.assert_array_equal(centers, [6, 7, 8])
    np.testing.assert_array_equal(num, [2, 2, 2])
    with pytest.raises(ValueError, match="max_window_size"):
        w2v.centers_and_contexts(np.zeros(3, np.int32), np.array([3]), 0, np.random.default_rng(0))


def test_subsample_drops_unk_and_keeps_rare_words():
    # token 0 is <unk>; token 1 makes up almost all of the corpus, token 2 is rare
    ids = np.array([0] * 50 + [1] * 100_000 + [2] * 5, np.int32)
    out, lengths, counts = w2v.subsample(ids, np.array([len(ids)]), 3, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(counts, [0, 100_000, 5])
    assert not (out == 0).any()
    assert (out == 2).sum() == 5  # sqrt(1e-4 / f) > 1: always kept
    p = np.sqrt(1e-4 / 100_000 * 100_005)  # the book's keep probability of token 1
    assert abs((out == 1).sum() - 100_000 * p) < 5 * np.sqrt(100_000 * p * (1 - p))
    assert lengths.sum() == len(out)


def test_negatives_follow_the_unigram_075_distribution_and_avoid_contexts():
    rng = np.random.default_rng(0)
    counts = np.array([0, 1000, 100, 10, 1, 5000])
    weights = w2v.noise_weights(counts)
    np.testing.assert_allclose(weights, counts**0.75 / (counts**0.75).sum())
    n = 20_000
    contexts = np.zeros((n, 4), np.int32)
    contexts[:, 0] = 5  # every centre has the most frequent word as a context ...
    num = np.full(n, 1, np.int32)
    num[::2] = 0  # ... except the even rows, which have no context at all
    neg = w2v.get_negatives(contexts, num, weights, 3, rng, chunk=7000)
    assert neg.shape == (n, 12)
    assert not neg[::2].any() and not neg[1::2, 3:].any()
    drawn = neg[1::2, :3].ravel()
    assert not (drawn == 5).any() and not (drawn == 0).any()
    # the others keep their relative weights: w(v) / (1 - w(5)) for v != 5
    expect = weights[1:5] / weights[1:5].sum()
    freq = np.bincount(drawn, minlength=6)[1:5] / len(drawn)
    assert (np.abs(freq - expect) < 4 * np.sqrt(expect / len(drawn))).all(), (freq, expect)


def test_arrays_match_the_books_batchify():
    # the book's two examples (§15.3.5)
    book = w2v.batchify([(1, [2, 2], [3, 3, 3, 3]), (1, [2, 2, 2], [3, 3])])
    np.testing.assert_array_equal(book["centers"], [[1], [1]])
    np.testing.assert_array_equal(
        book["contexts_negatives"], [[2, 2, 3, 3, 3, 3], [2, 2, 2, 3, 3, 0]]
    )
    np.testing.assert_array_equal(book["masks"], [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(book["labels"], [[1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]])
    # the whole-dataset version at a fixed width: the same rows, padded further
    contexts = np.array([[4, 5, 0], [6, 0, 0], [7, 8, 9]], np.int32)
    num = np.array([2, 1, 3], np.int32)
    negs = np.array([[1, 1, 2, 2, 0, 0], [3, 3, 0, 0, 0, 0], [1, 2, 3, 1, 2, 3]], np.int32)
    arrays = w2v.word2vec_arrays(np.array([10, 11, 12]), contexts, num, negs)
    ref = w2v.batchify(
        [(10, [4, 5], [1, 1, 2, 2]), (11, [6], [3, 3]), (12, [7, 8, 9], [1, 2, 3] * 2)]
    )
    for key, value in ref.items():
        np.testing.assert_array_equal(arrays[key][:, : value.shape[1]], value)
        assert not arrays[key][:, value.shape[1] :].any()


@pytest.fixture(scope="module")
def ptb(shared_data):
    from d2ljax.data.hub import DataNotFoundError

    try:
        sentences = w2v.read_ptb()
    except DataNotFoundError as e:
        pytest.skip(f"PTB not available: {e}")
    return sentences


@pytest.mark.slow
def test_ptb_statistics_equal_the_books(ptb):
    assert len(ptb) == 42069  # book: "# sentences: 42069"
    vocab = Vocab(ptb, min_freq=10)
    assert len(vocab) == 6719  # book: "vocab size: 6719"
    ids, lengths = w2v.encode_lines(ptb, vocab)
    assert len(ids) == 887521
    rng = np.random.default_rng(0)
    sub, sub_lengths, counts = w2v.subsample(ids, lengths, len(vocab), vocab.unk, rng)
    the, join = vocab["the"], vocab["join"]
    assert counts[the] == (ids == the).sum() == 50770  # book: before=50770
    assert (sub == join).sum() == (ids == join).sum() == 45  # book: join 45 -> 45
    # "the" is kept with probability sqrt(1e-4 * N / 50770): book after=2010 (seed-dependent)
    p = np.sqrt(1e-4 * counts.sum() / counts[the])
    mean, std = counts[the] * p, np.sqrt(counts[the] * p * (1 - p))
    assert 1950 < mean < 2100 and abs((sub == the).sum() - mean) < 5 * std
    centers, contexts, num = w2v.centers_and_contexts(sub, sub_lengths, 5, rng)
    # book: "# center-context pairs: 1503420" (seed-dependent)
    assert abs(int(num.sum()) - 1503420) < 0.01 * 1503420
    assert num.min() >= 1 and num.max() == 10


@pytest.mark.slow
def test_load_ptb_word2vec_batches(ptb):
    data = w2v.load_ptb_word2vec(seed=0)
    train, info = data["train"], data["_info"]
    vocab = info["vocab"]
    assert info["vocab_size"] == len(vocab) == 6719
    n = len(train["centers"])
    assert train["contexts_negatives"].shape == (n, 60)  # book: contexts_negatives 512 x 60
    cn, masks, labels = train["contexts_negatives"], train["masks"], train["labels"]
    c = labels.sum(1)
    np.testing.assert_array_equal(masks.sum(1), 6 * c)  # K = 5 noise words per context
    assert (labels <= masks).all() and not cn[masks == 0].any()
    assert abs(int(c.sum()) - 1503420) < 0.01 * 1503420
    # no token outside the vocabulary, no <unk>, and no noise word equals a context of its centre
    assert cn.max() < len(vocab) and not (cn[masks == 1] == vocab.unk).any()
    assert not (train["centers"] == vocab.unk).any()
    rows = np.arange(0, n, 97)
    ctx = np.where(labels[rows] == 1, cn[rows], -1)
    noise = np.where((masks[rows] == 1) & (labels[rows] == 0), cn[rows], -2)
    assert not (noise[:, :, None] == ctx[:, None, :]).any()
    # the noise words' frequencies follow count ** 0.75
    noise_all = cn[(masks == 1) & (labels == 0)]
    freq = np.bincount(noise_all, minlength=len(vocab)) / len(noise_all)
    weights = w2v.noise_weights(info["counts"])
    top = np.argsort(weights)[-20:]
    np.testing.assert_allclose(freq[top], weights[top], rtol=0.1)
