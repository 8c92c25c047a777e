"""SNLI reader and BERT fine-tuning inputs (§16.4, §16.7) on the real-file fixture
``snli_1.0_sample`` (the head of the real dev/test files)."""

import json

import numpy as np
import pytest

from d2ljax.data import hub, load_dataset
from d2ljax.data.snli import (
    LABELS,
    find_snli,
    load_snli_bert,
    read_snli,
    snli_bert_arrays,
    truncate_pair_of_tokens,
)
from d2ljax.data.text import Vocab
from d2ljax.data.wikitext import RESERVED_TOKENS

FIXTURE = "snli_1.0_sample"


def _raw_rows(path):
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return header, [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


def test_read_snli_matches_the_file(shared_data):
    path = find_snli("dev", folder=FIXTURE)
    assert path == shared_data / FIXTURE / "snli_1.0_dev.txt"
    _, rows = _raw_rows(path)
    premises, hypotheses, labels = read_snli("dev", folder=FIXTURE)
    gold = [r for r in rows if r["gold_label"] in LABELS]
    assert len(premises) == len(hypotheses) == len(labels) == len(gold) > 0
    assert labels == [LABELS[r["gold_label"]] for r in gold]
    # The book's cleanup of the binary parse: no parentheses, single spaces.
    assert premises[0] == "Two women are embracing while holding to go packages ."
    assert hypotheses[0] == (
        "The sisters are hugging goodbye while holding to go packages after just eating lunch ."
    )
    for s in premises + hypotheses:
        assert "(" not in s and ")" not in s and "  " not in s and s == s.strip()
    assert labels[:2] == [LABELS["neutral"], LABELS["entailment"]]


def test_unlabelled_pairs_are_dropped_and_jsonl_reads_the_same(shared_data, tmp_path):
    header, rows = _raw_rows(shared_data / FIXTURE / "snli_1.0_test.txt")
    rows[0]["gold_label"] = "-"  # no consensus: the book drops these
    (tmp_path / "snli_1.0_test.txt").write_text(
        "\n".join(["\t".join(header)] + ["\t".join(r[h] for h in header) for r in rows]) + "\n"
    )
    p, h, y = read_snli("test", folder=tmp_path)
    assert len(p) == len([r for r in rows if r["gold_label"] in LABELS]) == len(rows) - 1
    jsonl = tmp_path / "jsonl"
    jsonl.mkdir()
    (jsonl / "snli_1.0_test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_snli("test", folder=jsonl) == (p, h, y)


def test_errors_are_clear(shared_data, tmp_path, monkeypatch):
    with pytest.raises(hub.DataNotFoundError, match="snli_1.0_train"):
        read_snli("train", folder=FIXTURE)  # the fixture has no train file
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path))
    with pytest.raises(hub.DataNotFoundError, match="snli_1.0.zip"):
        read_snli("train")
    with pytest.raises(ValueError, match="split must be one of"):
        read_snli("validation", folder=FIXTURE)
    (tmp_path / "snli_1.0_dev.txt").write_text("a\tb\n1\t2\n")
    with pytest.raises(hub.CorruptFileError, match="header"):
        read_snli("dev", folder=tmp_path)


def test_truncate_pair_pops_the_longer_side():
    p, h = list("abcdef"), list("xyz")
    truncate_pair_of_tokens(p, h, max_len=8)
    assert p == list("abc") and h == list("xy")  # 5 tokens + <cls>, 2 <sep>
    p, h = list("ab"), list("xyz")
    truncate_pair_of_tokens(p, h, max_len=20)
    assert p == list("ab") and h == list("xyz")


def test_bert_arrays_layout():
    premises = ["A man sleeps .", "Two dogs run in the big green park today"]
    hypotheses = ["A person rests .", "Animals play"]
    vocab = Vocab(
        [s.lower().split() for s in premises + hypotheses], reserved_tokens=RESERVED_TOKENS
    )
    d = snli_bert_arrays(premises, hypotheses, [0, 2], vocab, max_len=10)
    assert {k: v.shape for k, v in d.items()} == {
        "tokens": (2, 10), "segments": (2, 10), "valid_len": (2,), "y": (2,)
    }  # fmt: skip
    assert all(v.dtype == np.int32 for v in d.values())
    first = vocab.to_tokens(d["tokens"][0][: d["valid_len"][0]])
    # 4 + 4 tokens > 10 - 3: on a tie the hypothesis loses its last token
    assert first == ["<cls>", "a", "man", "sleeps", ".", "<sep>", "a", "person", "rests", "<sep>"]
    assert d["valid_len"].tolist() == [10, 10]  # both truncated to max_len
    second = vocab.to_tokens(d["tokens"][1])
    assert second == ["<cls>", "two", "dogs", "run", "in", "the", "<sep>", "animals", "play"] + [
        "<sep>"
    ]
    assert d["segments"][1].tolist() == [0] * 7 + [1] * 3
    short = snli_bert_arrays(["a b"], ["c"], [1], vocab, max_len=10)
    assert short["valid_len"].tolist() == [6]
    assert (short["tokens"][0, 6:] == vocab["<pad>"]).all()
    assert short["segments"][0].tolist() == [0] * 4 + [1] * 2 + [0] * 4


def test_load_snli_bert_on_the_fixture(shared_data):
    d = load_dataset(
        "snli_bert", folder=FIXTURE, train_split="dev", val_split="test", max_len=32, min_freq=1
    )
    n_dev = len(read_snli("dev", folder=FIXTURE)[2])
    assert d["train"]["tokens"].shape == (n_dev, 32)
    assert set(d["val"]) == {"tokens", "segments", "valid_len", "y"}
    info = d["_info"]
    assert info["vocab_size"] == len(info["vocab"]) and info["pretrained"] is None
    assert "women" in info["vocab"]
    with pytest.raises(FileNotFoundError, match="not a BERT pretraining workdir"):
        load_snli_bert(folder=FIXTURE, train_split="dev", val_split="", pretrained="/nonexistent")
