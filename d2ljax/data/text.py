"""Text preprocessing and language-model data (book chapter 9, §9.2-§9.3).

The course's corpus is H. G. Wells' *The Time Machine* (hub entry ``timemachine``). The pipeline
follows the d2l 1.0 edition:

* :func:`read_timemachine` returns the raw text; :func:`preprocess_timemachine` keeps letters only
  and lowercases (``re.sub('[^A-Za-z]+', ' ', text).lower()``, §9.2.1);
* :func:`tokenize` splits into characters or words (§9.2.2);
* :class:`Vocab` maps tokens to indices (§9.2.3): ``'<unk>'``, the reserved tokens and every token
  seen at least ``min_freq`` times, **sorted** (the 1.0 edition sorts the token set, so the
  indices do not depend on frequencies). The character vocabulary of the book has 28 entries:
  ``' '``, ``'<unk>'`` and the 26 letters;
* :func:`load_corpus_timemachine` gives the corpus as token indices (§9.2.4);
* :func:`ngram_freqs` counts uni-, bi- and trigrams for the Zipf plots (§9.2.5);
* :func:`load_timemachine_lm` builds the 1.0 edition's ``TimeMachine`` data (§9.3.4): every
  length-``num_steps`` window of the corpus is an example, the label is the window shifted by one.

The two partitioning iterators of the 2nd edition (§8.3.4 there, "Reading Long Sequence Data"),
:func:`seq_data_iter_random` and :func:`seq_data_iter_sequential`, are here too: the 1.0 edition
still explains random and sequential partitioning in words (§9.3.4) and the RNN chapters use
sequential batches when they carry the hidden state across batches.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from d2ljax.data import hub

__all__ = [
    "Vocab",
    "corpus_stats",
    "load_corpus_timemachine",
    "load_timemachine_lm",
    "ngram_freqs",
    "preprocess_timemachine",
    "read_timemachine",
    "seq_data_iter_random",
    "seq_data_iter_sequential",
    "tokenize",
]

_TOKEN_KINDS = ("char", "word")


# ----------------------------------------------------------------------------------------------
# Reading and tokenizing (§9.2.1-§9.2.2)


def read_timemachine(data_dir: str | os.PathLike | None = None) -> str:
    """The raw text of *The Time Machine* (hub entry ``timemachine``, 178979 bytes).

    The file is searched locally first (``data_dir``, ``$D2LJAX_DATA``, the cache,
    ``$D2LJAX_DATA_PATH``), SHA-1 checked, and downloaded when missing and not offline; otherwise
    :class:`d2ljax.data.hub.DataNotFoundError` says where it looked and how to get the file.
    """
    path = hub.download("timemachine", data_dir=data_dir)
    return path.read_text(encoding="utf-8")


def preprocess_timemachine(text: str) -> str:
    """Replaces every run of non-letters by one space and lowercases (book §9.2.1)."""
    return re.sub("[^A-Za-z]+", " ", text).lower()


def _check_token_kind(token: str) -> None:
    if token not in _TOKEN_KINDS:
        raise ValueError(f"token must be 'char' or 'word', got {token!r}")


def tokenize(text_or_lines: str | Iterable[str], token: str = "char") -> list:
    """Splits text into tokens (book §9.2.2).

    A string gives one flat list: its characters (``token="char"``, the 1.0 edition's
    ``list(text)``) or its whitespace-separated words (``token="word"``, ``text.split()``).
    A list (or other iterable) of lines gives one token list per line, as the 2nd edition's
    ``tokenize(lines, token)`` does: ``[list(line) ...]`` or ``[line.split() ...]``.
    """
    _check_token_kind(token)
    split = list if token == "char" else str.split
    if isinstance(text_or_lines, str):
        return split(text_or_lines)
    lines = list(text_or_lines)
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            raise TypeError(
                f"tokenize takes a string or an iterable of strings; line {i} is "
                f"{type(line).__name__}"
            )
    return [split(line) for line in lines]


# ----------------------------------------------------------------------------------------------
# Vocabulary (§9.2.3)


def _flatten(tokens: Iterable) -> list:
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], list):
        return [t for line in tokens for t in line]
    return tokens


class Vocab:
    """A vocabulary for text (book §9.2.3, 1.0 edition).

    ``idx_to_token`` is ``sorted(set(['<unk>'] + reserved_tokens + frequent))`` where ``frequent``
    holds every token seen at least ``min_freq`` times; a list of token lists (lines) is flattened
    first. ``token_freqs`` lists ``(token, count)`` by decreasing count (ties in order of first
    appearance). Unknown tokens map to :attr:`unk`.

    ``vocab[token]`` is an index; ``vocab[list_or_tuple]`` a list of indices (nested lists map
    recursively). ``vocab.to_tokens(i)`` is a token; ``vocab.to_tokens(sequence_or_array)`` a list.
    """

    def __init__(
        self, tokens: Iterable = (), min_freq: int = 0, reserved_tokens: Sequence[str] = ()
    ) -> None:
        if isinstance(reserved_tokens, str):
            raise TypeError("reserved_tokens must be a list of strings, not one string")
        flat = _flatten(tokens)
        counter = collections.Counter(flat)
        self.token_freqs: list[tuple] = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        frequent = [tok for tok, freq in self.token_freqs if freq >= min_freq]
        try:
            self.idx_to_token: list = sorted(set(["<unk>", *reserved_tokens, *frequent]))
        except TypeError as e:
            raise TypeError(f"Vocab tokens must be mutually comparable (e.g. all str): {e}") from e
        self.token_to_idx: dict = {tok: idx for idx, tok in enumerate(self.idx_to_token)}
        self.min_freq = min_freq
        self.reserved_tokens = tuple(reserved_tokens)

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    def __contains__(self, token) -> bool:
        return token in self.token_to_idx

    def to_tokens(self, indices):
        """Token(s) of index / indices; a sequence or array gives a (nested) list."""
        if isinstance(indices, np.ndarray) and indices.ndim == 0:
            indices = indices.item()
        if hasattr(indices, "__len__") and not isinstance(indices, str):
            return [self.to_tokens(i) for i in indices]
        index = int(indices)
        if not 0 <= index < len(self.idx_to_token):
            raise IndexError(f"index {index} is out of range for a vocabulary of size {len(self)}")
        return self.idx_to_token[index]

    @property
    def unk(self) -> int:
        """Index of the unknown token ``'<unk>'``."""
        return self.token_to_idx["<unk>"]

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.idx_to_token[:8])
        more = ", ..." if len(self) > 8 else ""
        return f"Vocab(size={len(self)}, tokens=[{head}{more}])"


# ----------------------------------------------------------------------------------------------
# Corpus and statistics (§9.2.4-§9.2.5)


def _corpus_and_vocab(text: str, token: str, vocab: Vocab | None) -> tuple[np.ndarray, Vocab]:
    tokens = tokenize(preprocess_timemachine(text), token)
    if vocab is None:
        vocab = Vocab(tokens)
    corpus = np.fromiter((vocab[t] for t in tokens), dtype=np.int32, count=len(tokens))
    return corpus, vocab


def load_corpus_timemachine(
    token: str = "char",
    max_tokens: int = -1,
    data_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, Vocab]:
    """The Time Machine as token indices and its vocabulary (book §9.2.4).

    The whole preprocessed text is tokenized (characters by default: 173428 tokens, 28-entry
    vocabulary), the vocabulary is built on all of it, and the first ``max_tokens`` indices are
    kept when ``max_tokens > 0``. Returns ``(corpus int32 [n], vocab)``.
    """
    _check_token_kind(token)
    corpus, vocab = _corpus_and_vocab(read_timemachine(data_dir), token, None)
    if max_tokens > 0:
        corpus = corpus[:max_tokens]
    return corpus, vocab


def ngram_freqs(tokens: Sequence, n: int) -> list[tuple[tuple, int]]:
    """``(n-gram, count)`` pairs of consecutive tokens, most frequent first (book §9.2.5).

    Ties keep the order of first appearance (as ``Vocab(...).token_freqs`` does in the book).
    Each n-gram is a tuple of ``n`` tokens, also for ``n=1``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    tokens = list(tokens)
    grams = zip(*(tokens[i:] for i in range(n)), strict=False)
    counter = collections.Counter(grams)
    return sorted(counter.items(), key=lambda x: x[1], reverse=True)


def corpus_stats(tokens: Sequence, max_n: int = 3, top: int = 10) -> dict:
    """Summary numbers for a token list: sizes and the ``top`` most frequent n-grams, n <= max_n.

    Returns ``{"num_tokens", "num_unique": {n: count}, "top": {n: [(ngram, count), ...]},
    "freqs": {n: np.ndarray of all counts, decreasing}}``; ``freqs`` is what the Zipf log-log plot
    of §9.2.5 draws.
    """
    tokens = list(tokens)
    out: dict = {"num_tokens": len(tokens), "num_unique": {}, "top": {}, "freqs": {}}
    for n in range(1, max_n + 1):
        f = ngram_freqs(tokens, n)
        out["num_unique"][n] = len(f)
        out["top"][n] = f[:top]
        out["freqs"][n] = np.array([c for _, c in f], dtype=np.int64)
    return out


# ----------------------------------------------------------------------------------------------
# Partitioning iterators (2nd edition §8.3.4)


def _check_iter_args(corpus, batch_size: int, num_steps: int) -> np.ndarray:
    corpus = np.asarray(corpus)
    if corpus.ndim != 1:
        raise ValueError(f"corpus must be one-dimensional, got shape {corpus.shape}")
    for name, value in (("batch_size", batch_size), ("num_steps", num_steps)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return corpus.astype(np.int32, copy=False)


def seq_data_iter_random(
    corpus, batch_size: int, num_steps: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Minibatches of random subsequences (random sampling, 2nd edition §8.3.4).

    The corpus is cut at a random offset in ``[0, num_steps - 1]`` into ``num_subseqs =
    (len - offset - 1) // num_steps`` adjacent, non-overlapping subsequences; their start positions
    are shuffled and taken ``batch_size`` at a time (a last incomplete batch is dropped). Each start
    appears once per pass. Yields int32 ``(X, Y)``, both ``(batch_size, num_steps)``, ``Y`` being
    ``X`` shifted one token to the right. ``seed`` drives ``np.random.default_rng``.
    """
    corpus = _check_iter_args(corpus, batch_size, num_steps)
    rng = np.random.default_rng(seed)
    corpus = corpus[int(rng.integers(0, num_steps)) :]
    num_subseqs = (len(corpus) - 1) // num_steps
    starts = np.arange(0, num_subseqs * num_steps, num_steps)
    rng.shuffle(starts)
    offsets = np.arange(num_steps)
    for i in range(num_subseqs // batch_size):
        idx = starts[i * batch_size : (i + 1) * batch_size, None] + offsets
        yield corpus[idx], corpus[idx + 1]


def seq_data_iter_sequential(
    corpus, batch_size: int, num_steps: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Minibatches whose rows continue across batches (sequential partitioning, 2nd ed. §8.3.4).

    After a random offset in ``[0, num_steps]``, ``num_tokens = (len - offset - 1) // batch_size *
    batch_size`` tokens are reshaped into ``batch_size`` rows; batch ``i`` is columns ``[i *
    num_steps, (i + 1) * num_steps)``, so row ``r`` of batch ``i + 1`` continues row ``r`` of
    batch ``i`` in the corpus (the hidden state can be carried over). Yields int32 ``(X, Y)``,
    ``(batch_size, num_steps)``, ``Y`` = ``X`` shifted by one token.
    """
    corpus = _check_iter_args(corpus, batch_size, num_steps)
    rng = np.random.default_rng(seed)
    offset = int(rng.integers(0, num_steps + 1))
    num_tokens = max(len(corpus) - offset - 1, 0) // batch_size * batch_size
    xs = corpus[offset : offset + num_tokens].reshape(batch_size, -1)
    ys = corpus[offset + 1 : offset + 1 + num_tokens].reshape(batch_size, -1)
    for i in range(xs.shape[1] // num_steps):
        cols = slice(i * num_steps, (i + 1) * num_steps)
        yield xs[:, cols], ys[:, cols]


# ----------------------------------------------------------------------------------------------
# The 1.0 edition's TimeMachine data (§9.3.4)


def load_timemachine_lm(
    num_steps: int = 32,
    num_train: int = 10000,
    num_val: int = 5000,
    token: str = "char",
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """Language-model examples from *The Time Machine* (book §9.3.4, ``d2l.TimeMachine``).

    Example ``i`` is ``x = corpus[i : i + num_steps]``, ``y = corpus[i + 1 : i + num_steps + 1]``
    for every ``i`` in ``[0, len(corpus) - num_steps)``; the first ``num_train`` examples are the
    training split, the next ``num_val`` the validation split (the book's defaults: 10000 and
    5000 of the 173396 windows of the 173428-character corpus when ``num_steps=32``).

    Returns ``{"train": {"x", "y"}, "val": {"x", "y"}, "_info": {"vocab_size", "vocab"}}`` with
    int32 ``(N, num_steps)`` arrays.
    """
    _check_token_kind(token)
    for name, value, low in (("num_steps", num_steps, 1), ("num_train", num_train, 1),
                             ("num_val", num_val, 0)):  # fmt: skip
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    corpus, vocab = load_corpus_timemachine(token=token, data_dir=data_dir)
    num_windows = len(corpus) - num_steps
    if num_train + num_val > num_windows:
        raise ValueError(
            f"the Time Machine corpus has {len(corpus)} {token} tokens, i.e. {max(num_windows, 0)} "
            f"windows of num_steps={num_steps} (+1 for the label); num_train + num_val = "
            f"{num_train + num_val} is too many"
        )
    windows = np.lib.stride_tricks.sliding_window_view(corpus, num_steps + 1)
    windows = np.ascontiguousarray(windows[: num_train + num_val])
    x, y = windows[:, :-1], windows[:, 1:]
    return {
        "train": {"x": x[:num_train].copy(), "y": y[:num_train].copy()},
        "val": {"x": x[num_train:].copy(), "y": y[num_train:].copy()},
        "_info": {"vocab_size": len(vocab), "vocab": vocab},
    }
