"""The recommender models (book ch 21): parameter counts and outputs at the book's sizes, the
all-pairs prediction against the per-pair forward, and the rating losses against hand-computed
values (the book's ``L2Loss``, and AutoRec's ``L2Loss(pred * sign(x), x)``)."""

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.models.recsys import AutoRec, Caser, MatrixFactorization, NeuMF, predict_all
from d2ljax.tasks.recsys import autorec_loss, rating_loss
from d2ljax.train.state import num_params


def test_matrix_factorization_at_the_books_size():
    mf = MatrixFactorization(30, 943, 1682, rngs=nnx.Rngs(0))
    assert num_params(mf) == 81_375  # the book's MF(30, 943, 1682): 943*30 + 1682*30 + 943 + 1682
    assert 0.008 < float(jnp.std(mf.P.embedding[...])) < 0.012  # init.Normal(0.01)
    user, item = jnp.array([0, 5, 942]), jnp.array([1681, 3, 0])
    out = mf(user, item)
    chex.assert_shape(out, (3,))
    p, q = mf.P.embedding[...][user], mf.Q.embedding[...][item]
    b_u, b_i = mf.user_bias.embedding[...][user, 0], mf.item_bias.embedding[...][item, 0]
    ref = (p * q).sum(1) + b_u + b_i
    chex.assert_trees_all_close(out, ref, rtol=1e-6)
    every = predict_all(mf)
    chex.assert_shape(every, (943, 1682))
    chex.assert_trees_all_close(every[user, item], out, rtol=1e-5, atol=1e-8)


def test_autorec_at_the_books_size():
    net = AutoRec(500, 943, 0.05, rngs=nnx.Rngs(params=0, dropout=1))
    assert num_params(net) == 944_443  # the book's AutoRec(500, 943): 943*500 + 500 + 500*943 + 943
    x = jnp.asarray(np.random.default_rng(0).integers(0, 6, (4, 943)), jnp.float32)
    net.eval()
    out = net(x)
    chex.assert_shape(out, (4, 943))
    chex.assert_trees_all_close(out, net(x))  # no dropout in eval mode
    hidden = 1 / (1 + jnp.exp(-(x @ net.encoder.kernel[...] + net.encoder.bias[...])))
    chex.assert_trees_all_close(
        out, hidden @ net.decoder.kernel[...] + net.decoder.bias[...], rtol=1e-5, atol=1e-6
    )
    net.train()
    assert not np.allclose(net(x), out)  # dropout 0.05 on the 500 hidden units


def test_neumf_at_the_books_size():
    net = NeuMF(10, 943, 1682, (10, 10, 10), rngs=nnx.Rngs(0))
    # the book's NeuMF(10, 943, 1682, [10, 10, 10]): embeddings 2 * (943 + 1682) * 10 = 52,500,
    # MLP 20*10+10 + 2 * (10*10+10) = 430, prediction Dense(1, no bias) on 20 inputs = 20
    assert num_params(net) == 52_950
    user, item = jnp.array([0, 942]), jnp.array([1681, 0])
    out = net(user, item)
    chex.assert_shape(out, (2,))
    assert bool(jnp.all((out > 0) & (out < 1)))  # sigmoid scores
    gmf = net.P.embedding[...][user] * net.Q.embedding[...][item]
    h = jnp.concatenate([net.U.embedding[...][user], net.V.embedding[...][item]], -1)
    for layer in net.mlp:
        h = jnp.maximum(h @ layer.kernel[...] + layer.bias[...], 0)
    ref = 1 / (1 + jnp.exp(-(jnp.concatenate([gmf, h], -1) @ net.prediction_layer.kernel[...])))
    chex.assert_trees_all_close(out, ref[:, 0], rtol=1e-6)


def test_caser_at_the_books_size():
    net = Caser(10, 943, 1682, L=5, rngs=nnx.Rngs(params=0, dropout=1))
    # the book's Caser(10, 943, 1682, L=5, d=16, d_prime=4): P 9,430 + Q 16,820 + vertical conv
    # 4*5+4 + horizontal convs 16*10*(1+2+3+4+5)+5*16 + fc (40+80)*10+10 + Q' 1682*20 + b 1,682
    assert num_params(net) == 65_286
    user, seq, item = jnp.array([0, 942]), jnp.array([[1, 2, 3, 4, 5], [0, 0, 7, 9, 1681]]), \
        jnp.array([1681, 0])
    net.eval()
    out = net(user, seq, item)
    chex.assert_shape(out, (2,))
    chex.assert_trees_all_close(out, net(user, seq, item))
    # the order of the history matters (the horizontal filters see it)
    assert not np.allclose(out, net(user, seq[:, ::-1], item))


def test_rating_loss_by_hand():
    def model(user, item):
        return jnp.array([1.0, 2.0, 3.0])

    batch = {"user": jnp.zeros(3, int), "item": jnp.zeros(3, int), "rating": jnp.array([2., 2, 5])}
    loss, sums = rating_loss(model, batch)
    assert float(loss) == pytest.approx(0.5 * (1 + 0 + 4) / 3)  # L2Loss: (r_hat - r)^2 / 2
    assert (float(sums["loss"]), float(sums["mse"]), float(sums["count"])) == (2.5, 5.0, 3.0)
    loss, sums = rating_loss(model, {**batch, "mask": jnp.array([1.0, 1.0, 0.0])})
    assert float(loss) == pytest.approx(0.25) and float(sums["count"]) == 2.0


def test_autorec_loss_by_hand():
    def model(x):
        return jnp.array([[1.0, 2.0], [3.0, 4.0]])

    y = jnp.array([[2.0, 0.0], [0.0, 5.0]])
    loss, sums = autorec_loss(model, {"x": y, "y": y})
    # book: L2Loss(pred * sign(y), y) = mean over users of (.)^2 / 2, mean over the batch
    # pred * sign(y) = [[1, 0], [0, 4]] -> squared errors [[1, 0], [0, 1]]
    assert float(loss) == pytest.approx(0.5 * (0.5 + 0.5) / 2)
    assert (float(sums["mse"]), float(sums["count"])) == (2.0, 2.0)  # two observed ratings
    loss, sums = autorec_loss(model, {"x": y, "y": y, "mask": jnp.array([1.0, 0.0])})
    assert float(loss) == pytest.approx(0.25) and float(sums["count"]) == 1.0
