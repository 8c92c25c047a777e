"""The blocked, batch-minor layout equals the usual NHWC convolution and pooling."""

import chex
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from d2ljax.nn.blocked import block_avg_pool2, block_conv, from_blocks, reblock, to_blocks


def _random(shape, seed):
    return jax.random.normal(jax.random.key(seed), shape)


def _lax_conv(x, w, b):
    dims = ("NHWC", "HWIO", "NHWC")
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=dims) + b


def test_to_blocks_round_trip():
    x = _random((3, 8, 12, 2), 0)
    chex.assert_trees_all_equal(from_blocks(to_blocks(x, 4), 4), x)
    padded = from_blocks(to_blocks(x, 2, padding=2), 2)
    chex.assert_trees_all_equal(padded[:, 2:-2, 2:-2], x)
    assert float(jnp.abs(padded[:, :2]).max()) == 0.0
    with pytest.raises(ValueError, match="divide into 4x4 blocks"):
        to_blocks(_random((1, 6, 6, 1), 0), 4)


def test_reblock_groups_single_pixels_into_blocks():
    x = _random((3, 8, 12, 2), 1)  # [B, H, W, C]
    single = to_blocks(x, 1)  # [C, H, W, B]
    chex.assert_trees_all_equal(reblock(single, 2), to_blocks(x, 2))
    chex.assert_trees_all_equal(reblock(single, 4), to_blocks(x, 4))
    with pytest.raises(ValueError, match="divide into 4x4 blocks"):
        reblock(to_blocks(_random((1, 6, 6, 1), 0), 1), 4)


@pytest.mark.parametrize(
    "hw, k, cin, cout, block, pad",
    [
        (28, 5, 1, 6, 2, 2),
        (28, 5, 1, 6, 4, 2),
        (14, 5, 6, 16, 2, 0),
        (10, 3, 3, 4, 2, 0),
        (12, 5, 2, 5, 4, 0),
    ],
)
@pytest.mark.parametrize("jit", [False, True])
def test_block_conv_equals_lax_conv_and_its_gradients(hw, k, cin, cout, block, pad, jit):
    x = _random((5, hw, hw, cin), 1)
    w = _random((k, k, cin, cout), 2)
    b = _random((cout,), 3)

    def blocked(x, w, b):
        return from_blocks(block_conv(to_blocks(x, block, pad), w, b, block), block)

    def reference(x, w, b):
        return _lax_conv(jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))), w, b)

    f = jax.jit(blocked) if jit else blocked
    chex.assert_trees_all_close(f(x, w, b), reference(x, w, b), rtol=1e-5, atol=1e-4)
    loss = lambda fn: lambda *a: jnp.sum(jnp.sin(fn(*a)))  # noqa: E731
    got = jax.grad(loss(f), argnums=(0, 1, 2))(x, w, b)
    want = jax.grad(loss(reference), argnums=(0, 1, 2))(x, w, b)
    chex.assert_trees_all_close(got, want, rtol=1e-4, atol=1e-3)


def test_block_avg_pool2_equals_nnx_avg_pool():
    x = _random((3, 8, 8, 5), 4)
    for block in (2, 4):
        got = from_blocks(block_avg_pool2(to_blocks(x, block), block), block // 2)
        chex.assert_trees_all_close(got, nnx.avg_pool(x, (2, 2), (2, 2)), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="even block"):
        block_avg_pool2(to_blocks(_random((1, 3, 3, 1), 0), 3), 3)


def test_block_conv_checks_its_input():
    x = to_blocks(_random((1, 8, 8, 2), 0), 4)
    with pytest.raises(ValueError, match="4x4 blocks of 3 channels"):
        block_conv(x, _random((3, 3, 3, 4), 1), None, 4)
    with pytest.raises(ValueError, match="must divide into 4x4 blocks"):
        block_conv(x, _random((3, 3, 2, 4), 1), None, 4)
