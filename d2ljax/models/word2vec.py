"""word2vec's skip-gram model (book §15.1, §15.4), trained with negative sampling.

:class:`SkipGram` (registered ``"skip_gram"``) holds two embedding matrices of shape
``[vocab_size, embed_size]``: ``embed_v`` for centre words (the vectors used afterwards as the
word's representation) and ``embed_u`` for context and noise words. For a batch of centre words
``[B, 1]`` and their contexts-and-noise words ``[B, L]`` it returns the scores ``u_o . v_c``,
``[B, 1, L]`` (the book's ``skip_gram`` with ``torch.bmm``). Both matrices start Xavier-uniform,
as the book's ``init_weights`` sets them. The book's model for PTB (6,719 tokens, embed_size
100) has 2 * 6,719 * 100 = 1,343,800 parameters.

:func:`skip_gram` is the book's function form, on any two ``nnx.Embed`` layers. The loss (the
masked sigmoid binary cross-entropy of §15.4.1) is the ``"word2vec"`` loss of
:mod:`d2ljax.train.losses`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

__all__ = ["SkipGram", "skip_gram"]


def skip_gram(center_B1: jax.Array, contexts_and_negatives_BL: jax.Array, embed_v, embed_u):
    """The book's ``skip_gram`` (§15.4.1.2): ``[B, 1, L]`` dot products of each centre vector
    ``embed_v(center)`` with the vectors ``embed_u(contexts_and_negatives)``."""
    v_B1E = embed_v(center_B1)
    u_BLE = embed_u(contexts_and_negatives_BL)
    return jnp.einsum("bie,ble->bil", v_B1E, u_BLE)


@register("skip_gram", description="§15.4 skip-gram word2vec: centre and context embeddings")
class SkipGram(nnx.Module):
    """Skip-gram with two ``nnx.Embed(vocab_size, embed_size)`` tables (see the module
    docstring); ``model(centers_B1, contexts_negatives_BL) -> scores_B1L``."""

    def __init__(self, vocab_size: int, embed_size: int = 100, *, rngs: nnx.Rngs):
        for name, value in (("vocab_size", vocab_size), ("embed_size", embed_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        init = nnx.initializers.xavier_uniform()
        self.embed_v = nnx.Embed(vocab_size, embed_size, embedding_init=init, rngs=rngs)
        self.embed_u = nnx.Embed(vocab_size, embed_size, embedding_init=init, rngs=rngs)

    def __call__(self, centers_B1: jax.Array, contexts_negatives_BL: jax.Array) -> jax.Array:
        return skip_gram(centers_B1, contexts_negatives_BL, self.embed_v, self.embed_u)

    @property
    def word_vectors(self) -> jax.Array:
        """The centre-word embeddings ``[vocab_size, embed_size]`` (what §15.4.3 queries)."""
        return self.embed_v.embedding[...]
