"""The sequence losses: per-token averages, masking by valid length, perplexity summaries."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.train import get_loss
from d2ljax.train.losses import sequence_mask
from d2ljax.train.steps import summarize


class FixedLogits(nnx.Module):
    """Returns the logits it was built with, whatever the input (a test double)."""

    def __init__(self, logits):
        self.logits = nnx.Param(jnp.asarray(logits))

    def __call__(self, *args):
        return self.logits[...]


def test_lm_loss_on_uniform_logits_has_perplexity_vocab_size():
    B, T, V = 2, 5, 28
    model = FixedLogits(np.zeros((B, T, V), np.float32))
    batch = {"x": jnp.zeros((B, T), jnp.int32), "y": jnp.arange(B * T).reshape(B, T) % V}
    loss, metrics = get_loss("lm")(model, batch)
    assert float(loss) == pytest.approx(math.log(V), rel=1e-6)
    assert float(metrics["count"]) == B * T
    summary = summarize(metrics)
    assert summary["perplexity"] == pytest.approx(V, rel=1e-5)
    assert summary["loss"] == pytest.approx(math.log(V), rel=1e-6)


def test_sequence_mask():
    mask = sequence_mask(jnp.array([0, 2, 4]), 4)
    np.testing.assert_array_equal(mask, [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])


def test_seq2seq_loss_ignores_padding_and_averages_over_valid_tokens():
    rng = np.random.default_rng(0)
    B, T, V = 3, 4, 7
    logits = rng.normal(size=(B, T, V)).astype(np.float32)
    y = rng.integers(0, V, size=(B, T)).astype(np.int32)
    y_len = np.array([4, 1, 2], np.int32)
    batch = {
        "x": jnp.zeros((B, 2), jnp.int32),
        "x_len": jnp.full((B,), 2, jnp.int32),
        "dec_x": jnp.zeros((B, T), jnp.int32),
        "y": jnp.asarray(y),
        "y_len": jnp.asarray(y_len),
    }
    loss, metrics = get_loss("seq2seq")(FixedLogits(logits), batch)
    # Reference: a Python loop over the valid tokens of each example.
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_token = [-logp[b, t, y[b, t]] for b in range(B) for t in range(y_len[b])]
    assert float(loss) == pytest.approx(np.mean(per_token), rel=1e-5)
    assert float(metrics["count"]) == y_len.sum()
    # Changing the logits at padded positions changes nothing.
    logits2 = logits.copy()
    logits2[1, 1:] += 100.0
    loss2, _ = get_loss("seq2seq")(FixedLogits(logits2), batch)
    assert float(loss2) == pytest.approx(float(loss), rel=1e-6)
