"""Recommender-system models (book ch 21): matrix factorisation (§21.3) and AutoRec (§21.4).

Ids are 0-based int arrays; a model knows only the numbers of users and items.
"""

from __future__ import annotations

import jax
from flax import nnx

from d2ljax.models.registry import register

__all__ = ["AutoRec", "MatrixFactorization", "predict_all"]

_normal = nnx.initializers.normal(0.01)


@register("mf", description="§21.3 matrix factorisation with user and item biases")
class MatrixFactorization(nnx.Module):
    """The book's ``MF`` (§21.3): ``r_hat(u, i) = p_u . q_i + b_u + b_i``.

    ``P`` ``[num_users, k]`` and ``Q`` ``[num_items, k]`` latent factors, user and item biases
    ``[n, 1]``, all drawn from N(0, 0.01²) as the book's ``init.Normal(0.01)``. At the book's
    k = 30 on MovieLens 100K: 943·30 + 1682·30 + 943 + 1682 = 81,375 parameters.
    """

    def __init__(
        self,
        num_factors: int = 30,
        num_users: int = 943,
        num_items: int = 1682,
        *,
        rngs: nnx.Rngs,
    ):
        def embed(n, d):
            return nnx.Embed(n, d, embedding_init=_normal, rngs=rngs)

        self.P = embed(num_users, num_factors)
        self.Q = embed(num_items, num_factors)
        self.user_bias = embed(num_users, 1)
        self.item_bias = embed(num_items, 1)

    def __call__(self, user_B: jax.Array, item_B: jax.Array) -> jax.Array:
        p_BK, q_BK = self.P(user_B), self.Q(item_B)
        return (p_BK * q_BK).sum(-1) + self.user_bias(user_B)[:, 0] + self.item_bias(item_B)[:, 0]


@register("autorec", description="§21.4 item-based AutoRec: sigmoid encoder, linear decoder")
class AutoRec(nnx.Module):
    """The book's ``AutoRec`` (§21.4): ``Dense(num_hidden, sigmoid)`` encoder, dropout,
    ``Dense(num_users)`` decoder, on an item's vector of ratings by all users (0 = unrated).

    The book's training forward returns ``pred * sign(input)`` (only observed ratings count);
    here the model always returns ``pred`` and the loss masks it (``tasks.recsys``), so the
    same module serves training and prediction. Weights drawn from N(0, 0.01²) (the book's
    ``init.Normal(0.01)``), biases zero. Book setting (500 hidden units, 943 users):
    943·500 + 500 + 500·943 + 943 = 944,443 parameters.
    """

    def __init__(
        self,
        num_hidden: int = 500,
        num_users: int = 943,
        dropout: float = 0.05,
        *,
        rngs: nnx.Rngs,
    ):
        self.encoder = nnx.Linear(num_users, num_hidden, kernel_init=_normal, rngs=rngs)
        self.decoder = nnx.Linear(num_hidden, num_users, kernel_init=_normal, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, ratings_BU: jax.Array) -> jax.Array:
        hidden_BH = self.dropout(jax.nn.sigmoid(self.encoder(ratings_BU)))
        return self.decoder(hidden_BH)


def predict_all(model: MatrixFactorization) -> jax.Array:
    """Every user's predicted rating of every item, ``[num_users, num_items]`` (one matmul)."""
    out = model.P.embedding[...] @ model.Q.embedding[...].T
    return out + model.user_bias.embedding[...] + model.item_bias.embedding[...].T

