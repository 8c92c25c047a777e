"""The Stanford Natural Language Inference corpus (SNLI 1.0; book 1.0 §16.4) and its BERT
fine-tuning inputs (§16.7).

:func:`read_snli` reads ``snli_1.0_<split>.txt`` (tab-separated; the header names the columns)
the way the book's ``read_snli`` does: premise and hypothesis from the *binary parse* columns
with the parentheses removed and runs of spaces collapsed, the gold label mapped to
``entailment: 0, contradiction: 1, neutral: 2``, examples without a gold label (``-``) dropped.
The ``.jsonl`` files of the same archive are read when no ``.txt`` is there.

:func:`snli_bert_arrays` builds the BERT inputs of §16.7's ``SNLIBERTDataset``: lowercased word
tokens, the pair truncated to ``max_len - 3`` tokens by popping the longer side's last token
(``_truncate_pair_of_tokens``), ``<cls> premise <sep> hypothesis <sep>`` with segments 0/1,
padded with ``<pad>`` to ``max_len``.

Files: ``folder=None`` looks for an extracted ``snli_1.0/`` in the hub search folders, then
downloads and extracts the hub entry ``"SNLI"`` (``snli_1.0.zip``). ``folder`` may name another
folder holding the files: a path, or a name looked up in the search folders (the course data's
``"snli_1.0_sample"`` is the first 9 dev/test examples, a parser fixture, not a dataset).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from d2ljax.data import hub
from d2ljax.data.wikitext import RESERVED_TOKENS, get_tokens_and_segments

__all__ = [
    "LABELS",
    "find_snli",
    "load_snli_bert",
    "read_snli",
    "snli_bert_arrays",
    "truncate_pair_of_tokens",
]

LABELS = {"entailment": 0, "contradiction": 1, "neutral": 2}
SPLITS = ("train", "dev", "test")


def _extract_text(s: str) -> str:
    s = re.sub(r"\(", "", s)
    s = re.sub(r"\)", "", s)
    s = re.sub(r"\s{2,}", " ", s)
    return s.strip()


def find_snli(
    split: str = "train",
    *,
    folder: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Path:
    """The path of ``snli_1.0_<split>.txt`` (or ``.jsonl``), ``split`` in train/dev/test."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    names = [f"snli_1.0_{split}.txt", f"snli_1.0_{split}.jsonl"]
    dirs = hub.search_dirs("SNLI", data_dir=data_dir)
    if folder is not None:
        folder = Path(folder).expanduser()
        candidates = [folder] if folder.is_absolute() else [folder, *(d / folder for d in dirs)]
    else:
        candidates = [d / "snli_1.0" for d in dirs] + [d / "snli_1.0" / "snli_1.0" for d in dirs]
    looked = []
    for d in candidates:
        for name in names:
            looked.append(d / name)
            if (d / name).is_file():
                return d / name
    if folder is not None:
        raise hub.DataNotFoundError(
            f"SNLI {split} ({' or '.join(names)}) is not in folder {str(folder)!r}. Looked for:\n"
            + "\n".join(f"  {p}" for p in looked)
        )
    try:
        root = hub.extract("SNLI", data_dir=data_dir)
        for name in names:
            try:
                return hub.find_file(root, name)
            except FileNotFoundError:
                continue
        raise FileNotFoundError(f"no {' or '.join(names)} under {root}")
    except (hub.DataNotFoundError, FileNotFoundError) as e:
        raise hub.DataNotFoundError(
            f"SNLI {split} was not found. Looked for an extracted copy at:\n"
            + "\n".join(f"  {p}" for p in looked)
            + f"\nthen for the archive:\n{e}"
        ) from None


def read_snli(
    split: str = "train",
    *,
    folder: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> tuple[list[str], list[str], list[int]]:
    """``(premises, hypotheses, labels)`` of one SNLI split (book ``read_snli``)."""
    path = find_snli(split, folder=folder, data_dir=data_dir)
    premises, hypotheses, labels = [], [], []
    with open(path, encoding="utf-8") as f:
        if path.suffix == ".jsonl":
            rows = []
            for i, line in enumerate(f):
                if line.strip():
                    try:
                        d = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise hub.CorruptFileError(f"{path}:{i + 1} is not JSON: {e}") from e
                    rows.append(
                        (d["gold_label"], d["sentence1_binary_parse"], d["sentence2_binary_parse"])
                    )
        else:
            header = f.readline().rstrip("\n").split("\t")
            try:
                cols = [
                    header.index(c)
                    for c in ("gold_label", "sentence1_binary_parse", "sentence2_binary_parse")
                ]
            except ValueError:
                raise hub.CorruptFileError(
                    f"{path} does not have SNLI's header (gold_label, sentence1_binary_parse, "
                    f"sentence2_binary_parse, ...): {header[:4]}"
                ) from None
            rows = []
            for i, line in enumerate(f):
                parts = line.rstrip("\n").split("\t")
                if len(parts) <= max(cols):
                    if not line.strip():
                        continue
                    raise hub.CorruptFileError(f"{path}:{i + 2} has {len(parts)} columns")
                rows.append(tuple(parts[c] for c in cols))
    for label, s1, s2 in rows:
        if label in LABELS:
            premises.append(_extract_text(s1))
            hypotheses.append(_extract_text(s2))
            labels.append(LABELS[label])
    return premises, hypotheses, labels


def truncate_pair_of_tokens(p_tokens: list, h_tokens: list, max_len: int) -> None:
    """Pop the last token of the longer of the two lists (the hypothesis on a tie) until they
    fit with ``<cls>`` and two ``<sep>`` in ``max_len`` (book ``_truncate_pair_of_tokens``)."""
    while len(p_tokens) + len(h_tokens) > max_len - 3:
        if len(p_tokens) > len(h_tokens):
            p_tokens.pop()
        else:
            h_tokens.pop()


def snli_bert_arrays(premises, hypotheses, labels, vocab, max_len: int = 128) -> dict:
    """BERT inputs of a list of SNLI examples (book §16.7 ``SNLIBERTDataset``):
    ``tokens``, ``segments`` ``(N, max_len)``, ``valid_len`` and ``y`` ``(N,)``, all int32."""
    from d2ljax.data.text import tokenize

    if max_len < 5:
        raise ValueError(f"max_len must be >= 5, got {max_len}")
    if not len(premises) == len(hypotheses) == len(labels):
        raise ValueError("premises, hypotheses and labels must have the same length")
    n = len(premises)
    p_all = tokenize([s.lower() for s in premises], token="word")
    h_all = tokenize([s.lower() for s in hypotheses], token="word")
    out = {
        "tokens": np.full((n, max_len), vocab["<pad>"], np.int32),
        "segments": np.zeros((n, max_len), np.int32),
        "valid_len": np.zeros((n,), np.int32),
        "y": np.asarray(labels, np.int32).reshape(n),
    }
    for i, (p, h) in enumerate(zip(p_all, h_all, strict=True)):
        truncate_pair_of_tokens(p, h, max_len)
        tokens, segments = get_tokens_and_segments(p, h)
        out["tokens"][i, : len(tokens)] = vocab[tokens]
        out["segments"][i, : len(segments)] = segments
        out["valid_len"][i] = len(tokens)
    return out


def _pretrained_vocab(workdir: str | os.PathLike):
    from d2ljax.data.wikitext import build_wiki_vocab

    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained={str(workdir)!r} is not a BERT pretraining workdir (no {path}); run "
            f"`d2ljax train bert_pretrain --workdir {workdir}` first, or pass pretrained=None "
            "to fine-tune a BERT from scratch"
        )
    cfg = json.loads(path.read_text())
    data = cfg.get("data", {})
    if data.get("name") != "wikitext2_bert":
        raise ValueError(f"{path} is not a BERT pretraining run (dataset {data.get('name')!r})")
    return build_wiki_vocab(**dict(data.get("kwargs", {})))


def load_snli_bert(
    max_len: int = 128,
    pretrained: str | os.PathLike | None = None,
    vocab=None,
    folder: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    train_split: str = "train",
    val_split: str = "test",
    min_freq: int = 5,
) -> dict:
    """SNLI as BERT fine-tuning arrays (book §16.7): ``{"train": ..., "val": ...,
    "_info": {"vocab_size", "vocab", "pretrained"}}``.

    The token ids must be the pretrained BERT's: with ``pretrained=WORKDIR`` (a ``bert_pretrain``
    run) the WikiText-2 vocabulary of that run is rebuilt from its ``config.json`` (the
    pretraining data are deterministic), and ``_info["pretrained"]`` tells
    :class:`~d2ljax.models.bert.BERTClassifier` to load that run's parameters. ``vocab`` gives a
    vocabulary directly. With neither, a vocabulary of the train split's words (``min_freq``,
    BERT's reserved tokens) is built: a BERT trained from scratch.
    ``train_split``/``val_split`` pick the files (the book: train and test).
    """
    from d2ljax.data.text import Vocab, tokenize

    train = read_snli(train_split, folder=folder, data_dir=data_dir)
    val = read_snli(val_split, folder=folder, data_dir=data_dir) if val_split else None
    if vocab is None and pretrained:
        vocab = _pretrained_vocab(pretrained)
    elif vocab is None:
        words = tokenize([s.lower() for s in train[0] + train[1]], token="word")
        vocab = Vocab(words, min_freq=min_freq, reserved_tokens=list(RESERVED_TOKENS))
    out = {"train": snli_bert_arrays(*train, vocab, max_len)}
    if val is not None:
        out["val"] = snli_bert_arrays(*val, vocab, max_len)
    out["_info"] = {
        "vocab_size": len(vocab),
        "vocab": vocab,
        "pretrained": str(pretrained) if pretrained else None,
    }
    return out
