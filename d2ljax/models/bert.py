"""BERT (book 1.0 §15.8), its pretraining heads, and the fine-tuning heads of §16.6–§16.7.

The §15.8.4 input representation (``<cls> a <sep> [b <sep>]`` and segment ids) is built by the
data pipeline, :func:`d2ljax.data.wikitext.get_tokens_and_segments`.

- :class:`BERTEncoder` -- §15.8.4: token + segment + *learned* position embeddings, then
  ``num_blks`` Transformer encoder blocks (:class:`~d2ljax.models.transformer.
  TransformerEncoderBlock`, with biases as the book's BERT uses them).
- :class:`MaskLM` -- §15.8.5.1: an MLP (``Linear -> ReLU -> LayerNorm -> Linear``) that predicts
  the tokens at the masked positions.
- :class:`NextSentencePred` -- §15.8.5.2: a linear 2-way classifier of the ``<cls>`` hidden.
- :class:`BERTModel` (registered ``"bert"``) -- §15.8.5.3: encoder, the ``<cls>`` hidden layer
  (``Linear -> tanh``) and the two heads. ``model(tokens, segments, valid_lens, pred_positions)``
  returns ``(mlm_logits_BPV, nsp_logits_B2)``; :meth:`BERTModel.encode` returns the encoded
  tokens ``(B, T, D)`` (the book's ``encoded_X``, §15.10.2).
- §16.6 heads on top of an encoder's output: :class:`SingleTextClassificationHead`,
  :class:`TextPairClassificationHead` (the same MLP on ``<cls>``; the pair is told apart by the
  segments), :class:`TokenTaggingHead` (one linear layer applied to every token) and
  :class:`QuestionAnsweringHead` (start/end scores over the passage tokens).
- :class:`BERTClassifier` (registered ``"bert_classifier"``) -- §16.7: the pretrained encoder and
  ``<cls>`` hidden layer, plus a new ``Linear(num_classes)`` output; fine-tuned on SNLI. Given
  ``bert=`` it starts from that BERT (e.g. one loaded from a ``bert_pretrain`` run by
  :func:`d2ljax.pretrained.load_pretrained_bert`).
- :func:`num_params_formula` -- the parameter count of :class:`BERTModel`, written out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.models.transformer import TransformerEncoderBlock

__all__ = [
    "BERTClassifier",
    "BERTEncoder",
    "BERTModel",
    "MaskLM",
    "NextSentencePred",
    "QuestionAnsweringHead",
    "SingleTextClassificationHead",
    "TextPairClassificationHead",
    "TokenTaggingHead",
    "num_params_formula",
]

# The book's small BERT (§15.10): what "bert" and "bert_classifier" build by default.
SMALL_BERT = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2, max_len=1000)


class BERTEncoder(nnx.Module):
    """BERT encoder (§15.8.4).

    ``__call__(tokens_BT, segments_BT, valid_lens_B=None)`` returns ``(B, T, num_hiddens)``:
    the sum of the token, segment and position embeddings (positions are a learned
    ``(1, max_len, D)`` parameter drawn from N(0, 1), as the book's ``torch.randn``), through
    ``num_blks`` :class:`~d2ljax.models.transformer.TransformerEncoderBlock` s (biased
    projections); ``valid_lens_B`` hides the padding from attention.
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int,
        ffn_num_hiddens: int,
        num_heads: int,
        num_blks: int,
        dropout: float,
        max_len: int = 1000,
        *,
        rngs: nnx.Rngs,
    ):
        self.max_len = max_len
        self.token_embedding = nnx.Embed(vocab_size, num_hiddens, rngs=rngs)
        self.segment_embedding = nnx.Embed(2, num_hiddens, rngs=rngs)
        self.blks = nnx.List(
            [
                TransformerEncoderBlock(
                    num_hiddens, ffn_num_hiddens, num_heads, dropout, True, rngs=rngs
                )
                for _ in range(num_blks)
            ]
        )
        self.pos_embedding = nnx.Param(
            jax.random.normal(rngs.params(), (1, max_len, num_hiddens), jnp.float32)
        )

    def __call__(self, tokens_BT, segments_BT, valid_lens_B=None):
        t = tokens_BT.shape[1]
        if t > self.max_len:
            raise ValueError(f"sequence length {t} exceeds the encoder's max_len={self.max_len}")
        x_BTD = self.token_embedding(tokens_BT) + self.segment_embedding(segments_BT)
        x_BTD = x_BTD + self.pos_embedding[:, :t, :]
        for blk in self.blks:
            x_BTD = blk(x_BTD, valid_lens_B)
        return x_BTD


def gather_positions(x_BTD, positions_BP):
    """``x[b, positions[b, p]]`` as ``(B, P, D)`` (the book's ``batch_idx`` indexing, §15.8.5.1)."""
    return jnp.take_along_axis(x_BTD, positions_BP[..., None].astype(jnp.int32), axis=1)


class MaskLM(nnx.Module):
    """Masked language model head (§15.8.5.1): ``Linear -> ReLU -> LayerNorm -> Linear(V)`` on
    the encoded tokens at ``pred_positions``. ``__call__(x_BTD, pred_positions_BP)`` returns
    logits ``(B, P, vocab_size)``."""

    def __init__(
        self, vocab_size: int, num_hiddens: int, num_inputs: int | None = None, *, rngs: nnx.Rngs
    ):
        self.dense1 = nnx.Linear(num_inputs or num_hiddens, num_hiddens, rngs=rngs)
        self.ln = nnx.LayerNorm(num_hiddens, rngs=rngs)
        self.dense2 = nnx.Linear(num_hiddens, vocab_size, rngs=rngs)

    def __call__(self, x_BTD, pred_positions_BP):
        masked_BPD = gather_positions(x_BTD, pred_positions_BP)
        return self.dense2(self.ln(nnx.relu(self.dense1(masked_BPD))))


class NextSentencePred(nnx.Module):
    """Next sentence prediction head (§15.8.5.2): ``Linear(2)`` on the ``<cls>`` hidden;
    ``__call__(h_BD)`` returns logits ``(B, 2)`` (label 1: the second sentence is the next)."""

    def __init__(self, num_inputs: int, *, rngs: nnx.Rngs):
        self.output = nnx.Linear(num_inputs, 2, rngs=rngs)

    def __call__(self, h_BD):
        return self.output(h_BD)


class _CLSHidden(nnx.Module):
    """``tanh(Linear(h_<cls>))``: BERT's pooled ``<cls>`` representation (§15.8.5.3)."""

    def __init__(self, num_hiddens: int, *, rngs: nnx.Rngs):
        self.dense = nnx.Linear(num_hiddens, num_hiddens, rngs=rngs)

    def __call__(self, encoded_BTD):
        return jnp.tanh(self.dense(encoded_BTD[:, 0, :]))


def _check_arch(num_hiddens: int, num_heads: int, num_blks: int) -> None:
    if num_hiddens <= 0 or num_heads <= 0 or num_blks < 0:
        raise ValueError(
            f"bad BERT size: num_hiddens={num_hiddens}, num_heads={num_heads}, num_blks={num_blks}"
        )
    if num_hiddens % num_heads:
        raise ValueError(f"num_hiddens={num_hiddens} is not divisible by num_heads={num_heads}")


@register("bert", description="§15.8 BERT: encoder + masked LM + next sentence prediction")
class BERTModel(nnx.Module):
    """BERT for pretraining (§15.8.5.3). Defaults: the book's small BERT of §15.10 (128 hidden,
    FFN 256, 2 heads, 2 blocks, dropout 0.2, position table of 1000).

    ``__call__(tokens_BT, segments_BT, valid_lens_B=None, pred_positions_BP=None)`` returns
    ``(mlm_logits_BPV, nsp_logits_B2)``; ``mlm_logits`` is None without ``pred_positions``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int = 128,
        ffn_num_hiddens: int = 256,
        num_heads: int = 2,
        num_blks: int = 2,
        dropout: float = 0.2,
        max_len: int = 1000,
        *,
        rngs: nnx.Rngs,
    ):
        _check_arch(num_hiddens, num_heads, num_blks)
        self.arch = dict(
            num_hiddens=num_hiddens,
            ffn_num_hiddens=ffn_num_hiddens,
            num_heads=num_heads,
            num_blks=num_blks,
            max_len=max_len,
        )
        arch = (num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout, max_len)
        self.encoder = BERTEncoder(vocab_size, *arch, rngs=rngs)
        self.hidden = _CLSHidden(num_hiddens, rngs=rngs)
        self.mlm = MaskLM(vocab_size, num_hiddens, rngs=rngs)
        self.nsp = NextSentencePred(num_hiddens, rngs=rngs)

    def encode(self, tokens_BT, segments_BT, valid_lens_B=None):
        """The encoded tokens ``(B, T, D)``: BERT's contextual representation (§15.10.2)."""
        return self.encoder(tokens_BT, segments_BT, valid_lens_B)

    def __call__(self, tokens_BT, segments_BT, valid_lens_B=None, pred_positions_BP=None):
        encoded_BTD = self.encoder(tokens_BT, segments_BT, valid_lens_B)
        mlm_BPV = None if pred_positions_BP is None else self.mlm(encoded_BTD, pred_positions_BP)
        nsp_B2 = self.nsp(self.hidden(encoded_BTD))
        return mlm_BPV, nsp_B2


def num_params_formula(
    vocab_size: int,
    num_hiddens: int = 128,
    ffn_num_hiddens: int = 256,
    num_blks: int = 2,
    max_len: int = 1000,
) -> int:
    """:class:`BERTModel`'s parameter count from the layer formulas (the head count does not
    change it)."""
    d, f, v = num_hiddens, ffn_num_hiddens, vocab_size

    def dense(i, o):
        return i * o + o

    embeddings = v * d + 2 * d + max_len * d
    block = 4 * dense(d, d) + dense(d, f) + dense(f, d) + 2 * (2 * d)
    hidden = dense(d, d)
    mlm = dense(d, d) + 2 * d + dense(d, v)
    nsp = dense(d, 2)
    return embeddings + num_blks * block + hidden + mlm + nsp


# ----------------------------------------------------------------------------------------------
# Fine-tuning heads (§16.6)


class SingleTextClassificationHead(nnx.Module):
    """§16.6.1 single text classification (e.g. sentiment): an MLP on the ``<cls>`` token's
    BERT representation. ``__call__(encoded_BTD)`` returns logits ``(B, num_classes)``.

    ``num_hiddens`` sizes the MLP's hidden layer (tanh); 0 gives a single linear layer.
    """

    def __init__(self, num_inputs: int, num_classes: int, num_hiddens: int = 0, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(num_inputs, num_hiddens, rngs=rngs) if num_hiddens else None
        self.output = nnx.Linear(num_hiddens or num_inputs, num_classes, rngs=rngs)

    def __call__(self, encoded_BTD):
        h_BD = encoded_BTD[:, 0, :]
        if self.hidden is not None:
            h_BD = jnp.tanh(self.hidden(h_BD))
        return self.output(h_BD)


class TextPairClassificationHead(SingleTextClassificationHead):
    """§16.6.2 text pair classification or regression (natural language inference, semantic
    textual similarity with ``num_classes=1``): the same MLP on ``<cls>``; the encoder saw
    ``<cls> a <sep> b <sep>`` with segments 0/1, so ``<cls>`` represents the pair."""


class TokenTaggingHead(nnx.Module):
    """§16.6.3 text tagging (e.g. part-of-speech): the same linear layer on every token's BERT
    representation. ``__call__(encoded_BTD)`` returns logits ``(B, T, num_tags)``; the
    positions of ``<cls>``, ``<sep>`` and padding are the caller's to ignore in the loss."""

    def __init__(self, num_inputs: int, num_tags: int, *, rngs: nnx.Rngs):
        self.output = nnx.Linear(num_inputs, num_tags, rngs=rngs)

    def __call__(self, encoded_BTD):
        return self.output(encoded_BTD)


class QuestionAnsweringHead(nnx.Module):
    """§16.6.4 question answering (SQuAD): ``<cls> question <sep> passage <sep>``; one linear
    layer scores every token as the answer's start and end.

    ``__call__(encoded_BTD, segments_BT, valid_lens_B=None)`` returns ``(start_BT, end_BT)``
    logits, with every position outside the passage (segment 0, the final ``<sep>``, padding)
    set to a large negative value, so a softmax over ``T`` is a distribution over passage tokens.
    """

    def __init__(self, num_inputs: int, *, rngs: nnx.Rngs):
        self.output = nnx.Linear(num_inputs, 2, rngs=rngs)

    def __call__(self, encoded_BTD, segments_BT, valid_lens_B=None):
        scores_BT2 = self.output(encoded_BTD)
        t = encoded_BTD.shape[1]
        if valid_lens_B is None:
            valid_lens_B = jnp.full((encoded_BTD.shape[0],), t)
        # The passage: segment 1, before the last <sep> (at valid_len - 1).
        inside_BT = (segments_BT == 1) & (jnp.arange(t)[None, :] < valid_lens_B[:, None] - 1)
        neg = jnp.finfo(scores_BT2.dtype).min / 2
        masked_BT2 = jnp.where(inside_BT[..., None], scores_BT2, neg)
        return masked_BT2[..., 0], masked_BT2[..., 1]


# ----------------------------------------------------------------------------------------------
# Fine-tuning on SNLI (§16.7)


@register("bert_classifier", description="§16.7 BERT fine-tuned for text pair classification")
class BERTClassifier(nnx.Module):
    """BERT with a classification output (§16.7): ``Linear(num_classes)`` on the ``<cls>``
    hidden layer of a BERT (the pooled ``tanh(Linear(h_<cls>))``); ``__call__(tokens_BT,
    segments_BT, valid_lens_B=None)`` returns logits ``(B, num_classes)``.

    Given ``bert`` (a :class:`BERTModel`, e.g. pretrained: see
    :func:`d2ljax.pretrained.load_pretrained_bert`), the encoder and the ``<cls>`` hidden layer
    are that BERT's (its architecture wins; an architecture argument given here must agree with
    it). Without it, the architecture arguments (default: the book's small BERT) build a fresh one.
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int | None = None,
        ffn_num_hiddens: int | None = None,
        num_heads: int | None = None,
        num_blks: int | None = None,
        dropout: float = 0.1,
        max_len: int | None = None,
        num_classes: int = 3,
        bert: BERTModel | None = None,
        *,
        rngs: nnx.Rngs,
    ):
        given = dict(
            num_hiddens=num_hiddens,
            ffn_num_hiddens=ffn_num_hiddens,
            num_heads=num_heads,
            num_blks=num_blks,
            max_len=max_len,
        )
        if bert is not None:
            arch = bert.arch
            clash = {k: (v, arch[k]) for k, v in given.items() if v is not None and v != arch[k]}
            if clash:
                raise ValueError(
                    f"architecture argument(s) {clash} (given, the BERT's) disagree with the "
                    "given BERT; leave them unset"
                )
        else:
            arch = {k: SMALL_BERT[k] if v is None else v for k, v in given.items()}
            bert = BERTModel(vocab_size, dropout=dropout, rngs=rngs, **arch)
        self.encoder = bert.encoder
        self.hidden = bert.hidden
        self.output = nnx.Linear(arch["num_hiddens"], num_classes, rngs=rngs)

    def __call__(self, tokens_BT, segments_BT, valid_lens_B=None):
        encoded_BTD = self.encoder(tokens_BT, segments_BT, valid_lens_B)
        return self.output(self.hidden(encoded_BTD))
