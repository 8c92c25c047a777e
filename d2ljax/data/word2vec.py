"""The dataset for pretraining word embeddings (book §15.3): PTB centre words, their contexts and
noise words, as fixed-shape arrays.

The book's pipeline (1.0 edition), step by step, each step vectorised over the whole corpus:

* :func:`read_ptb`: the PTB training file (hub entry ``ptb``) as token lists, one per line
  (42,069 "sentences": the file's 42,068 lines and the empty string after its last newline);
* :class:`~d2ljax.data.text.Vocab` with ``min_freq=10``: 6,719 tokens;
* :func:`subsample`: tokens that map to ``<unk>`` are dropped (PTB writes rare words as
  ``<unk>``), then each token ``w`` is kept with probability ``sqrt(t / f(w))``, ``f(w)`` its
  share of the remaining tokens, ``t = 1e-4`` ("the": 50,770 -> about 2,000);
* :func:`centers_and_contexts`: every token of a line of at least 2 tokens is a centre; its
  window size is drawn uniformly from ``1..max_window_size`` and its contexts are the tokens at
  most that far away in the same line (left to right);
* :func:`get_negatives`: ``K`` noise words per context word, drawn with weights
  ``count(w) ** 0.75`` (the counts before subsampling), never one of the centre's contexts;
* :func:`word2vec_arrays`: each centre's row ``contexts + negatives + padding`` with its
  ``masks`` (1 on contexts and negatives) and ``labels`` (1 on contexts), padded to one width
  ``2 * max_window_size * (1 + K)`` for every example (the book pads each batch to its longest
  row, which is that width in practice: 60 for the book's settings), so one compiled step
  serves every batch. :func:`batchify` is the book's per-batch version, for small examples.

Randomness comes from one ``np.random.default_rng(seed)``: the data is a function of the seed.
Noise words are drawn from every token of the vocabulary with a nonzero count (``<unk>`` has
none); the book's code leaves out index 0, which was ``<unk>`` in its 2nd edition.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from d2ljax.data import hub
from d2ljax.data.text import Vocab

__all__ = [
    "batchify",
    "centers_and_contexts",
    "encode_lines",
    "get_negatives",
    "load_data_ptb",
    "load_ptb_word2vec",
    "noise_weights",
    "read_ptb",
    "subsample",
    "word2vec_arrays",
]


def read_ptb(split: str = "train", data_dir: str | os.PathLike | None = None) -> list[list[str]]:
    """The PTB file ``ptb.<split>.txt`` (``train``, ``valid`` or ``test``) as one token list per
    line, exactly as the book splits it (``raw_text.split('\\n')``, so the train file gives
    42,069 lists, the last one empty)."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    folder = hub.extract("ptb", data_dir=data_dir)
    path = hub.find_file(folder, f"ptb.{split}.txt")
    raw_text = path.read_text(encoding="utf-8")
    return [line.split() for line in raw_text.split("\n")]


def encode_lines(lines: Sequence[Sequence[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Token lists -> ``(ids int32 [N], lengths int64 [S])``: every line's token indices, one
    after the other, and each line's length."""
    lookup = vocab.token_to_idx
    unk = vocab.unk
    lengths = np.fromiter((len(line) for line in lines), dtype=np.int64, count=len(lines))
    total = int(lengths.sum())
    ids = np.fromiter(
        (lookup.get(t, unk) for line in lines for t in line), dtype=np.int32, count=total
    )
    return ids, lengths


def _line_index(lengths: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(lengths)), lengths)


def subsample(
    ids: np.ndarray,
    lengths: np.ndarray,
    vocab_size: int,
    unk: int,
    rng: np.random.Generator,
    t: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subsampling of frequent words (book §15.3.2).

    Tokens equal to ``unk`` are removed; of the rest, token ``w`` is kept with probability
    ``min(1, sqrt(t / f(w)))`` where ``f(w) = count(w) / number of remaining tokens`` (the book
    draws ``uniform(0, 1) < sqrt(1e-4 / counter[w] * num_tokens)``). Returns ``(ids, lengths,
    counts)``: the kept tokens with the new line lengths (lines may become empty), and
    ``counts int64 [vocab_size]``, every token's count *before* subsampling (the book's
    ``counter``; 0 for ``unk``).
    """
    ids = np.asarray(ids)
    lengths = np.asarray(lengths)
    line = _line_index(lengths)
    known = ids != unk
    ids, line = ids[known], line[known]
    counts = np.bincount(ids, minlength=vocab_size).astype(np.int64)
    num_tokens = len(ids)
    keep = rng.random(num_tokens) < np.sqrt(t / counts[ids] * num_tokens)
    ids, line = ids[keep], line[keep]
    return ids.astype(np.int32), np.bincount(line, minlength=len(lengths)), counts


def centers_and_contexts(
    ids: np.ndarray, lengths: np.ndarray, max_window_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre words and their context words (book §15.3.3).

    Every token of a line with at least 2 tokens is a centre; its window size ``w`` is drawn
    uniformly from ``1..max_window_size`` and its contexts are the tokens of its line at
    distance ``1..w``, in their order in the line. Returns ``(centers int32 [n], contexts int32
    [n, 2 * max_window_size], num_contexts int32 [n])``; row ``i`` of ``contexts`` holds its
    ``num_contexts[i]`` contexts first, then zeros.
    """
    if int(max_window_size) != max_window_size or max_window_size < 1:
        raise ValueError(f"max_window_size must be a positive integer, got {max_window_size!r}")
    ids = np.asarray(ids, dtype=np.int32)
    lengths = np.asarray(lengths, dtype=np.int64)
    line = _line_index(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    long_enough = lengths[line] >= 2
    pos = np.arange(len(ids))[long_enough]
    line = line[long_enough]
    window = rng.integers(1, max_window_size + 1, size=len(pos))
    lo, hi = starts[line], starts[line] + lengths[line]  # the line is [lo, hi)
    offsets = np.concatenate(
        [np.arange(-max_window_size, 0), np.arange(1, max_window_size + 1)]
    )
    where = pos[:, None] + offsets[None, :]
    valid = (
        (np.abs(offsets)[None, :] <= window[:, None])
        & (where >= lo[:, None])
        & (where < hi[:, None])
    )
    # the valid contexts first, in line order (a stable sort keeps their order)
    order = np.argsort(~valid, axis=1, kind="stable")
    where = np.take_along_axis(where, order, axis=1)
    valid = np.take_along_axis(valid, order, axis=1)
    contexts = np.where(valid, ids[np.clip(where, 0, len(ids) - 1)], 0).astype(np.int32)
    return ids[pos], contexts, valid.sum(axis=1).astype(np.int32)


def noise_weights(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """The noise-word distribution (book §15.3.4): ``count(w) ** power``, normalised."""
    w = np.asarray(counts, dtype=np.float64) ** power
    return w / w.sum()


def get_negatives(
    contexts: np.ndarray,
    num_contexts: np.ndarray,
    weights: np.ndarray,
    num_noise_words: int,
    rng: np.random.Generator,
    *,
    chunk: int = 65536,
) -> np.ndarray:
    """Negative sampling (book §15.3.4): ``num_noise_words`` (K) noise words per context word.

    Each noise word is drawn from ``weights`` (a distribution over the vocabulary, see
    :func:`noise_weights`) and drawn again while it is one of its centre's contexts, as the
    book's ``get_negatives`` does. Returns ``int32 [n, K * contexts.shape[1]]``: row ``i`` holds
    ``K * num_contexts[i]`` noise words, then zeros.
    """
    if int(num_noise_words) != num_noise_words or num_noise_words < 1:
        raise ValueError(f"num_noise_words must be a positive integer, got {num_noise_words!r}")
    contexts = np.asarray(contexts)
    num_contexts = np.asarray(num_contexts)
    n, width = contexts.shape
    cdf = np.cumsum(weights, dtype=np.float64)
    cdf /= cdf[-1]

    def draw(size):
        return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)

    k_width = num_noise_words * width
    out = np.zeros((n, k_width), dtype=np.int32)
    ctx_valid = np.arange(width)[None, :] < num_contexts[:, None]
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        ctx = np.where(ctx_valid[a:b], contexts[a:b], -1)  # -1 never equals a token
        need = np.arange(k_width)[None, :] < (num_noise_words * num_contexts[a:b])[:, None]
        neg = np.where(need, draw((b - a, k_width)), 0).astype(np.int32)
        bad = need & (neg[:, :, None] == ctx[:, None, :]).any(axis=2)
        while bad.any():
            rows, cols = np.nonzero(bad)
            neg[rows, cols] = draw(len(rows))
            bad[rows, cols] = (neg[rows, cols][:, None] == ctx[rows]).any(axis=1)
        out[a:b] = neg
    return out


def word2vec_arrays(
    centers: np.ndarray, contexts: np.ndarray, num_contexts: np.ndarray, negatives: np.ndarray
) -> dict[str, np.ndarray]:
    """The book's ``batchify`` for the whole dataset at once, at one fixed width.

    Returns ``{"centers": int32 [n, 1], "contexts_negatives": int32 [n, L], "masks": uint8
    [n, L], "labels": uint8 [n, L]}`` with ``L = contexts.shape[1] + negatives.shape[1]``:
    row ``i`` is its ``c = num_contexts[i]`` contexts, its ``K * c`` noise words, then zeros;
    ``masks`` is 1 on the first ``(1 + K) * c`` entries, ``labels`` on the first ``c``.
    """
    n, width = contexts.shape
    k = negatives.shape[1] // width
    size = width + negatives.shape[1]
    j = np.arange(size)[None, :]
    c = np.asarray(num_contexts)[:, None].astype(np.int64)
    ctx = np.take_along_axis(
        contexts, np.broadcast_to(np.minimum(j, width - 1), (n, size)), axis=1
    )
    neg = np.take_along_axis(
        negatives, np.clip(j - c, 0, negatives.shape[1] - 1), axis=1
    )
    is_ctx = j < c
    is_real = j < c * (1 + k)
    row = np.where(is_ctx, ctx, np.where(is_real, neg, 0)).astype(np.int32)
    return {
        "centers": np.asarray(centers, dtype=np.int32)[:, None],
        "contexts_negatives": row,
        "masks": is_real.astype(np.uint8),
        "labels": is_ctx.astype(np.uint8),
    }


def batchify(data: Sequence[tuple[int, Sequence[int], Sequence[int]]]) -> dict[str, np.ndarray]:
    """The book's ``batchify`` (§15.3.5): ``(center, contexts, negatives)`` examples -> one batch
    padded to its longest ``contexts + negatives`` (same keys as :func:`word2vec_arrays`)."""
    max_len = max(len(c) + len(n) for _, c, n in data)
    centers, contexts_negatives, masks, labels = [], [], [], []
    for center, context, negative in data:
        cur_len = len(context) + len(negative)
        centers.append([center])
        contexts_negatives.append([*context, *negative] + [0] * (max_len - cur_len))
        masks.append([1] * cur_len + [0] * (max_len - cur_len))
        labels.append([1] * len(context) + [0] * (max_len - len(context)))
    return {
        "centers": np.asarray(centers, dtype=np.int32),
        "contexts_negatives": np.asarray(contexts_negatives, dtype=np.int32),
        "masks": np.asarray(masks, dtype=np.uint8),
        "labels": np.asarray(labels, dtype=np.uint8),
    }


def load_ptb_word2vec(
    max_window_size: int = 5,
    num_noise_words: int = 5,
    min_freq: int = 10,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """The book's ``load_data_ptb`` (§15.3.5) as arrays: ``{"train": word2vec_arrays(...),
    "_info": {"vocab_size", "vocab", "counts"}}`` (``counts``: each token's count before
    subsampling). One example per centre word; the loader shuffles them every epoch."""
    rng = np.random.default_rng(seed)
    sentences = read_ptb("train", data_dir=data_dir)
    vocab = Vocab(sentences, min_freq=min_freq)
    ids, lengths = encode_lines(sentences, vocab)
    ids, lengths, counts = subsample(ids, lengths, len(vocab), vocab.unk, rng)
    centers, contexts, num_contexts = centers_and_contexts(ids, lengths, max_window_size, rng)
    negatives = get_negatives(contexts, num_contexts, noise_weights(counts), num_noise_words, rng)
    return {
        "train": word2vec_arrays(centers, contexts, num_contexts, negatives),
        "_info": {"vocab_size": len(vocab), "vocab": vocab, "counts": counts},
    }


def load_data_ptb(
    batch_size: int = 512,
    max_window_size: int = 5,
    num_noise_words: int = 5,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
):
    """The book's ``load_data_ptb(batch_size, max_window_size, num_noise_words)``: a shuffling
    :class:`~d2ljax.data.ArrayLoader` over :func:`load_ptb_word2vec`'s examples, and the
    vocabulary."""
    from d2ljax.data.pipeline import ArrayLoader

    data = load_ptb_word2vec(max_window_size, num_noise_words, seed=seed, data_dir=data_dir)
    loader = ArrayLoader(data["train"], batch_size, shuffle=True, seed=seed)
    return loader, data["_info"]["vocab"]
