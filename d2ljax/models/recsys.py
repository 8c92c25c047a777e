"""Recommender-system models (book ch 21): matrix factorisation (§21.3), AutoRec (§21.4) and
NeuMF (§21.6).

Ids are 0-based int arrays; a model knows only the numbers of users and items.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

__all__ = ["AutoRec", "MatrixFactorization", "NeuMF", "predict_all"]

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



@register("neumf", description="§21.6 NeuMF: GMF and MLP branches, sigmoid prediction layer")
class NeuMF(nnx.Module):
    """The book's ``NeuMF`` (§21.6): a generalised-MF branch ``p_u * q_i`` and an MLP branch on
    ``[u_u, v_i]`` (``nums_hiddens`` ReLU layers), concatenated into ``Dense(1, sigmoid)``
    without bias; one score in (0, 1) per (user, item) pair. Every weight drawn from
    N(0, 0.01²) (the book's ``init.Normal(0.01)``), dense biases zero. Book setting (10
    factors, MLP [10, 10, 10], 943 users, 1,682 items): 4 embeddings 52,500 + MLP 430 +
    prediction 20 = 52,950 parameters.
    """

    def __init__(
        self,
        num_factors: int = 10,
        num_users: int = 943,
        num_items: int = 1682,
        nums_hiddens: tuple[int, ...] = (10, 10, 10),
        *,
        rngs: nnx.Rngs,
    ):
        def embed(n):
            return nnx.Embed(n, num_factors, embedding_init=_normal, rngs=rngs)

        self.P, self.Q = embed(num_users), embed(num_items)
        self.U, self.V = embed(num_users), embed(num_items)
        sizes = (2 * num_factors, *nums_hiddens)
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.mlp = nnx.List([nnx.Linear(a, b, kernel_init=_normal, rngs=rngs) for a, b in pairs])
        self.prediction_layer = nnx.Linear(
            num_factors + sizes[-1], 1, use_bias=False, kernel_init=_normal, rngs=rngs
        )

    def __call__(self, user_B: jax.Array, item_B: jax.Array) -> jax.Array:
        gmf_BK = self.P(user_B) * self.Q(item_B)
        h_BH = jnp.concatenate([self.U(user_B), self.V(item_B)], axis=-1)
        for layer in self.mlp:
            h_BH = jax.nn.relu(layer(h_BH))
        return jax.nn.sigmoid(self.prediction_layer(jnp.concatenate([gmf_BK, h_BH], -1)))[:, 0]
