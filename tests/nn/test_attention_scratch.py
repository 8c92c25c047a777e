"""§11.2–11.6 attention from scratch: masking, scoring functions, multi-head, positional encoding,
Nadaraya–Watson, checked against formulas written out here in NumPy."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from d2ljax.nn import attention as A


def _rand(key, *shape):
    return jax.random.normal(jax.random.key(key), shape)


# --- masked softmax ---------------------------------------------------------------------------


def test_masked_softmax_gives_padded_keys_exactly_zero_weight():
    scores = _rand(0, 2, 3, 5)
    w = A.masked_softmax(scores, jnp.array([2, 4]))
    assert np.all(np.asarray(w[0, :, 2:]) == 0.0)
    assert np.all(np.asarray(w[1, :, 4:]) == 0.0)
    assert np.all(np.asarray(w[0, :, :2]) > 0) and np.all(np.asarray(w[1, :, :4]) > 0)
    chex.assert_trees_all_close(w.sum(-1), jnp.ones((2, 3)), atol=1e-6)
    # The kept entries are the plain softmax of the kept scores.
    chex.assert_trees_all_close(w[0, :, :2], jax.nn.softmax(scores[0, :, :2], -1), atol=1e-6)


def test_masked_softmax_per_query_lengths_and_mask():
    scores = _rand(1, 2, 3, 4)
    lens = jnp.array([[1, 2, 3], [4, 1, 2]])
    w = np.asarray(A.masked_softmax(scores, lens))
    for b in range(2):
        for q in range(3):
            n = int(lens[b, q])
            assert np.all(w[b, q, n:] == 0.0)
            np.testing.assert_allclose(w[b, q, :n].sum(), 1.0, atol=1e-6)
    mask = jnp.array([True, False, True, True])
    w2 = np.asarray(A.masked_softmax(scores, mask=mask))
    assert np.all(w2[..., 1] == 0.0)
    # valid_lens and mask combine.
    w3 = np.asarray(A.masked_softmax(scores, jnp.array([3, 3]), mask=mask))
    assert np.all(w3[..., 1] == 0.0) and np.all(w3[..., 3] == 0.0)


def test_masked_softmax_broadcasts_valid_lens_over_heads():
    scores = _rand(2, 2, 4, 3, 5)  # (B, H, Q, K)
    w = A.masked_softmax(scores, jnp.array([1, 3]))
    assert np.all(np.asarray(w[0, :, :, 1:]) == 0.0)
    assert np.all(np.asarray(w[1, :, :, 3:]) == 0.0)


def test_masked_softmax_without_mask_is_softmax_and_bad_lens_are_errors():
    scores = _rand(3, 2, 3, 4)
    chex.assert_trees_all_close(A.masked_softmax(scores), jax.nn.softmax(scores, -1))
    with pytest.raises(ValueError, match="valid_lens"):
        A.masked_softmax(scores, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="valid_lens"):
        A.masked_softmax(scores, jnp.ones((2, 3, 4)))


# --- scoring functions ------------------------------------------------------------------------


def _np_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_dot_product_attention_matches_formula():
    q, k, v = _rand(4, 2, 3, 8), _rand(5, 2, 6, 8), _rand(6, 2, 6, 5)
    out, w = A.dot_product_attention(q, k, v, jnp.array([6, 2]))
    s = np.einsum("bqd,bkd->bqk", q, k) / math.sqrt(8)
    s[1, :, 2:] = -1e6
    w_ref = _np_softmax(s)
    chex.assert_trees_all_close(w, w_ref, atol=1e-5)
    chex.assert_trees_all_close(out, w_ref @ np.asarray(v), atol=1e-5)
    with pytest.raises(ValueError, match="differ in size"):
        A.dot_product_attention(q, _rand(0, 2, 6, 7), v)


def test_dot_product_attention_applies_dropout_to_weights():
    q, k, v = _rand(4, 1, 2, 4), _rand(5, 1, 3, 4), _rand(6, 1, 3, 2)
    out, w = A.dot_product_attention(q, k, v, dropout=lambda w: 2 * w)
    chex.assert_trees_all_close(out, 2 * (w @ v), atol=1e-6)


def test_additive_attention_matches_formula():
    keys = jax.random.split(jax.random.key(7), 3)
    params = {
        "W_q": jax.random.normal(keys[0], (20, 8)),
        "W_k": jax.random.normal(keys[1], (2, 8)),
        "w_v": jax.random.normal(keys[2], (8, 1)),
    }
    q, k, v = _rand(8, 2, 1, 20), _rand(9, 2, 10, 2), _rand(10, 2, 10, 4)
    out, w = A.additive_attention(params, q, k, v, jnp.array([2, 6]))
    P = {n: np.asarray(a) for n, a in params.items()}
    feats = np.tanh((np.asarray(q) @ P["W_q"])[:, :, None] + (np.asarray(k) @ P["W_k"])[:, None])
    s = (feats @ P["w_v"])[..., 0]
    s[0, :, 2:] = -1e6
    s[1, :, 6:] = -1e6
    w_ref = _np_softmax(s)
    chex.assert_shape(out, (2, 1, 4))
    chex.assert_trees_all_close(w, w_ref, atol=1e-5)
    chex.assert_trees_all_close(out, w_ref @ np.asarray(v), atol=1e-5)


# --- multi-head attention ---------------------------------------------------------------------


def _mha_params(key, d_in, d, bias=False):
    ks = jax.random.split(jax.random.key(key), 8)
    p = {f"W_{n}": 0.3 * jax.random.normal(ks[i], (d_in if n != "o" else d, d))
         for i, n in enumerate("qkvo")}
    if bias:
        p.update({f"b_{n}": 0.1 * jax.random.normal(ks[4 + i], (d,)) for i, n in enumerate("qkvo")})
    return p


@pytest.mark.parametrize("bias", [False, True])
def test_multi_head_attention_is_per_head_attention_on_projections(bias):
    H, d = 4, 16
    p = _mha_params(0, 12, d, bias)
    q, kv = _rand(1, 2, 3, 12), _rand(2, 2, 5, 12)
    lens = jnp.array([5, 2])
    out, w = A.multi_head_attention(p, q, kv, kv, H, lens)
    chex.assert_shape(out, (2, 3, d))
    chex.assert_shape(w, (2, H, 3, 5))

    def lin(n, x):
        return np.asarray(x) @ np.asarray(p[f"W_{n}"]) + (np.asarray(p[f"b_{n}"]) if bias else 0)

    Q, K, V = lin("q", q), lin("k", kv), lin("v", kv)
    heads = []
    for h in range(H):
        sl = slice(h * d // H, (h + 1) * d // H)
        o_h, w_h = A.dot_product_attention(Q[..., sl], K[..., sl], V[..., sl], lens)
        chex.assert_trees_all_close(w[:, h], w_h, atol=1e-5)
        heads.append(np.asarray(o_h))
    chex.assert_trees_all_close(out, lin("o", np.concatenate(heads, -1)), atol=1e-4)
    assert np.all(np.asarray(w[1, :, :, 2:]) == 0.0)


def test_causal_mask_earlier_outputs_ignore_future_tokens():
    p = _mha_params(3, 8, 8)
    x = _rand(4, 2, 6, 8)
    x2 = x.at[:, 4:].set(_rand(5, 2, 2, 8))  # change positions 4, 5
    out, w = A.multi_head_attention(p, x, x, x, 2, causal=True)
    out2, _ = A.multi_head_attention(p, x2, x2, x2, 2, causal=True)
    chex.assert_trees_all_close(out[:, :4], out2[:, :4], atol=1e-6)
    assert not np.allclose(out[:, 4:], out2[:, 4:])
    assert np.all(np.asarray(w)[..., np.triu_indices(6, 1)[0], np.triu_indices(6, 1)[1]] == 0)
    # Without the mask the earlier positions do see the change.
    out3, _ = A.multi_head_attention(p, x, x, x, 2)
    out4, _ = A.multi_head_attention(p, x2, x2, x2, 2)
    assert not np.allclose(out3[:, :4], out4[:, :4])


def test_causal_mask_aligns_queries_to_the_last_positions():
    keep = np.asarray(A.attention_mask(2, 4, causal=True))
    np.testing.assert_array_equal(keep, [[1, 1, 1, 0], [1, 1, 1, 1]])


def test_split_and_merge_heads_round_trip_and_errors():
    x = _rand(0, 2, 3, 8)
    chex.assert_shape(A.split_heads(x, 4), (2, 4, 3, 2))
    chex.assert_trees_all_equal(A.merge_heads(A.split_heads(x, 4)), x)
    with pytest.raises(ValueError, match="divisible"):
        A.split_heads(x, 3)
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        A.multi_head_attention(_mha_params(0, 8, 8), x[0], x[0], x[0], 2)


# --- positional encoding ----------------------------------------------------------------------


def test_positional_encoding_hand_checked_values():
    P = np.asarray(A.positional_encoding(60, 8))
    assert P.shape == (60, 8)
    np.testing.assert_allclose(P[0], [0, 1, 0, 1, 0, 1, 0, 1], atol=1e-7)
    np.testing.assert_allclose(P[1, :2], [math.sin(1), math.cos(1)], atol=1e-6)
    # column 2j uses 10000^(2j/d): j=1 -> 10000^(1/4) = 10, j=2 -> 100, j=3 -> 1000.
    np.testing.assert_allclose(P[3, 2:4], [math.sin(0.3), math.cos(0.3)], atol=1e-6)
    np.testing.assert_allclose(P[30, 4:6], [math.sin(0.3), math.cos(0.3)], atol=1e-6)
    np.testing.assert_allclose(P[59, 6], math.sin(0.059), atol=1e-6)
    np.testing.assert_allclose((P**2).reshape(60, 4, 2).sum(-1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="even"):
        A.positional_encoding(10, 7)


# --- Nadaraya-Watson --------------------------------------------------------------------------


def test_nadaraya_watson_is_gaussian_kernel_regression():
    x = np.array([0.0, 1.0, 2.0, 4.0], np.float32)
    y = np.array([1.0, 3.0, -1.0, 2.0], np.float32)
    q = np.array([0.5, 3.0], np.float32)
    y_hat, w = A.nadaraya_watson(x, y, q)
    k = np.exp(-((q[:, None] - x[None]) ** 2) / 2)
    w_ref = k / k.sum(1, keepdims=True)
    chex.assert_trees_all_close(w, w_ref, atol=1e-6)
    chex.assert_trees_all_close(y_hat, w_ref @ y, atol=1e-5)
    # A sharp kernel (large w) returns the nearest training target.
    y_sharp, _ = A.nadaraya_watson(x, y, jnp.array([0.1, 3.9]), w=50.0)
    chex.assert_trees_all_close(y_sharp, jnp.array([1.0, 2.0]), atol=1e-4)
    with pytest.raises(ValueError, match="differ in length"):
        A.nadaraya_watson(x, y[:3], q)
