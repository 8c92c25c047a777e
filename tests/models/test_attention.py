"""§11.3–11.6 attention modules: every NNX module equals the scratch math of d2ljax.nn.attention
with its weights (jit and no-jit), padded keys get zero weight, dropout acts in train mode only."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.models.attention import (
    AdditiveAttention,
    DotProductAttention,
    MultiHeadAttention,
    PositionalEncoding,
)
from d2ljax.nn import attention as A


def _rand(key, *shape):
    return jax.random.normal(jax.random.key(key), shape)


def _apply(module, jit, *args, **kwargs):
    """Call ``module`` eagerly, or inside ``jax.jit`` through ``nnx.split``/``nnx.merge``."""
    if not jit:
        return module(*args, **kwargs)
    graphdef, state = nnx.split(module)

    @jax.jit
    def f(state, args):
        return nnx.merge(graphdef, state, copy=True)(*args, **kwargs)

    return f(state, args)


@pytest.mark.parametrize("jit", [False, True])
def test_dot_product_attention_module_equals_scratch(jit):
    m = DotProductAttention(0.5, rngs=nnx.Rngs(0))
    m.eval()
    q, k, v, lens = _rand(1, 2, 1, 2), _rand(2, 2, 10, 2), _rand(3, 2, 10, 4), jnp.array([2, 6])
    out, w = _apply(m, jit, q, k, v, lens, return_weights=True)
    ref = A.dot_product_attention(q, k, v, lens)
    chex.assert_trees_all_close((out, w), ref, atol=1e-6)
    chex.assert_trees_all_close(_apply(m, jit, q, k, v, lens), ref[0], atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_additive_attention_module_equals_scratch(jit):
    m = AdditiveAttention(key_size=2, query_size=20, num_hiddens=8, dropout=0.1, rngs=nnx.Rngs(0))
    m.eval()
    q, k, v, lens = _rand(1, 2, 1, 20), _rand(2, 2, 10, 2), _rand(3, 2, 10, 4), jnp.array([2, 6])
    out, w = _apply(m, jit, q, k, v, lens, return_weights=True)
    ref = A.additive_attention(m.scratch_params(), q, k, v, lens)
    chex.assert_shape(out, (2, 1, 4))
    chex.assert_trees_all_close((out, w), ref, atol=1e-6)
    assert np.all(np.asarray(w[0, :, 2:]) == 0.0) and np.all(np.asarray(w[1, :, 6:]) == 0.0)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("use_bias", [False, True])
def test_multi_head_attention_module_equals_scratch(jit, use_bias):
    m = MultiHeadAttention(
        16, 4, 0.2, use_bias, rngs=nnx.Rngs(0), query_size=6, key_size=5, value_size=3
    )
    m.eval()
    q, k, v = _rand(1, 2, 4, 6), _rand(2, 2, 7, 5), _rand(3, 2, 7, 3)
    lens = jnp.array([3, 7])
    out, w = _apply(m, jit, q, k, v, lens, return_weights=True)
    ref = A.multi_head_attention(m.scratch_params(), q, k, v, 4, lens)
    chex.assert_shape((out, w), ((2, 4, 16), (2, 4, 4, 7)))
    chex.assert_trees_all_close((out, w), ref, atol=1e-5)
    assert set(m.scratch_params()) == (
        {"W_q", "W_k", "W_v", "W_o"} | ({"b_q", "b_k", "b_v", "b_o"} if use_bias else set())
    )
    # causal, jit and no-jit
    x = _rand(4, 2, 5, 16)
    m2 = MultiHeadAttention(16, 4, 0.0, use_bias, rngs=nnx.Rngs(1))
    out_c = _apply(m2, jit, x, x, x, causal=True)
    ref_c, _ = A.multi_head_attention(m2.scratch_params(), x, x, x, 4, causal=True)
    chex.assert_trees_all_close(out_c, ref_c, atol=1e-5)


def test_multi_head_attention_padded_keys_do_not_matter():
    m = MultiHeadAttention(8, 2, 0.0, rngs=nnx.Rngs(0))
    q, kv = _rand(0, 2, 3, 8), _rand(1, 2, 6, 8)
    lens = jnp.array([4, 2])
    kv2 = kv.at[0, 4:].set(100.0).at[1, 2:].set(-7.0)
    out, w = m(q, kv, kv, lens, return_weights=True)
    out2 = m(q, kv2, kv2, lens)
    chex.assert_trees_all_close(out, out2, atol=1e-5)
    assert np.all(np.asarray(w[0, ..., 4:]) == 0.0) and np.all(np.asarray(w[1, ..., 2:]) == 0.0)


def test_multi_head_attention_parameter_count_and_errors():
    m = MultiHeadAttention(100, 5, 0.5, rngs=nnx.Rngs(0))
    n = sum(x.size for x in jax.tree.leaves(nnx.state(m, nnx.Param)))
    assert n == 4 * 100 * 100  # book §11.5: four D x D projections, no bias
    mb = MultiHeadAttention(100, 5, 0.5, use_bias=True, rngs=nnx.Rngs(0))
    assert sum(x.size for x in jax.tree.leaves(nnx.state(mb, nnx.Param))) == 4 * (100 * 100 + 100)
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3, 0.0, rngs=nnx.Rngs(0))


def test_attention_dropout_acts_in_train_mode_only():
    m = MultiHeadAttention(8, 2, 0.5, rngs=nnx.Rngs(params=0, dropout=1))
    x = _rand(0, 2, 5, 8)
    ref, _ = A.multi_head_attention(m.scratch_params(), x, x, x, 2)
    train_out = m(x, x, x)
    assert not np.allclose(train_out, ref, atol=1e-4)
    m.eval()
    chex.assert_trees_all_close(m(x, x, x), ref, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_positional_encoding_module_adds_table_rows_at_offset(jit):
    pe = PositionalEncoding(8, 0.3, max_len=20, rngs=nnx.Rngs(0))
    pe.eval()
    x = _rand(0, 2, 4, 8)
    P = A.positional_encoding(20, 8)
    chex.assert_trees_all_close(_apply(pe, jit, x), x + P[None, :4], atol=1e-6)
    chex.assert_trees_all_close(_apply(pe, jit, x, 5), x + P[None, 5:9], atol=1e-6)
    # per-example offsets (one token each, as in incremental decoding)
    x1 = x[:, :1]
    out = _apply(pe, jit, x1, jnp.array([3, 11]))
    chex.assert_trees_all_close(out, x1 + P[jnp.array([3, 11])][:, None], atol=1e-6)
    assert "P" not in nnx.state(pe, nnx.Param)  # the table is not trained
    with pytest.raises(ValueError, match="max_len"):
        pe(_rand(0, 1, 21, 8))
    with pytest.raises(ValueError, match="features"):
        pe(_rand(0, 1, 3, 6))
