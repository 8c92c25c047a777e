"""The shared pre-norm Transformer block: the ViT's and the GPT's blocks are it, and causal
masking makes each position see only the positions before it."""

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.attention import MultiHeadAttention
from d2ljax.models.gpt import GPTBlock
from d2ljax.models.vit import ViTBlock, ViTMLP
from d2ljax.nn.prenorm import GeluMLP, PreNormBlock


def _tree(model):
    return jax.tree.map(jnp.shape, nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def test_vit_and_gpt_blocks_are_the_shared_block():
    assert ViTMLP is GeluMLP
    shared = PreNormBlock(24, 48, 8, 0.0, attention=MultiHeadAttention, rngs=nnx.Rngs(0))
    vit = ViTBlock(24, 48, 8, 0.0, rngs=nnx.Rngs(0))
    gpt = GPTBlock(24, 48, 8, 0.0, rngs=nnx.Rngs(0))
    assert isinstance(vit, PreNormBlock) and isinstance(gpt, PreNormBlock)
    assert _tree(vit) == _tree(shared) == _tree(gpt)
    assert gpt.causal and not vit.causal
    x = jax.random.normal(jax.random.key(1), (2, 7, 24))
    chex.assert_trees_all_equal(vit(x), shared(x))  # same seed, same draws, same numbers


def test_causal_block_ignores_later_positions():
    blk = PreNormBlock(16, 32, 4, 0.0, attention=MultiHeadAttention, causal=True, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(2), (2, 6, 16))
    changed = x.at[:, 4:].set(jax.random.normal(jax.random.key(3), (2, 2, 16)))
    chex.assert_trees_all_close(blk(x)[:, :4], blk(changed)[:, :4], rtol=1e-6, atol=1e-6)
    assert not jnp.allclose(blk(x)[:, 4:], blk(changed)[:, 4:])
    chex.assert_shape(blk(x), (2, 6, 16))
