"""WikiText-2 as BERT pretraining data: next sentence prediction + masked language modeling
(book 1.0 §15.9, "The Dataset for Pretraining BERT").

The pipeline is the book's, step for step, with every random choice drawn from one seeded
``np.random.Generator`` (so a seed gives the same examples on every machine):

1. :func:`read_wiki` keeps the paragraphs (lines) with at least two sentences (split on
   ``' . '``), lowercased, and shuffles them.
2. :func:`get_nsp_data_from_paragraph` pairs each sentence with the next one (``is_next``) or,
   half of the time, with a random sentence of a random paragraph; pairs longer than
   ``max_len`` (counting ``<cls>`` and two ``<sep>``) are dropped.
3. :func:`get_mlm_data_from_tokens` picks ``max(1, round(0.15 * len(tokens)))`` positions
   among the non-special tokens (``<cls>``/``<sep>`` are never picked); each picked token is
   replaced by ``<mask>`` 80 % of the time, by a random vocabulary token 10 % of the time, and
   left unchanged 10 % of the time; its original token is the label.
4. :func:`pad_bert_inputs` pads the tokens to ``max_len`` with ``<pad>``, the predictions to
   ``round(0.15 * max_len)`` with weight 0.

Where the file comes from: ``wiki.<split>.tokens`` is looked for as an extracted copy
(``wikitext-2/wiki.<split>.tokens``) in every folder of :func:`d2ljax.data.hub.search_dirs`,
then the hub entry ``"wikitext-2"`` (``wikitext-2-v1.zip``) is downloaded and extracted. The
book reads the train file; the offline course copy has only ``valid`` and ``test``, hence
``split=``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from d2ljax.data import hub

__all__ = [
    "RESERVED_TOKENS",
    "SPLITS",
    "build_wiki_vocab",
    "find_wikitext",
    "get_mlm_data_from_tokens",
    "get_next_sentence",
    "get_nsp_data_from_paragraph",
    "get_tokens_and_segments",
    "load_bert_pretraining",
    "load_data_wiki",
    "pad_bert_inputs",
    "read_wiki",
    "replace_mlm_tokens",
    "split_paragraphs",
    "wiki_examples",
]

SPLITS = ("train", "valid", "test")
RESERVED_TOKENS = ["<pad>", "<mask>", "<cls>", "<sep>"]
_SPECIAL = ("<cls>", "<sep>")
_EXTRACTED = ("wikitext-2", "wikitext-2-v1/wikitext-2", ".")


def find_wikitext(split: str = "train", *, data_dir: str | os.PathLike | None = None) -> Path:
    """The path of ``wiki.<split>.tokens`` (``split`` in ``train``/``valid``/``test``).

    Looks for an extracted copy in every hub search folder (``<dir>/wikitext-2/``,
    ``<dir>/wikitext-2-v1/wikitext-2/``, ``<dir>/``), then downloads and extracts the hub's
    ``wikitext-2-v1.zip``. Raises :class:`~d2ljax.data.hub.DataNotFoundError` saying where it
    looked when neither works (e.g. offline without the file).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    filename = f"wiki.{split}.tokens"
    looked = []
    for d in hub.search_dirs("wikitext-2", data_dir=data_dir):
        for sub in _EXTRACTED:
            path = d / sub / filename
            looked.append(path)
            if path.is_file():
                return path
    try:
        root = hub.extract("wikitext-2", data_dir=data_dir)
        return hub.find_file(root, filename)
    except (hub.DataNotFoundError, FileNotFoundError) as e:
        others = sorted(
            {q.name for p in looked if p.parent.is_dir() for q in p.parent.glob("wiki.*.tokens")}
        )
        hint = (
            f"\nFound other WikiText-2 splits: {', '.join(others)} (choose one with split=...)."
            if others
            else ""
        )
        raise hub.DataNotFoundError(
            f"WikiText-2 {filename} was not found. Looked for an extracted copy at:\n"
            + "\n".join(f"  {p}" for p in looked)
            + f"\nthen for the archive:\n{e}{hint}"
        ) from None


def read_wiki(path: str | os.PathLike, rng: np.random.Generator) -> list[list[str]]:
    """The book's ``_read_wiki``: paragraphs (lines) with >= 2 sentences split on ``' . '``,
    lowercased, in a random order drawn from ``rng``."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    paragraphs = [
        line.strip().lower().split(" . ") for line in lines if len(line.split(" . ")) >= 2
    ]
    order = rng.permutation(len(paragraphs))
    return [paragraphs[i] for i in order]


def get_tokens_and_segments(
    tokens_a: Sequence[str], tokens_b: Sequence[str] | None = None
) -> tuple[list[str], list[int]]:
    """``<cls> a <sep> [b <sep>]`` and its segment ids (0 for a's part, 1 for b's), §15.8.1."""
    tokens = ["<cls>", *tokens_a, "<sep>"]
    segments = [0] * (len(tokens_a) + 2)
    if tokens_b is not None:
        tokens += [*tokens_b, "<sep>"]
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments


def get_next_sentence(sentence, next_sentence, paragraphs, rng: np.random.Generator):
    """``(a, b, is_next)``: b is the real next sentence with probability 1/2, else a random
    sentence of a random paragraph (book ``_get_next_sentence``)."""
    if rng.random() < 0.5:
        return sentence, next_sentence, True
    paragraph = paragraphs[rng.integers(len(paragraphs))]
    return sentence, paragraph[rng.integers(len(paragraph))], False


def get_nsp_data_from_paragraph(paragraph, paragraphs, max_len: int, rng: np.random.Generator):
    """``[(tokens, segments, is_next)]`` for the consecutive sentence pairs of one paragraph
    (tokenized sentences); pairs longer than ``max_len`` with ``<cls>``, 2 ``<sep>`` dropped."""
    out = []
    for i in range(len(paragraph) - 1):
        tokens_a, tokens_b, is_next = get_next_sentence(
            paragraph[i], paragraph[i + 1], paragraphs, rng
        )
        if len(tokens_a) + len(tokens_b) + 3 > max_len:
            continue
        tokens, segments = get_tokens_and_segments(tokens_a, tokens_b)
        out.append((tokens, segments, is_next))
    return out


def replace_mlm_tokens(tokens, candidate_positions, num_mlm_preds, vocab, rng):
    """The book's ``_replace_mlm_tokens``: visit the candidates in a random order and take the
    first ``num_mlm_preds``; each becomes ``<mask>`` (p=0.8), stays (p=0.1) or becomes a random
    vocabulary token (p=0.1). Returns the new tokens and ``[(position, original token)]``."""
    mlm_input_tokens = list(tokens)
    chosen = [candidate_positions[i] for i in rng.permutation(len(candidate_positions))]
    chosen = chosen[:num_mlm_preds]
    u = rng.random((len(chosen), 2))
    random_ids = rng.integers(len(vocab), size=len(chosen))
    pred_positions_and_labels = []
    for k, pos in enumerate(chosen):
        if u[k, 0] < 0.8:
            masked = "<mask>"
        elif u[k, 1] < 0.5:
            masked = tokens[pos]
        else:
            masked = vocab.idx_to_token[int(random_ids[k])]
        mlm_input_tokens[pos] = masked
        pred_positions_and_labels.append((pos, tokens[pos]))
    return mlm_input_tokens, pred_positions_and_labels


def get_mlm_data_from_tokens(tokens, vocab, rng: np.random.Generator):
    """``(input ids, sorted prediction positions, label ids)`` for one example: 15 % of the
    example's length (at least 1) predicted, never at ``<cls>``/``<sep>`` (book
    ``_get_mlm_data_from_tokens``)."""
    candidates = [i for i, t in enumerate(tokens) if t not in _SPECIAL]
    num_mlm_preds = max(1, round(len(tokens) * 0.15))
    mlm_input_tokens, pairs = replace_mlm_tokens(tokens, candidates, num_mlm_preds, vocab, rng)
    pairs.sort(key=lambda x: x[0])
    positions = [p for p, _ in pairs]
    labels = [t for _, t in pairs]
    return vocab[mlm_input_tokens], positions, vocab[labels]


def pad_bert_inputs(examples, max_len: int, vocab) -> dict[str, np.ndarray]:
    """Stack ``[(token_ids, positions, label_ids, segments, is_next)]`` into padded arrays:
    tokens ``<pad>``-padded to ``max_len``, predictions padded to ``round(0.15 * max_len)``
    with position 0, label 0, weight 0 (book ``_pad_bert_inputs``)."""
    n = len(examples)
    max_preds = round(max_len * 0.15)
    out = {
        "tokens": np.full((n, max_len), vocab["<pad>"], np.int32),
        "segments": np.zeros((n, max_len), np.int32),
        "valid_len": np.zeros((n,), np.int32),
        "mlm_positions": np.zeros((n, max_preds), np.int32),
        "mlm_weights": np.zeros((n, max_preds), np.float32),
        "mlm_labels": np.zeros((n, max_preds), np.int32),
        "nsp_label": np.zeros((n,), np.int32),
    }
    for i, (token_ids, positions, label_ids, segments, is_next) in enumerate(examples):
        if len(token_ids) > max_len or len(positions) > max_preds:
            raise ValueError(
                f"example {i} has {len(token_ids)} tokens / {len(positions)} predictions, more "
                f"than max_len={max_len} / {max_preds}"
            )
        out["tokens"][i, : len(token_ids)] = token_ids
        out["segments"][i, : len(segments)] = segments
        out["valid_len"][i] = len(token_ids)
        out["mlm_positions"][i, : len(positions)] = positions
        out["mlm_weights"][i, : len(positions)] = 1.0
        out["mlm_labels"][i, : len(label_ids)] = label_ids
        out["nsp_label"][i] = int(is_next)
    return out


def wiki_examples(paragraphs, vocab, max_len: int, rng: np.random.Generator):
    """Padded NSP + MLM arrays from tokenized paragraphs (the body of the book's
    ``_WikiTextDataset``). ``nsp_label`` is 1 when the second sentence is the real next one."""
    examples = []
    for paragraph in paragraphs:
        examples.extend(get_nsp_data_from_paragraph(paragraph, paragraphs, max_len, rng))
    examples = [
        (*get_mlm_data_from_tokens(tokens, vocab, rng), segments, is_next)
        for tokens, segments, is_next in examples
    ]
    return pad_bert_inputs(examples, max_len, vocab)


def split_paragraphs(
    split: str = "train",
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
):
    """Tokenized paragraphs of ``wiki.<split>.tokens``, shuffled by ``seed``, cut into
    ``(train, val, rng)``: the last ``val_fraction`` of the shuffled paragraphs is ``val``.
    ``rng`` is the generator, positioned after the shuffle (the rest of the pipeline draws
    from it)."""
    from d2ljax.data.text import tokenize

    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    paragraphs = read_wiki(find_wikitext(split, data_dir=data_dir), rng)
    paragraphs = [tokenize(p, token="word") for p in paragraphs]
    n_val = int(round(len(paragraphs) * val_fraction))
    cut = len(paragraphs) - n_val
    return paragraphs[:cut], paragraphs[cut:], rng


def _vocab(paragraphs):
    from d2ljax.data.text import Vocab

    sentences = [sentence for paragraph in paragraphs for sentence in paragraph]
    return Vocab(sentences, min_freq=5, reserved_tokens=list(RESERVED_TOKENS))


def build_wiki_vocab(
    split: str = "train",
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    **unused,
):
    """The vocabulary :func:`load_bert_pretraining` builds for the same arguments (min_freq 5,
    reserved ``<pad> <mask> <cls> <sep>``, from the train paragraphs only), without building the
    examples: what a fine-tuning run needs to reuse a pretrained BERT's token ids. Extra keyword
    arguments (e.g. ``max_len``) are accepted and ignored, so a pretraining config's
    ``data.kwargs`` can be passed as they are."""
    train, _, _ = split_paragraphs(split, seed, data_dir, val_fraction)
    return _vocab(train)


def load_bert_pretraining(
    max_len: int = 64,
    split: str = "train",
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
) -> dict:
    """BERT pretraining arrays from WikiText-2 (book §15.9 ``load_data_wiki``).

    Args:
      max_len: tokens per example, ``<cls>``/``<sep>`` included (book: 64).
      split: which WikiText-2 file to read: ``"train"`` (the book's), ``"valid"`` or ``"test"``.
      seed: seeds the paragraph shuffle, the NSP pairing and the masking.
      data_dir: an extra folder searched first (see :func:`find_wikitext`).
      val_fraction: fraction of the (shuffled) paragraphs held out as ``"val"``; the vocabulary
        is built from the other paragraphs only. 0 gives no ``"val"`` split.

    Returns:
      ``{"train": arrays, "val": arrays, "_info": {"vocab_size", "vocab"}}`` where arrays are
      ``tokens``, ``segments`` ``(N, max_len)`` int32, ``valid_len``, ``nsp_label`` ``(N,)``
      int32, ``mlm_positions``, ``mlm_labels`` int32 and ``mlm_weights`` float32
      ``(N, round(0.15 * max_len))``.
    """
    if max_len < 5:
        raise ValueError(f"max_len must be >= 5 (<cls>, 2 <sep> and two tokens), got {max_len}")
    train_p, val_p, rng = split_paragraphs(split, seed, data_dir, val_fraction)
    if not train_p:
        raise ValueError(f"wiki.{split}.tokens has no paragraph with two sentences")
    vocab = _vocab(train_p)
    out = {"train": wiki_examples(train_p, vocab, max_len, rng)}
    if val_p:
        out["val"] = wiki_examples(val_p, vocab, max_len, rng)
    out["_info"] = {"vocab_size": len(vocab), "vocab": vocab}
    return out


def load_data_wiki(batch_size: int, max_len: int = 64, *, seed: int = 0, **kwargs):
    """The book's ``load_data_wiki(batch_size, max_len)``: ``(train loader, vocab)``, a shuffled
    :class:`~d2ljax.data.ArrayLoader` over the train arrays. ``kwargs`` go to
    :func:`load_bert_pretraining` (e.g. ``split="valid"`` offline)."""
    from d2ljax.data.pipeline import ArrayLoader

    data = load_bert_pretraining(max_len=max_len, seed=seed, **kwargs)
    return ArrayLoader(data["train"], batch_size, shuffle=True, seed=seed), data["_info"]["vocab"]
