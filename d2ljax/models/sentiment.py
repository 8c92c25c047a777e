"""Sentiment analysis with a bidirectional RNN (book §16.2).

:class:`BiRNN` (registered ``"birnn_sentiment"``): token embedding -> ``num_layers``
bidirectional LSTM layers (:class:`~d2ljax.models.rnn.LSTM`) -> the concatenated outputs of the
first and the last time step ``[B, 4 * num_hiddens]`` -> ``Linear(4 * num_hiddens, 2)``. The
book's setting: embed 100, 100 hidden, 2 layers, the embedding initialised with GloVe 6B 100d
and frozen. ``embedding`` (``[vocab_size, embed_size]``) sets the table; ``freeze_embedding``
keeps it out of training: it is then an :class:`Frozen` variable, not an ``nnx.Param``, so the
optimizer never sees it (the book's ``requires_grad = False``).

Parameter count: Flax's LSTM cell has one bias per gate where PyTorch's ``nn.LSTM`` has two
(``b_ih`` and ``b_hh``), so this model has ``4 * num_hiddens`` fewer per layer and direction
(1,600 for the book's model) and otherwise exactly the book's parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.models.rnn import LSTM

__all__ = ["BiRNN", "Frozen"]


class Frozen(nnx.Variable):
    """A weight that is not trained (not an ``nnx.Param``)."""


@register("birnn_sentiment", description="§16.2 BiRNN sentiment classifier (frozen GloVe)")
class BiRNN(nnx.Module):
    """``model(tokens_BT) -> logits_B2`` (see the module docstring)."""

    def __init__(
        self,
        vocab_size: int,
        embed_size: int = 100,
        num_hiddens: int = 100,
        num_layers: int = 2,
        *,
        embedding: np.ndarray | None = None,
        freeze_embedding: bool = False,
        rngs: nnx.Rngs,
    ):
        if embedding is not None:
            embedding = np.asarray(embedding, np.float32)
            if embedding.shape != (vocab_size, embed_size):
                raise ValueError(
                    f"embedding has shape {embedding.shape}, expected (vocab_size, embed_size) "
                    f"= ({vocab_size}, {embed_size})"
                )
            table = jnp.asarray(embedding)
        else:
            table = nnx.initializers.normal(1.0)(rngs.params(), (vocab_size, embed_size))
        self.embedding = Frozen(table) if freeze_embedding else nnx.Param(table)
        self.encoder = LSTM(embed_size, num_hiddens, num_layers, bidirectional=True, rngs=rngs)
        self.decoder = nnx.Linear(4 * num_hiddens, 2, rngs=rngs)

    def __call__(self, tokens_BT: jax.Array) -> jax.Array:
        x_TBE = jnp.take(self.embedding[...], tokens_BT.T, axis=0)
        outputs_TBH, _ = self.encoder(x_TBE)
        encoding_BH = jnp.concatenate([outputs_TBH[0], outputs_TBH[-1]], axis=-1)
        return self.decoder(encoding_BH)
