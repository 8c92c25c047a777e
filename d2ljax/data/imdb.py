"""The IMDb review dataset for sentiment analysis (book §16.1).

:func:`read_imdb` reads the ``aclImdb`` layout (``train|test/pos|neg/*.txt``; files in sorted
order, newlines removed as the book does); :func:`load_imdb` tokenises the reviews into words,
builds the vocabulary on the training reviews (``min_freq=5``, reserved ``<pad>``; the book's
full data gives 49,346 tokens) and truncates or pads every review to ``num_steps`` (500) tokens.

Sources: ``"full"`` is the hub entry ``aclImdb`` (Maas et al. 2011, 25,000 + 25,000 reviews,
downloaded); ``"tiny"`` is ``aclImdb_tiny`` (the d2l authors' 40-review sample, 10 per split and
label, real reviews; offline in the course data), which tests the format, not the accuracy.
With ``pretrained`` (a GloVe name, see :func:`d2ljax.data.embeddings.load_glove`) the loader also
gives ``_info["embedding"]``: the pretrained vector of every vocabulary token (zero for tokens
GloVe does not know), which the book copies into its frozen embedding layer (§16.2.2).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from d2ljax.data import hub
from d2ljax.data.text import Vocab, tokenize

__all__ = ["load_imdb", "read_imdb", "truncate_pad"]

_SOURCES = {"full": ("aclImdb", "aclImdb"), "tiny": ("aclImdb_tiny", "aclImdb_tiny")}


def read_imdb(data_dir: str | os.PathLike, is_train: bool) -> tuple[list[str], list[int]]:
    """The reviews of the train or test folder under ``data_dir`` and their labels (1 for
    ``pos``, 0 for ``neg``), positive reviews first, as the book reads them."""
    data, labels = [], []
    for label in ("pos", "neg"):
        folder = Path(data_dir) / ("train" if is_train else "test") / label
        for path in sorted(folder.glob("*.txt")):
            data.append(path.read_text(encoding="utf-8").replace("\n", ""))
            labels.append(1 if label == "pos" else 0)
    if not data:
        split = "train" if is_train else "test"
        raise hub.CorruptFileError(f"no reviews under {Path(data_dir) / split}/pos|neg")
    return data, labels


def truncate_pad(line: list[int], num_steps: int, padding_token: int) -> list[int]:
    """The book's ``truncate_pad`` (§10.5): cut to ``num_steps`` or pad with ``padding_token``."""
    if len(line) > num_steps:
        return line[:num_steps]
    return line + [padding_token] * (num_steps - len(line))


def load_imdb(
    num_steps: int = 500,
    min_freq: int = 5,
    source: str = "full",
    pretrained: str | None = None,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """``{"train": {"x": int32 [N, num_steps], "y": int32 [N]}, "test": {...}, "_info":
    {"vocab_size", "vocab"[, "embedding"]}}`` (book §16.1.3 ``load_data_imdb``)."""
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {sorted(_SOURCES)}, got {source!r}")
    entry, folder = _SOURCES[source]
    root = hub.extract(entry, data_dir=data_dir)
    if (root / folder).is_dir():
        root = root / folder
    train_data, test_data = read_imdb(root, True), read_imdb(root, False)
    train_tokens = tokenize(train_data[0], token="word")
    test_tokens = tokenize(test_data[0], token="word")
    vocab = Vocab(train_tokens, min_freq=min_freq, reserved_tokens=["<pad>"])
    pad = vocab["<pad>"]

    def features(tokens):
        return np.asarray([truncate_pad(vocab[line], num_steps, pad) for line in tokens], np.int32)

    info = {"vocab_size": len(vocab), "vocab": vocab}
    if pretrained is not None:
        from d2ljax.data.embeddings import load_glove

        info["embedding"] = load_glove(pretrained, data_dir=data_dir)[vocab.idx_to_token]
    return {
        "train": {"x": features(train_tokens), "y": np.asarray(train_data[1], np.int32)},
        "test": {"x": features(test_tokens), "y": np.asarray(test_data[1], np.int32)},
        "_info": info,
    }
