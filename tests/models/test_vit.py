"""§11.8 Vision Transformer: shapes, parameter count, patch embedding = patches x matrix,
pre-norm residual blocks, clear input errors, one tiny end-to-end run."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from layer_counts import conv, dense

from d2ljax.models import get_model, list_models
from d2ljax.models.vit import PatchEmbedding, ViT, ViTBlock, ViTMLP, num_params_formula, patchify

SMALL = dict(img_size=8, patch_size=4, num_hiddens=8, mlp_num_hiddens=16, num_heads=2, num_blks=2)


def _num_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _patch_reference(x_BHWC, kernel, bias, p):
    """Loop over the patches: flatten each (row, column, channel order) and multiply."""
    x, w = np.asarray(x_BHWC, np.float64), np.asarray(kernel, np.float64)
    B, H, W, C = x.shape
    rows = []
    for i in range(0, H, p):
        for j in range(0, W, p):
            rows.append(x[:, i : i + p, j : j + p, :].reshape(B, -1) @ w.reshape(p * p * C, -1))
    return np.stack(rows, axis=1) + np.asarray(bias)


class PatchEmbeddingTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_equals_reshape_and_matmul_reference(self):
        for impl in ("matmul", "conv"):
            pe = PatchEmbedding(12, 4, 5, in_channels=3, impl=impl, rngs=nnx.Rngs(1))
            pe.bias.set_value(jax.random.normal(jax.random.key(2), (5,)))
            x = jax.random.uniform(jax.random.key(3), (2, 12, 12, 3))
            out = self.variant(lambda x, pe=pe: pe(x))(x)
            chex.assert_shape(out, (2, 9, 5))
            ref = _patch_reference(x, pe.kernel[...], pe.bias[...], 4)
            np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)

    def test_book_shape_and_patch_order(self):
        # The book's check: 96x96 images, 16x16 patches -> 36 patches of 512.
        pe = PatchEmbedding(96, 16, 512, in_channels=3, rngs=nnx.Rngs(0))
        chex.assert_shape(pe(jnp.zeros((4, 96, 96, 3))), (4, 36, 512))
        # patchify: patch k = row k // 3, column k % 3 of a 6x6 image of 2x2 patches.
        x = jnp.arange(36.0).reshape(1, 6, 6, 1)
        patches = patchify(x, 2)
        chex.assert_shape(patches, (1, 9, 4))
        np.testing.assert_array_equal(patches[0, 5], [16, 17, 22, 23])

    def test_bad_sizes_are_clear_errors(self):
        with pytest.raises(ValueError, match="multiple of patch_size"):
            PatchEmbedding(30, 4, 8, rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match="impl"):
            PatchEmbedding(28, 4, 8, impl="fft", rngs=nnx.Rngs(0))
        pe = PatchEmbedding(28, 4, 8, rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match=r"\[B, 28, 28, 1\]"):
            pe(jnp.zeros((2, 32, 32, 1)))


class ViTTest(chex.TestCase):
    def test_parameter_count_at_the_book_setting(self):
        # Written out from the book's layers: patch conv (1 channel), <cls>, 37 positions,
        # per block 2 LayerNorms + 4 bias-free DxD projections + the MLP, head LN + dense.
        D, M = 512, 2048
        block = 2 * 2 * D + 4 * D * D + dense(D, M) + dense(M, D)
        expected = conv(16, 1, D) + D + 37 * D + 2 * block + 2 * D + dense(D, 10)
        assert expected == 6_457_866
        model = nnx.eval_shape(lambda: ViT(rngs=nnx.Rngs(0)))  # no memory, shapes only
        assert _num_params(model) == expected == num_params_formula()
        small = ViT(**SMALL, use_bias=True, num_classes=7, rngs=nnx.Rngs(0))
        expected_small = num_params_formula(8, 4, 8, 16, 2, use_bias=True, num_classes=7)
        assert _num_params(small) == expected_small

    @chex.variants(with_jit=True, without_jit=True)
    def test_output_shapes(self):
        model = ViT(**SMALL, rngs=nnx.Rngs(0))
        model.eval()
        x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1))
        chex.assert_shape(self.variant(model)(x), (3, 10))
        chex.assert_shape(model.features(x), (3, 5, 8))  # 4 patches + <cls>
        rgb = ViT((8, 12), 4, 8, 16, 2, 1, in_channels=3, num_classes=4, rngs=nnx.Rngs(0))
        chex.assert_shape(rgb.features(jnp.ones((2, 8, 12, 3))), (2, 7, 8))

    def test_block_keeps_shape_and_is_prenorm_residual(self):
        # The book's check: ViTBlock(24, 48, 8, 0.5) on (2, 100, 24) keeps the shape.
        blk = ViTBlock(24, 48, 8, 0.5, rngs=nnx.Rngs(0))
        blk.eval()
        x = jax.random.normal(jax.random.key(1), (2, 100, 24))
        chex.assert_shape(blk(x), x.shape)
        # With the attention output projection and the MLP's last layer zeroed, each sub-layer
        # adds nothing: the block is the identity (the residual path has no norm on it).
        blk.attention.W_o.kernel.set_value(jnp.zeros((24, 24)))
        blk.mlp.dense2.kernel.set_value(jnp.zeros((48, 24)))
        blk.mlp.dense2.bias.set_value(jnp.zeros((24,)))
        chex.assert_trees_all_close(blk(x), x)

    def test_mlp_and_dropout_modes(self):
        mlp = ViTMLP(8, 16, 4, 0.5, rngs=nnx.Rngs(params=0, dropout=1))
        x = jnp.ones((2, 3, 8))
        chex.assert_shape(mlp(x), (2, 3, 4))
        assert not np.allclose(mlp(x), mlp(x))  # train mode: fresh dropout masks
        mlp.eval()
        chex.assert_trees_all_close(mlp(x), mlp(x))

    def test_errors_and_registry(self):
        assert "vit" in list_models()
        assert isinstance(get_model("vit", **SMALL, rngs=nnx.Rngs(0)), ViT)
        with pytest.raises(ValueError, match="divisible by num_heads"):
            ViT(8, 4, 30, 64, 4, 1, rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match=r"\[B, 8, 8, 1\]"):
            ViT(**SMALL, rngs=nnx.Rngs(0))(jnp.zeros((2, 96, 96, 1)))


def test_vit_smoke_experiment(fashion_mnist, tmp_path):
    """The ``vit:smoke`` config trains end to end (256 images, one epoch)."""
    from d2ljax.cli import load_config
    from d2ljax.experiment import run

    cfg = load_config("vit:smoke")
    cfg.data.limit = 256
    res = run(cfg, tmp_path, progress=False)
    assert np.isfinite(res.history["train_loss"][-1])
    assert 0.0 <= res.history["val_accuracy"][-1] <= 1.0
