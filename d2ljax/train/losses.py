"""Loss functions for the training core.

A loss function has the signature ``loss_fn(model, batch) -> (loss, metrics)``: ``loss`` is the
scalar that is differentiated (a mean over the batch), ``metrics`` a dict of *sums* over the batch
plus a ``"count"`` entry, so that epoch averages are exact even when the last batch is smaller.
A batch may carry a ``"mask"`` of shape ``[B]`` (1 for a real example, 0 for padding: ``fit`` pads
the last batch of an epoch to the full batch size so one compiled step serves every batch): a loss
weights each example by it, so the loss, its gradient and the metric sums equal those of the
unpadded batch. A ``"perplexity"`` entry holds summed per-token negative log-likelihoods; the epoch
summary reports ``exp`` of its mean (the book's perplexity).
Register new ones with :func:`register_loss` so a config can name them.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from d2ljax.registry import Registry

LossFn = Callable[[nnx.Module, dict], tuple[jax.Array, dict[str, jax.Array]]]
#: Loss functions by name (what a config's ``loss`` names).
LOSSES: Registry[LossFn] = Registry(
    "loss", error=ValueError, message="unknown loss {name!r}; known losses: {known}.{hint}"
)


def register_loss(name: str):
    """Decorator: register a loss function under ``name``."""
    return LOSSES.register(name, overwrite=True)


def get_loss(name_or_fn: str | LossFn) -> LossFn:
    if callable(name_or_fn):
        return name_or_fn
    return LOSSES.get(name_or_fn)


def list_losses() -> list[str]:
    return LOSSES.names()


def example_weights(batch: dict, n: int) -> jax.Array:
    """``[n]`` float32 weights of the batch's examples: its ``"mask"``, or ones."""
    mask = batch.get("mask")
    return jnp.ones((n,), jnp.float32) if mask is None else mask.astype(jnp.float32)


def _weighted(values_B: jax.Array, w_B: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The weighted mean and sum over the batch of per-example values."""
    total = (values_B * w_B).sum()
    return total / jnp.maximum(w_B.sum(), 1.0), total


@register_loss("classification")
def classification(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """Softmax cross-entropy on ``model(batch['x'])`` against integer labels ``batch['y']``."""
    logits_BC = model(batch["x"])
    ce_B = optax.softmax_cross_entropy_with_integer_labels(logits_BC, batch["y"])
    w_B = example_weights(batch, ce_B.shape[0])
    mean, total = _weighted(ce_B, w_B)
    correct_B = jnp.argmax(logits_BC, axis=-1) == batch["y"]
    return mean, {"loss": total, "accuracy": (correct_B * w_B).sum(), "count": w_B.sum()}


@register_loss("classification_scratch")
def classification_scratch(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """The book's from-scratch loss (§4.2): softmax by hand, then ``-log p[y]``."""
    from d2ljax.nn import functional as F

    logits_BC = model(batch["x"])
    probs_BC = F.softmax(logits_BC)
    ce_B = -jnp.log(jnp.take_along_axis(probs_BC, batch["y"][:, None], axis=-1)[:, 0])
    w_B = example_weights(batch, ce_B.shape[0])
    mean, total = _weighted(ce_B, w_B)
    correct_B = jnp.argmax(logits_BC, axis=-1) == batch["y"]
    return mean, {"loss": total, "accuracy": (correct_B * w_B).sum(), "count": w_B.sum()}


@register_loss("squared")
def squared(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """The book's squared loss ``(y_hat - y)^2 / 2`` (§3.1), averaged over the batch."""
    y_hat = model(batch["x"])
    y = batch["y"].reshape(y_hat.shape)
    l_B = 0.5 * jnp.sum((y_hat - y) ** 2, axis=tuple(range(1, y.ndim)))
    w_B = example_weights(batch, l_B.shape[0])
    mean, total = _weighted(l_B, w_B)
    return mean, {"loss": total, "count": w_B.sum()}


@register_loss("mse")
def mse(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """Mean squared error (``nn.MSELoss``), with log-RMSE reported when targets are log prices."""
    y_hat = model(batch["x"])
    y = batch["y"].reshape(y_hat.shape)
    se_B = jnp.mean((y_hat - y) ** 2, axis=tuple(range(1, y.ndim)))
    w_B = example_weights(batch, se_B.shape[0])
    mean, total = _weighted(se_B, w_B)
    return mean, {"loss": total, "count": w_B.sum()}


@register_loss("lm")
def language_model(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """Next-token cross-entropy for a language model (book §9.5): ``model(batch['x'])`` gives
    logits ``(B, T, V)`` for the tokens ``batch['y']`` ``(B, T)``; averaged over all B*T tokens,
    with perplexity reported."""
    logits_BTV = model(batch["x"])
    ce_BT = optax.softmax_cross_entropy_with_integer_labels(logits_BTV, batch["y"])
    w_BT = example_weights(batch, ce_BT.shape[0])[:, None] * jnp.ones_like(ce_BT)
    total = (ce_BT * w_BT).sum()
    tokens = w_BT.sum()
    return total / jnp.maximum(tokens, 1.0), {
        "loss": total,
        "perplexity": total,
        "count": tokens,
    }


def sequence_mask(lengths_B: jax.Array, max_len: int) -> jax.Array:
    """``(B, T)`` float mask: 1 for positions ``t < lengths[b]``, 0 for padding (book §10.7)."""
    return (jnp.arange(max_len)[None, :] < lengths_B[:, None]).astype(jnp.float32)


@register_loss("seq2seq")
def seq2seq(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """Masked cross-entropy for an encoder-decoder (book §10.7).

    The batch holds ``x`` (source ids, ``(B, S)``), ``x_len`` (valid source lengths), ``dec_x``
    (decoder input: ``<bos>`` then the target shifted right), ``y`` (target ids, ``(B, T)``) and
    ``y_len`` (valid target lengths, counting ``<eos>``). ``model(x, dec_x, x_len)`` returns
    logits ``(B, T, V)``. Padding positions count neither in the loss nor in the token count;
    the loss is the mean over valid tokens.
    """
    logits_BTV = model(batch["x"], batch["dec_x"], batch["x_len"])
    ce_BT = optax.softmax_cross_entropy_with_integer_labels(logits_BTV, batch["y"])
    mask_BT = sequence_mask(batch["y_len"], batch["y"].shape[1])
    mask_BT = mask_BT * example_weights(batch, mask_BT.shape[0])[:, None]
    tokens = mask_BT.sum()
    total = (ce_BT * mask_BT).sum()
    correct = ((jnp.argmax(logits_BTV, -1) == batch["y"]) * mask_BT).sum()
    return total / jnp.maximum(tokens, 1.0), {
        "loss": total,
        "perplexity": total,
        "accuracy": correct,
        "count": tokens,
    }


@register_loss("bert_pretrain")
def bert_pretrain(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """BERT's pretraining loss (book §15.10.1): masked-LM cross-entropy + NSP cross-entropy.

    ``model(tokens, segments, valid_len, mlm_positions)`` returns ``(mlm_logits (B, P, V),
    nsp_logits (B, 2))``. The MLM loss is the mean over the real predictions (``mlm_weights``
    is 1 for them, 0 for the padding predictions); the NSP loss the mean over the batch; the
    loss is their sum. Reported: ``loss`` (per example: the batch's MLM mean + NSP), ``mlm_loss``
    (per example), ``nsp_loss`` and ``nsp_accuracy``.
    """
    mlm_BPV, nsp_B2 = model(
        batch["tokens"], batch["segments"], batch["valid_len"], batch["mlm_positions"]
    )
    e_B = example_weights(batch, nsp_B2.shape[0])
    w_BP = batch["mlm_weights"].astype(jnp.float32) * e_B[:, None]
    ce_BP = optax.softmax_cross_entropy_with_integer_labels(mlm_BPV, batch["mlm_labels"])
    mlm = (ce_BP * w_BP).sum() / (w_BP.sum() + 1e-8)
    nsp_B = optax.softmax_cross_entropy_with_integer_labels(nsp_B2, batch["nsp_label"])
    nsp, nsp_total = _weighted(nsp_B, e_B)
    n = e_B.sum()
    correct = ((jnp.argmax(nsp_B2, -1) == batch["nsp_label"]) * e_B).sum()
    return mlm + nsp, {
        "loss": (mlm + nsp) * n,
        "mlm_loss": mlm * n,
        "nsp_loss": nsp_total,
        "nsp_accuracy": correct,
        "count": n,
    }


@register_loss("bert_classification")
def bert_classification(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """Softmax cross-entropy of a fine-tuned BERT (book §16.7): ``model(tokens, segments,
    valid_len)`` gives logits ``(B, C)`` for the integer labels ``batch['y']``."""
    logits_BC = model(batch["tokens"], batch["segments"], batch["valid_len"])
    ce_B = optax.softmax_cross_entropy_with_integer_labels(logits_BC, batch["y"])
    w_B = example_weights(batch, ce_B.shape[0])
    mean, total = _weighted(ce_B, w_B)
    correct_B = jnp.argmax(logits_BC, axis=-1) == batch["y"]
    return mean, {"loss": total, "accuracy": (correct_B * w_B).sum(), "count": w_B.sum()}


def masked_sigmoid_bce(
    logits_BL: jax.Array, labels_BL: jax.Array, masks_BL: jax.Array
) -> jax.Array:
    """Per-example sigmoid binary cross-entropy over the positions where ``masks`` is 1,
    averaged over them (book §15.4.1: ``SigmoidBCELoss(pred, label, mask) * L / mask.sum``),
    ``[B]``; an example without any masked-in position has loss 0."""
    masks_BL = masks_BL.astype(jnp.float32)
    bce_BL = optax.sigmoid_binary_cross_entropy(logits_BL, labels_BL.astype(jnp.float32))
    return (bce_BL * masks_BL).sum(-1) / jnp.maximum(masks_BL.sum(-1), 1.0)


@register_loss("word2vec")
def word2vec(model: nnx.Module, batch: dict) -> tuple[jax.Array, dict]:
    """Skip-gram with negative sampling (book §15.4.2): ``model(centers [B, 1],
    contexts_negatives [B, L])`` gives scores ``[B, 1, L]``; the loss is
    :func:`masked_sigmoid_bce` against ``labels`` (1 for a context word, 0 for a noise word) over
    ``masks`` (0 on padding), averaged over the batch. (The book sums it over the batch for the
    gradient; with Adam the two train alike.) Reported: ``loss``, the per-example mean the book
    prints."""
    labels_BL = batch["labels"]
    scores_BL = model(batch["centers"], batch["contexts_negatives"]).reshape(labels_BL.shape)
    l_B = masked_sigmoid_bce(scores_BL, labels_BL, batch["masks"])
    w_B = example_weights(batch, l_B.shape[0])
    mean, total = _weighted(l_B, w_B)
    return mean, {"loss": total, "count": w_B.sum()}
