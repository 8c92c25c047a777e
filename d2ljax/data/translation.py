"""The English-French machine-translation data (book §10.5, the 1.0 edition's ``MTFraEng``).

The Tatoeba sentence pairs (manythings.org) come from the hub entry ``fra-eng``: a zip whose
``fra.txt`` holds one ``English<TAB>French`` pair per line. Two archives are accepted (both hold
the same ``fra.txt``): the hub's, with ``fra-eng/fra.txt``, and the one the d2l authors once
committed, with ``fra.txt`` at the zip root; :func:`read_fra_eng` finds the file in either layout.

Pipeline, as in the book:

* :func:`preprocess_nmt`: non-breaking spaces (``\\u202f``, ``\\xa0``) become spaces, text is
  lowercased, and a space is inserted before ``, . ! ?`` when the previous character is not a
  space;
* :func:`tokenize_nmt`: each tab-separated pair becomes two token lists (split on spaces, empty
  tokens dropped), each ending with ``'<eos>'``;
* :func:`load_fra_eng`: the book's ``_build_arrays``. Every sequence is **truncated first, then
  padded** to ``num_steps`` (``seq[:num_steps]`` if longer, else ``seq + ['<pad>'] * ...``), so a
  source or target longer than ``num_steps`` loses its ``'<eos>'``. Targets then get ``'<bos>'``
  in front (length ``num_steps + 1``); the decoder input is ``tgt[:, :-1]`` and the label
  ``tgt[:, 1:]``. Each vocabulary is built (``min_freq=2``) on the truncated/padded sequences of
  all examples read, so a word that only occurs past ``num_steps`` is not counted. Valid lengths
  count the non-``'<pad>'`` tokens. With the defaults (``num_steps=9``, 512 + 128 examples) the
  source vocabulary has 194 tokens and the target vocabulary 214 (the book's code, run on the
  same fra.txt, gives the same vocabularies, checked token by token).

The book passes no reserved tokens: ``'<pad>'``, ``'<eos>'`` (and ``'<bos>'`` on the target side)
enter the vocabularies because they occur often. Here they are also passed as reserved tokens, so
they exist even in tiny data; this changes nothing on the book's data. As in the book, the source
vocabulary has no ``'<bos>'``.

One quirk of the book is kept on purpose so the vocabularies match it: ``_tokenize(text,
max_examples)`` stops only when the line index *exceeds* ``max_examples``, i.e. it reads
``num_train + num_val + 1`` lines, and the vocabularies are built on all of them. The splits
here are exactly ``num_train`` and ``num_val`` examples (the book's validation loader takes
everything after ``num_train``, one example more).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from d2ljax.data import hub
from d2ljax.data.text import Vocab

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "build_arrays",
    "build_src",
    "load_fra_eng",
    "preprocess_nmt",
    "read_fra_eng",
    "tokenize_nmt",
    "truncate_pad",
]

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
# Tokens every vocabulary holds even in tiny data (the book's data always has them twice or more).
_SRC_RESERVED = (PAD, EOS)
_TGT_RESERVED = (PAD, BOS, EOS)


def read_fra_eng(data_dir: str | os.PathLike | None = None) -> str:
    """The content of ``fra.txt`` (hub entry ``fra-eng``, extracted once into the cache).

    Raises :class:`d2ljax.data.hub.DataNotFoundError` (where it looked, how to get the file) when
    no verified archive is found, and :class:`d2ljax.data.hub.CorruptFileError` when the archive
    holds no ``fra.txt``.
    """
    root = hub.extract("fra-eng", data_dir=data_dir)
    try:
        path = hub.find_file(root, "fra.txt")
    except FileNotFoundError as e:
        raise hub.CorruptFileError(
            f"the fra-eng archive was extracted to {root} but holds no fra.txt; delete that "
            "folder and the archive to fetch a fresh copy"
        ) from e
    return path.read_text(encoding="utf-8")


_PUNCT_NO_SPACE = re.compile(r"(?<=[^ ])([,.!?])")


def preprocess_nmt(text: str) -> str:
    """The book's ``MTFraEng._preprocess`` (§10.5.1).

    Replaces ``\\u202f`` and ``\\xa0`` by spaces, lowercases, and inserts a space before each of
    ``, . ! ?`` whose preceding character is not a space (so ``"Go."`` gives ``"go ."``).
    """
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    lower = text.lower()
    if len(lower) == len(text):
        return _PUNCT_NO_SPACE.sub(r" \1", lower)
    # Lowercasing changed the length (rare characters such as 'İ'): the book compares each
    # lowercased character with text[i - 1] of the un-lowercased text; do exactly that.
    out = [
        " " + ch if i > 0 and ch in ",.!?" and text[i - 1] != " " else ch
        for i, ch in enumerate(lower)
    ]
    return "".join(out)


def _lines(text: str, max_examples: int | None) -> list[str]:
    if max_examples:
        # The book breaks when i > max_examples: lines 0..max_examples are read.
        return text.split("\n", max_examples + 1)[: max_examples + 1]
    return text.split("\n")


def tokenize_nmt(
    text: str, max_examples: int | None = None
) -> tuple[list[list[str]], list[list[str]]]:
    """The book's ``MTFraEng._tokenize`` (§10.5.2): ``(src, tgt)`` lists of token lists.

    Each line with exactly one tab is a pair; both sides are split on single spaces, empty tokens
    are dropped and ``'<eos>'`` is appended. Other lines are skipped. With ``max_examples``
    (as in the book) the lines with index ``0 .. max_examples`` are read, which is
    ``max_examples + 1`` lines; ``None`` or ``0`` reads all.
    """
    src, tgt = [], []
    for line in _lines(text, max_examples):
        parts = line.split("\t")
        if len(parts) == 2:
            src.append([t for t in f"{parts[0]} {EOS}".split(" ") if t])
            tgt.append([t for t in f"{parts[1]} {EOS}".split(" ") if t])
    return src, tgt


def truncate_pad(line: Sequence, num_steps: int, pad) -> list:
    """``line[:num_steps]`` if longer, else ``line`` padded with ``pad`` to ``num_steps``."""
    line = list(line)
    if len(line) > num_steps:
        return line[:num_steps]
    return line + [pad] * (num_steps - len(line))


def _build_array(
    sentences: list[list[str]], num_steps: int, vocab: Vocab | None, is_tgt: bool, min_freq: int = 2
) -> tuple[np.ndarray, Vocab, np.ndarray]:
    sentences = [truncate_pad(s, num_steps, PAD) for s in sentences]
    if is_tgt:
        sentences = [[BOS, *s] for s in sentences]
    if vocab is None:
        reserved = _TGT_RESERVED if is_tgt else _SRC_RESERVED
        vocab = Vocab(sentences, min_freq=min_freq, reserved_tokens=reserved)
    width = num_steps + 1 if is_tgt else num_steps
    array = np.array([vocab[s] for s in sentences], dtype=np.int32).reshape(-1, width)
    valid_len = (array != vocab[PAD]).sum(axis=1).astype(np.int32)
    return array, vocab, valid_len


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_sentences(sentences: Sequence[str], what: str) -> None:
    if isinstance(sentences, str):
        raise TypeError(f"{what} must be a list of sentences, not one string")
    for s in sentences:
        if not isinstance(s, str):
            raise TypeError(f"{what} must be strings, got {type(s).__name__}")
        if "\t" in s or "\n" in s:
            raise ValueError(f"{what} must not contain tabs or newlines: {s!r}")


def _arrays(src, tgt, num_steps, src_vocab=None, tgt_vocab=None, min_freq=2):
    x, src_vocab, x_len = _build_array(src, num_steps, src_vocab, False, min_freq)
    t, tgt_vocab, _ = _build_array(tgt, num_steps, tgt_vocab, True, min_freq)
    y = np.ascontiguousarray(t[:, 1:])
    split = {
        "x": x,
        "x_len": x_len,
        "dec_x": np.ascontiguousarray(t[:, :-1]),
        "y": y,
        "y_len": (y != tgt_vocab[PAD]).sum(axis=1).astype(np.int32),
    }
    return split, src_vocab, tgt_vocab


def build_src(
    sentences: Sequence[str], src_vocab: Vocab, num_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Encodes new source (English) sentences exactly like the training sources.

    Each raw sentence (e.g. ``"Go."`` or ``"go ."``) is preprocessed (:func:`preprocess_nmt`),
    split, given ``'<eos>'``, truncated/padded to ``num_steps`` and mapped with ``src_vocab``
    (unknown words become ``'<unk>'``). Returns ``(x int32 (N, num_steps), x_len int32 (N,))``.
    """
    _check_sentences(sentences, "sentences")
    _check_positive(num_steps=num_steps)
    src = [[t for t in f"{preprocess_nmt(s)} {EOS}".split(" ") if t] for s in sentences]
    x, _, x_len = _build_array(src, num_steps, src_vocab, is_tgt=False)
    return x, x_len


def build_arrays(
    src_sentences: Sequence[str],
    tgt_sentences: Sequence[str],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    num_steps: int,
) -> dict[str, np.ndarray]:
    """The book's ``MTFraEng.build``: a split (``x, x_len, dec_x, y, y_len``) for new pairs.

    Sentences are raw text, preprocessed and tokenized like ``fra.txt``; the given vocabularies
    are used (unknown words become ``'<unk>'``).
    """
    _check_sentences(src_sentences, "src_sentences")
    _check_sentences(tgt_sentences, "tgt_sentences")
    if len(src_sentences) != len(tgt_sentences):
        raise ValueError(
            f"got {len(src_sentences)} source and {len(tgt_sentences)} target sentences"
        )
    _check_positive(num_steps=num_steps)
    raw = "\n".join(f"{s}\t{t}" for s, t in zip(src_sentences, tgt_sentences, strict=True))
    src, tgt = tokenize_nmt(preprocess_nmt(raw))
    split, _, _ = _arrays(src, tgt, num_steps, src_vocab, tgt_vocab)
    return split


def load_fra_eng(
    num_steps: int = 9,
    num_train: int = 512,
    num_val: int = 128,
    min_freq: int = 2,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """English-to-French arrays of the book's ``MTFraEng`` (§10.5.4).

    Returns ``{"train": split, "val": split, "_info": info}``; a split holds int32 arrays
    ``x`` (N, num_steps) source ids, ``x_len`` (N,) non-pad source tokens, ``dec_x``
    (N, num_steps) decoder input (``<bos>`` then the target shifted right), ``y`` (N, num_steps)
    target ids, ``y_len`` (N,) non-pad target tokens; ``info`` holds ``src_vocab``,
    ``tgt_vocab`` (:class:`~d2ljax.data.text.Vocab`), their sizes ``src_vocab_size`` /
    ``tgt_vocab_size`` and the target vocabulary's ``bos``, ``eos`` and ``pad`` indices.
    Train is the first ``num_train`` pairs of ``fra.txt``, val the next ``num_val``. See the module
    docstring for truncation, padding and which examples the vocabularies are built on.
    """
    _check_positive(num_steps=num_steps, num_train=num_train, min_freq=min_freq)
    if int(num_val) != num_val or num_val < 0:
        raise ValueError(f"num_val must be a non-negative integer, got {num_val!r}")
    total = num_train + num_val
    text = read_fra_eng(data_dir)
    # Preprocessing only looks at the previous character, so preprocessing the lines that are
    # read gives exactly what preprocessing the whole 11.7 MB file would (and is ~100x faster).
    lines = _lines(text, total)
    src, tgt = tokenize_nmt(preprocess_nmt("\n".join(lines)), total)
    if len(src) < total:
        raise ValueError(
            f"fra.txt holds only {len(src)} sentence pairs in its first {len(lines)} lines; "
            f"num_train + num_val = {total} is too many"
        )
    data, src_vocab, tgt_vocab = _arrays(src, tgt, num_steps, min_freq=min_freq)
    return {
        "train": {k: v[:num_train] for k, v in data.items()},
        "val": {k: v[num_train:total] for k, v in data.items()},
        "_info": {
            "src_vocab": src_vocab,
            "tgt_vocab": tgt_vocab,
            "src_vocab_size": len(src_vocab),
            "tgt_vocab_size": len(tgt_vocab),
            "bos": tgt_vocab[BOS],
            "eos": tgt_vocab[EOS],
            "pad": tgt_vocab[PAD],
        },
    }
