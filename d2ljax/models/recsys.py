"""Recommender-system models (book ch 21): matrix factorisation (§21.3), AutoRec (§21.4),
NeuMF (§21.6) and Caser (§21.7).

Ids are 0-based int arrays; a model knows only the numbers of users and items.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register

__all__ = ["AutoRec", "Caser", "MatrixFactorization", "NeuMF", "predict_all"]

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


@register("caser", description="§21.7 Caser: convolutions over the embeddings of the last L items")
class Caser(nnx.Module):
    """The book's ``Caser`` (§21.7): the embeddings ``[L, k]`` of a user's last ``L`` items go
    through a vertical convolution (``d_prime`` filters of ``L x 1``) and horizontal ones (``d``
    filters of ``h x k`` for each h = 1..L, ReLU, max over positions); both, after dropout,
    through ``Dense(k, relu)``; with the user's embedding that gives ``x`` (2k), and the score
    of item i is ``x . q'_i + b_i``. Weights drawn from N(0, 0.01²), biases zero. Book setting
    (k = 10, L = 5, d = 16, d' = 4, 943 users, 1,682 items): 65,286 parameters.
    """

    def __init__(
        self,
        num_factors: int = 10,
        num_users: int = 943,
        num_items: int = 1682,
        L: int = 5,
        d: int = 16,
        d_prime: int = 4,
        drop_ratio: float = 0.05,
        *,
        rngs: nnx.Rngs,
    ):
        def embed(n, k):
            return nnx.Embed(n, k, embedding_init=_normal, rngs=rngs)

        k = num_factors
        self.P, self.Q = embed(num_users, k), embed(num_items, k)
        self.conv_v = nnx.Conv(1, d_prime, (L, 1), padding="VALID", kernel_init=_normal, rngs=rngs)
        self.conv_h = nnx.List([
            nnx.Conv(1, d, (h, k), padding="VALID", kernel_init=_normal, rngs=rngs)
            for h in range(1, L + 1)
        ])
        self.fc = nnx.Linear(d_prime * k + d * L, k, kernel_init=_normal, rngs=rngs)
        self.Q_prime, self.b = embed(num_items, 2 * k), embed(num_items, 1)
        self.dropout = nnx.Dropout(drop_ratio, rngs=rngs)

    def __call__(self, user_B: jax.Array, seq_BL: jax.Array, item_B: jax.Array) -> jax.Array:
        e_BLK1 = self.Q(seq_BL)[..., None]
        out_v = self.conv_v(e_BLK1).reshape(e_BLK1.shape[0], -1)  # [B, k * d_prime]
        out_h = [jax.nn.relu(conv(e_BLK1)).max(axis=(1, 2)) for conv in self.conv_h]  # [B, d] each
        z_BK = jax.nn.relu(self.fc(self.dropout(jnp.concatenate([out_v, *out_h], -1))))
        x_B2K = jnp.concatenate([z_BK, self.P(user_B)], -1)
        return (x_B2K * self.Q_prime(item_B)).sum(-1) + self.b(item_B)[:, 0]
