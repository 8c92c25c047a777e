"""WikiText-2 BERT pretraining data (§15.9) on the real wiki.valid.tokens of the course data."""

import collections

import numpy as np
import pytest

from d2ljax.data import hub, load_dataset
from d2ljax.data.text import Vocab
from d2ljax.data.wikitext import (
    RESERVED_TOKENS,
    find_wikitext,
    get_mlm_data_from_tokens,
    get_nsp_data_from_paragraph,
    get_tokens_and_segments,
    load_bert_pretraining,
    split_paragraphs,
)

KEYS = {
    "tokens", "segments", "valid_len", "mlm_positions", "mlm_weights", "mlm_labels", "nsp_label"
}  # fmt: skip


@pytest.fixture(scope="module")
def wiki(shared_data):
    return load_bert_pretraining(max_len=64, split="valid", seed=0)


def test_shapes_dtypes_and_info(wiki):
    assert set(wiki) == {"train", "val", "_info"}
    vocab = wiki["_info"]["vocab"]
    assert wiki["_info"]["vocab_size"] == len(vocab)
    assert all(t in vocab for t in RESERVED_TOKENS + ["<unk>"])
    for split in ("train", "val"):
        d = wiki[split]
        assert set(d) == KEYS
        n = len(d["nsp_label"])
        assert n > 100
        assert d["tokens"].shape == d["segments"].shape == (n, 64)
        assert d["mlm_positions"].shape == d["mlm_labels"].shape == d["mlm_weights"].shape
        assert d["mlm_positions"].shape == (n, round(64 * 0.15))
        assert d["mlm_weights"].dtype == np.float32
        assert all(d[k].dtype == np.int32 for k in KEYS - {"mlm_weights"})
    # 10 % of the shuffled paragraphs are held out, so the val split is about a tenth.
    ratio = len(wiki["val"]["nsp_label"]) / len(wiki["train"]["nsp_label"])
    assert 0.05 < ratio < 0.2


def _originals(d):
    """The tokens before masking: the labels put back at their positions."""
    orig = d["tokens"].copy()
    rows, cols = np.nonzero(d["mlm_weights"])
    orig[rows, d["mlm_positions"][rows, cols]] = d["mlm_labels"][rows, cols]
    return orig


def test_input_representation_and_padding(wiki):
    d, vocab = wiki["train"], wiki["_info"]["vocab"]
    cls, sep, pad = vocab["<cls>"], vocab["<sep>"], vocab["<pad>"]
    orig = _originals(d)
    t = np.arange(64)[None, :]
    valid = t < d["valid_len"][:, None]
    assert (d["valid_len"] >= 5).all() and (d["valid_len"] <= 64).all()
    assert (d["tokens"][~valid] == pad).all() and (d["segments"][~valid] == 0).all()
    assert (orig[:, 0] == cls).all()
    assert (orig[np.arange(len(orig)), d["valid_len"] - 1] == sep).all()
    # exactly two <sep>; segment 0 up to and including the first, 1 after it
    assert ((orig == sep) & valid).sum(1).tolist() == [2] * len(orig)
    first_sep = np.argmax(orig == sep, axis=1)
    expected_seg = ((t > first_sep[:, None]) & valid).astype(np.int32)
    np.testing.assert_array_equal(d["segments"], expected_seg)
    assert ((orig == pad) & valid).sum() == 0


def test_masking_rules(wiki):
    d, vocab = wiki["train"], wiki["_info"]["vocab"]
    special = {vocab["<cls>"], vocab["<sep>"]}
    n_preds = d["mlm_weights"].sum(1).astype(int)
    # 15 % of each example's length (special tokens counted, as in the book), at least one
    expected = [max(1, round(v * 0.15)) for v in d["valid_len"]]
    assert n_preds.tolist() == expected
    # weights are 1 then 0; padding predictions have position 0 and label 0
    w = d["mlm_weights"]
    assert (np.diff(w, axis=1) <= 0).all()
    assert (d["mlm_positions"][w == 0] == 0).all() and (d["mlm_labels"][w == 0] == 0).all()
    orig = _originals(d)
    for i in range(len(w)):
        pos = d["mlm_positions"][i, : n_preds[i]]
        assert (np.diff(pos) > 0).all(), "positions sorted and distinct"
        assert (pos >= 1).all() and (pos < d["valid_len"][i]).all()
        assert not set(orig[i, pos].tolist()) & special, "special tokens are never predicted"
    # Overall, 15 % of the real tokens are predicted (slightly more of the non-special ones).
    rate = n_preds.sum() / d["valid_len"].sum()
    assert abs(rate - 0.15) < 0.01
    # 80 % <mask>, 10 % unchanged, 10 % random token (tens of thousands of predictions)
    rows, cols = np.nonzero(w)
    shown = d["tokens"][rows, d["mlm_positions"][rows, cols]]
    labels = d["mlm_labels"][rows, cols]
    masked = shown == vocab["<mask>"]
    kept = ~masked & (shown == labels)
    replaced = ~masked & ~kept
    assert len(shown) > 20000
    assert abs(masked.mean() - 0.8) < 0.015
    assert abs(kept.mean() - 0.1) < 0.01
    assert abs(replaced.mean() - 0.1) < 0.01
    # Tokens that were not selected are shown unchanged.
    unselected = np.ones_like(d["tokens"], bool)
    unselected[rows, d["mlm_positions"][rows, cols]] = False
    np.testing.assert_array_equal(d["tokens"][unselected], orig[unselected])


def test_nsp_labels_are_balanced(wiki):
    for split in ("train", "val"):
        assert abs(wiki[split]["nsp_label"].mean() - 0.5) < 0.04


def test_vocab_min_freq_on_train_paragraphs(wiki, shared_data):
    train, val, _ = split_paragraphs("valid", seed=0, val_fraction=0.1)
    counts = collections.Counter(t for p in train for s in p for t in s)
    vocab = wiki["_info"]["vocab"]
    frequent = {t for t, c in counts.items() if c >= 5}
    assert set(vocab.idx_to_token) == frequent | set(RESERVED_TOKENS) | {"<unk>"}
    assert vocab.idx_to_token == sorted(vocab.idx_to_token)
    assert len(val) > 0 and not {id(p) for p in val} & {id(p) for p in train}


def test_deterministic_per_seed(wiki, shared_data):
    again = load_bert_pretraining(max_len=64, split="valid", seed=0)
    for split in ("train", "val"):
        for k in KEYS:
            np.testing.assert_array_equal(again[split][k], wiki[split][k])
    other = load_bert_pretraining(max_len=64, split="valid", seed=1)
    assert not np.array_equal(other["train"]["nsp_label"][:200], wiki["train"]["nsp_label"][:200])


def test_registered_dataset_name(shared_data):
    d = load_dataset("wikitext2_bert", split="valid", max_len=32, val_fraction=0.0)
    assert set(d) == {"train", "_info"}
    assert d["train"]["tokens"].shape[1] == 32
    assert d["train"]["mlm_positions"].shape[1] == round(32 * 0.15)
    assert (d["train"]["valid_len"] <= 32).all()


def test_nsp_pairs_on_a_toy_paragraph():
    """Synthetic sentences (for the rule only): is_next pairs are consecutive sentences."""
    paragraph = [[f"s{i}", "w"] for i in range(200)]
    other = [[f"o{i}"] for i in range(5)]
    rng = np.random.default_rng(0)
    pairs = get_nsp_data_from_paragraph(paragraph, [paragraph, other], max_len=64, rng=rng)
    assert len(pairs) == 199
    for tokens, segments, is_next in pairs:
        a = tokens[1]
        b = tokens[tokens.index("<sep>") + 1]
        if is_next:
            assert int(b[1:]) == int(a[1:]) + 1 and b[0] == "s"
        assert segments == [0] * 4 + [1] * (len(tokens) - 4)
    assert 0.35 < np.mean([p[2] for p in pairs]) < 0.65
    # a pair longer than max_len is dropped
    assert get_nsp_data_from_paragraph(paragraph[:2], [paragraph], max_len=6, rng=rng) == []


def test_mlm_on_a_short_example_predicts_at_least_one_token():
    vocab = Vocab([["a", "b"]], reserved_tokens=RESERVED_TOKENS)
    tokens, _ = get_tokens_and_segments(["a"], ["b"])
    ids, positions, labels = get_mlm_data_from_tokens(tokens, vocab, np.random.default_rng(0))
    assert len(positions) == 1 and positions[0] in (1, 3)
    assert labels == [vocab[tokens[positions[0]]]]
    assert len(ids) == len(tokens)


def test_missing_split_says_where_it_looked(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path))
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")
    with pytest.raises(hub.DataNotFoundError, match="wiki.train.tokens") as e:
        load_bert_pretraining(split="train")
    assert "wiki.valid.tokens" in str(e.value)  # points at the split that exists
    with pytest.raises(ValueError, match="split must be one of"):
        find_wikitext("training")
    with pytest.raises(ValueError, match="val_fraction"):
        load_bert_pretraining(split="valid", val_fraction=1.0)


def test_extracted_copy_in_data_dir_comes_first(tmp_path):
    """A user's extracted wikitext-2 folder is found through ``data_dir`` (synthetic file)."""
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    line = " the cat sat on the mat . the dog sat on the log . the end \n"
    (folder / "wiki.test.tokens").write_text(" = title = \n" + line * 50)
    assert find_wikitext("test", data_dir=tmp_path) == folder / "wiki.test.tokens"
    d = load_bert_pretraining(max_len=16, split="test", data_dir=tmp_path, val_fraction=0.0)
    assert len(d["train"]["nsp_label"]) == 100  # 50 paragraphs x 2 sentence pairs
    assert "cat" in d["_info"]["vocab"]
