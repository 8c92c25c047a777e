"""Scratch convolution and pooling (§7.2-§7.5) against the book's examples and lax / nnx."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from flax import nnx

from d2ljax.nn import conv as C

NHWC = ("NHWC", "HWIO", "NHWC")


def _normal(seed, shape):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _lax_pads(padding, in_hw, window, stride):
    """Our padding spellings in lax's ``[(lo, hi), (lo, hi)]`` (strings pass through)."""
    if isinstance(padding, str):
        return padding
    return [tuple(p) for p in C._padding(padding, in_hw, window, stride)]


def _lax_conv(x_BHWC, w_hwIO, b_O=None, stride=1, padding=0):
    stride = C._pair(stride, "stride")
    pads = _lax_pads(padding, x_BHWC.shape[1:3], w_hwIO.shape[:2], stride)
    y = jax.lax.conv_general_dilated(x_BHWC, w_hwIO, stride, pads, dimension_numbers=NHWC)
    return y if b_O is None else y + b_O


# Padding spellings: int, (ph, pw), ((top, bottom), (left, right)), strings.
CONV_CASES = [
    dict(B=2, H=8, W=8, I=1, O=1, k=(3, 3), stride=1, padding=0),
    dict(B=2, H=28, W=28, I=1, O=6, k=(5, 5), stride=1, padding=2),
    dict(B=3, H=14, W=14, I=6, O=16, k=(5, 5), stride=1, padding=0),
    dict(B=2, H=8, W=8, I=3, O=4, k=(3, 3), stride=2, padding=1),
    dict(B=2, H=8, W=8, I=2, O=3, k=(5, 3), stride=1, padding=(2, 1)),
    dict(B=1, H=8, W=8, I=2, O=3, k=(3, 5), stride=(3, 4), padding=(0, 1)),
    dict(B=2, H=9, W=7, I=3, O=2, k=(2, 3), stride=(2, 1), padding=((1, 0), (0, 2))),
    dict(B=2, H=9, W=7, I=2, O=5, k=(3, 3), stride=2, padding="SAME"),
    dict(B=2, H=9, W=7, I=2, O=5, k=(4, 2), stride=1, padding="VALID"),
]


class Corr2dTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_book_example(self):
        # §7.2.1: X = [[0, 1, 2], [3, 4, 5], [6, 7, 8]], K = [[0, 1], [2, 3]].
        X = jnp.arange(9.0).reshape(3, 3)
        K = jnp.array([[0.0, 1.0], [2.0, 3.0]])
        chex.assert_trees_all_close(
            self.variant(C.corr2d)(X, K), jnp.array([[19.0, 25.0], [37.0, 43.0]])
        )

    def test_edge_detection(self):
        # §7.2.2: [[1, -1]] marks white->black with 1 and black->white with -1 ...
        X, Y = C.edge_detection_data()
        chex.assert_shape(Y, (6, 7))
        row = jnp.array([0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0])
        chex.assert_trees_all_close(Y, jnp.tile(row, (6, 1)))
        # ... and sees no horizontal edges: on the transposed image it gives all zeros.
        chex.assert_trees_all_close(C.corr2d(X.T, jnp.array([[1.0, -1.0]])), jnp.zeros((8, 5)))

    @chex.variants(with_jit=True, without_jit=True)
    def test_equals_lax_and_grads(self):
        X, K = _normal(0, (7, 9)), _normal(1, (3, 2))

        def lax_corr2d(X, K):
            return _lax_conv(X[None, :, :, None], K[:, :, None, None])[0, :, :, 0]

        ref = lax_corr2d(X, K)
        chex.assert_trees_all_close(self.variant(C.corr2d)(X, K), ref, rtol=1e-5, atol=1e-5)
        w = _normal(2, ref.shape)
        grads = self.variant(jax.grad(lambda X, K: jnp.sum(w * C.corr2d(X, K)), argnums=(0, 1)))
        ref_grads = jax.grad(lambda X, K: jnp.sum(w * lax_corr2d(X, K)), argnums=(0, 1))(X, K)
        chex.assert_trees_all_close(grads(X, K), ref_grads, rtol=1e-5, atol=1e-5)

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="2-D"):
            C.corr2d(jnp.ones((2, 3, 3)), jnp.ones((2, 2)))
        with pytest.raises(ValueError, match="larger than the padded input"):
            C.corr2d(jnp.ones((2, 2)), jnp.ones((3, 3)))


class MultiChannelTest(chex.TestCase):
    X_CHW = jnp.array([[[0.0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]])
    K_Chw = jnp.array([[[0.0, 1], [2, 3]], [[1.0, 2], [3, 4]]])

    @chex.variants(with_jit=True, without_jit=True)
    def test_multi_in_book_example(self):
        # §7.4.1.
        out = self.variant(C.corr2d_multi_in)(self.X_CHW, self.K_Chw)
        chex.assert_trees_all_close(out, jnp.array([[56.0, 72.0], [104.0, 120.0]]))

    @chex.variants(with_jit=True, without_jit=True)
    def test_multi_in_out_book_example_and_lax(self):
        # §7.4.2: K, K + 1, K + 2 stacked into three output channels.
        K_OChw = jnp.stack([self.K_Chw, self.K_Chw + 1, self.K_Chw + 2])
        out = self.variant(C.corr2d_multi_in_out)(self.X_CHW, K_OChw)
        chex.assert_shape(out, (3, 2, 2))
        chex.assert_trees_all_close(out[0], jnp.array([[56.0, 72.0], [104.0, 120.0]]))
        chex.assert_trees_all_close(out[1], jnp.array([[76.0, 100.0], [148.0, 172.0]]))
        chex.assert_trees_all_close(out[2], jnp.array([[96.0, 128.0], [192.0, 224.0]]))
        X, K = _normal(0, (3, 8, 7)), _normal(1, (4, 3, 3, 2))
        ref = jax.lax.conv_general_dilated(
            X[None], K, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
        )[0]
        chex.assert_trees_all_close(
            self.variant(C.corr2d_multi_in_out)(X, K), ref, rtol=1e-5, atol=1e-5
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_1x1_as_matmul_equals_general(self):
        # §7.4.3: X ~ N(0, 1) [3, 3, 3], K ~ N(0, 1) [2, 3, 1, 1].
        X, K = _normal(0, (3, 3, 3)), _normal(1, (2, 3, 1, 1))
        Y1 = self.variant(C.corr2d_multi_in_out_1x1)(X, K)
        Y2 = C.corr2d_multi_in_out(X, K)
        chex.assert_shape(Y1, (2, 3, 3))
        chex.assert_trees_all_close(Y1, Y2, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(C.corr2d_multi_in_out_1x1(X, K[:, :, 0, 0]), Y2, atol=1e-6)

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="same C"):
            C.corr2d_multi_in(jnp.ones((2, 4, 4)), jnp.ones((3, 2, 2)))
        with pytest.raises(ValueError, match="1x1 kernel"):
            C.corr2d_multi_in_out_1x1(jnp.ones((2, 4, 4)), jnp.ones((3, 2, 2, 1)))


class ShapeArithmeticTest(parameterized.TestCase):
    def test_book_examples(self):
        # §7.3: 8x8 input.
        assert C.conv_output_shape(8, 3, 2, 1) == 8  # 3x3 kernel, padding 1 on each side
        assert (C.conv_output_shape(8, 5, 4), C.conv_output_shape(8, 3, 2)) == (8, 8)
        assert C.conv_output_shape(8, 3, 2, 2) == 4  # padding 1, stride 2
        # kernel (3, 5), padding (0, 1), stride (3, 4) -> (2, 2)
        assert (C.conv_output_shape(8, 3, 0, 3), C.conv_output_shape(8, 5, 2, 4)) == (2, 2)

    @parameterized.parameters(*[(c,) for c in CONV_CASES])
    def test_matches_real_conv(self, case):
        x = jnp.zeros((case["B"], case["H"], case["W"], case["I"]))
        w = jnp.zeros((*case["k"], case["I"], case["O"]))
        stride = C._pair(case["stride"], "stride")
        (pt, pb), (pl, pr) = C._padding(case["padding"], (case["H"], case["W"]), case["k"], stride)
        expected = (
            case["B"],
            C.conv_output_shape(case["H"], case["k"][0], pt + pb, stride[0]),
            C.conv_output_shape(case["W"], case["k"][1], pl + pr, stride[1]),
            case["O"],
        )
        assert _lax_conv(x, w, stride=case["stride"], padding=case["padding"]).shape == expected
        assert C.conv2d(x, w, stride=case["stride"], padding=case["padding"]).shape == expected

    def test_errors(self):
        with pytest.raises(ValueError, match="larger than the padded input"):
            C.conv_output_shape(3, 5, 1, 1)
        with pytest.raises(ValueError, match="s >= 1"):
            C.conv_output_shape(8, 3, 0, 0)
        with pytest.raises(TypeError, match="integer"):
            C.conv_output_shape(8, 2.5)


class Conv2dTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*[(c,) for c in CONV_CASES])
    def test_equals_lax_values_and_grads(self, case):
        x = _normal(0, (case["B"], case["H"], case["W"], case["I"]))
        w = _normal(1, (*case["k"], case["I"], case["O"]))
        b = _normal(2, (case["O"],))
        kw = dict(stride=case["stride"], padding=case["padding"])
        ref = _lax_conv(x, w, b, **kw)
        ours = self.variant(lambda x, w, b: C.conv2d(x, w, b, **kw))(x, w, b)
        chex.assert_trees_all_close(ours, ref, rtol=1e-5, atol=1e-4)
        c = _normal(3, ref.shape)

        def grads(f):
            return jax.grad(lambda x, w, b: jnp.sum(c * f(x, w, b)), argnums=(0, 1, 2))

        ours_g = self.variant(grads(lambda x, w, b: C.conv2d(x, w, b, **kw)))(x, w, b)
        ref_g = grads(lambda x, w, b: _lax_conv(x, w, b, **kw))(x, w, b)
        chex.assert_trees_all_close(ours_g, ref_g, rtol=1e-4, atol=1e-4)

    @chex.variants(with_jit=True, without_jit=True)
    def test_equals_nnx_conv(self):
        for padding, strides, (I, O) in [(2, 1, (1, 6)), (0, 1, (6, 16)), (1, 2, (3, 8))]:
            layer = nnx.Conv(I, O, (5, 5), strides=strides, padding=padding, rngs=nnx.Rngs(0))
            layer.bias.set_value(_normal(4, (O,)))
            x = _normal(5, (2, 14, 14, I))
            ours = self.variant(
                lambda x, w, b, s=strides, p=padding: C.conv2d(x, w, b, stride=s, padding=p)
            )(x, layer.kernel[...], layer.bias[...])
            chex.assert_trees_all_close(ours, layer(x), rtol=1e-5, atol=1e-4)

    def test_bias_optional_and_errors(self):
        x, w = _normal(0, (1, 6, 6, 2)), _normal(1, (3, 3, 2, 4))
        chex.assert_trees_all_close(C.conv2d(x, w), _lax_conv(x, w), rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
            C.conv2d(x, _normal(1, (3, 3, 3, 4)))
        with pytest.raises(ValueError, match="kernel must be"):
            C.conv2d(x, jnp.ones((3, 3, 2)))
        with pytest.raises(ValueError, match="padding"):
            C.conv2d(x, w, padding="FULL")

    def test_extract_patches(self):
        x = jnp.arange(2 * 5 * 6 * 3, dtype=jnp.float32).reshape(2, 5, 6, 3)
        p = C.extract_patches(x, (2, 3), stride=(1, 2), padding=1)
        chex.assert_shape(p, (2, 6, 3, 6, 3))
        xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        # Output (a, b), kernel offset (i, j) sees padded pixel (a + i, 2 b + j).
        chex.assert_trees_all_equal(p[1, 4, 2, 1 * 3 + 2], xp[1, 5, 6])


class Conv2dToeplitzTest(chex.TestCase):
    CASES = [
        dict(shape=(3, 28, 28, 1), k=(5, 5), O=6, padding=2, block=None),
        dict(shape=(3, 14, 14, 6), k=(5, 5), O=16, padding=0, block=None),
        dict(shape=(2, 9, 11, 3), k=(3, 3), O=4, padding=1, block=1),
        dict(shape=(2, 9, 11, 3), k=(3, 3), O=4, padding=1, block=11),
        dict(shape=(2, 9, 11, 3), k=(2, 3), O=4, padding=0, block=None),
        dict(shape=(2, 7, 8, 2), k=(3, 3), O=3, padding=((1, 0), (2, 1)), block=None),
        dict(shape=(2, 7, 8, 2), k=(3, 3), O=3, padding="SAME", block=2),
    ]

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*[(c,) for c in CASES])
    def test_equals_lax_values_and_grads(self, case):
        x = _normal(0, case["shape"])
        w = _normal(1, (*case["k"], case["shape"][-1], case["O"]))
        b = _normal(2, (case["O"],))
        kw = dict(padding=case["padding"])

        def ours(x, w, b):
            return C.conv2d_toeplitz(x, w, b, block=case["block"], **kw)

        ref = _lax_conv(x, w, b, **kw)
        chex.assert_trees_all_close(self.variant(ours)(x, w, b), ref, rtol=1e-5, atol=1e-4)
        c = _normal(3, ref.shape)

        def grads(f):
            return jax.grad(lambda x, w, b: jnp.sum(c * f(x, w, b)), argnums=(0, 1, 2))

        chex.assert_trees_all_close(
            self.variant(grads(ours))(x, w, b),
            grads(lambda x, w, b: _lax_conv(x, w, b, **kw))(x, w, b),
            rtol=1e-4,
            atol=1e-4,
        )

    def test_errors(self):
        x, w = _normal(0, (1, 8, 8, 2)), _normal(1, (3, 3, 2, 4))
        with pytest.raises(ValueError, match="block must divide the output width 6"):
            C.conv2d_toeplitz(x, w, block=4)
        with pytest.raises(ValueError, match=r"\[B, H, W, 2\]"):
            C.conv2d_toeplitz(_normal(0, (1, 8, 8, 3)), w)
        chex.assert_trees_all_close(C.conv2d_toeplitz(x, w), _lax_conv(x, w), atol=1e-4)


POOL_CASES = [
    dict(window=2, stride=None, padding=0, shape=(2, 28, 28, 6)),
    dict(window=3, stride=None, padding=0, shape=(2, 9, 9, 3)),  # book §7.5.2: 3x3 window
    dict(window=3, stride=2, padding=1, shape=(1, 4, 4, 1)),  # book: padding 1, stride 2
    dict(window=(2, 3), stride=(2, 3), padding=(0, 1), shape=(1, 4, 4, 2)),  # book
    dict(window=3, stride=1, padding="SAME", shape=(2, 7, 6, 4)),
    dict(window=(3, 2), stride=(2, 1), padding=((1, 0), (0, 1)), shape=(2, 7, 6, 4)),
]


class PoolingTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_pool2d_book_example(self):
        # §7.5.1: X = [[0, 1, 2], [3, 4, 5], [6, 7, 8]], 2x2 window.
        X = jnp.arange(9.0).reshape(3, 3)
        pool = self.variant(C.pool2d, static_argnums=(1, 2))
        chex.assert_trees_all_close(pool(X, (2, 2), "max"), jnp.array([[4.0, 5.0], [7.0, 8.0]]))
        chex.assert_trees_all_close(pool(X, (2, 2), "avg"), jnp.array([[2.0, 3.0], [5.0, 6.0]]))

    def test_pool2d_equals_nnx_stride_1(self):
        X = _normal(0, (7, 8))
        for mode, ref_pool in (("max", nnx.max_pool), ("avg", nnx.avg_pool)):
            ref = ref_pool(X[None, :, :, None], (3, 2), strides=(1, 1))[0, :, :, 0]
            chex.assert_trees_all_close(C.pool2d(X, (3, 2), mode), ref, rtol=1e-6, atol=1e-6)
        with pytest.raises(ValueError, match="mode"):
            C.pool2d(X, 2, "min")

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*[(c,) for c in POOL_CASES])
    def test_batched_equals_nnx(self, case):
        x = _normal(0, case["shape"])
        window = C._pair(case["window"], "window")
        stride = window if case["stride"] is None else C._pair(case["stride"], "stride")
        pads = _lax_pads(case["padding"], case["shape"][1:3], window, stride)
        for ours, ref in ((C.max_pool2d, nnx.max_pool), (C.avg_pool2d, nnx.avg_pool)):
            out = self.variant(
                lambda x, f=ours: f(x, case["window"], case["stride"], case["padding"])
            )(x)
            expected = ref(x, window, strides=stride, padding=pads)
            chex.assert_trees_all_close(out, expected, rtol=1e-6, atol=1e-6)

    def test_book_shapes_and_defaults(self):
        # §7.5.2: a [1, 4, 4, 1] input of 0..15; a 3x3 window with stride 3 by default.
        x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        chex.assert_trees_all_close(C.max_pool2d(x, 3)[0, :, :, 0], jnp.array([[10.0]]))
        out = C.max_pool2d(x, 3, padding=1, stride=2)
        chex.assert_trees_all_close(out[0, :, :, 0], jnp.array([[5.0, 7.0], [13.0, 15.0]]))
        # Channels pool separately (§7.5.3).
        x2 = jnp.concatenate([x, x + 1], axis=-1)
        chex.assert_trees_all_close(C.max_pool2d(x2, 3, 2, 1)[..., 1], out[..., 0] + 1)

    def test_max_pool_integer_input(self):
        x = jnp.arange(-16, 0, dtype=jnp.int32).reshape(1, 4, 4, 1)
        out = C.max_pool2d(x, 3, stride=2, padding=1)  # padding must not win the maximum
        chex.assert_trees_all_equal(out[0, :, :, 0], jnp.array([[-11, -9], [-3, -1]], jnp.int32))


class LearnKernelTest(chex.TestCase):
    def test_conv2d_layer(self):
        layer = C.Conv2D((1, 2), rngs=nnx.Rngs(0))
        chex.assert_shape(layer.weight[...], (1, 2))
        assert bool(jnp.all((layer.weight[...] >= 0) & (layer.weight[...] < 1)))
        chex.assert_trees_all_equal(layer.bias[...], jnp.zeros((1,)))
        X, _ = C.edge_detection_data()
        layer.bias.set_value(jnp.array([0.5]))
        expected = C.corr2d(X, layer.weight[...]) + 0.5
        chex.assert_trees_all_close(layer(X), expected)
        assert C.Conv2D(3, use_bias=False, rngs=nnx.Rngs(0)).bias is None

    def test_learn_edge_kernel(self):
        # §7.2.4: 10 steps of gradient descent at lr 3e-2 on the summed squared error.
        kernel, losses = C.learn_edge_kernel(steps=10, lr=3e-2, seed=0)
        chex.assert_shape(kernel, (1, 2))
        chex.assert_trees_all_close(kernel, jnp.array([[1.0, -1.0]]), atol=0.1)
        assert len(losses) == 10 and all(np.isfinite(losses))
        assert losses[-1] < 0.05 * losses[0]
        assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
        kernel_again, losses_again = C.learn_edge_kernel(steps=10, lr=3e-2, seed=0)
        chex.assert_trees_all_equal(kernel, kernel_again)
        assert losses == losses_again

    def test_learn_edge_kernel_more_steps_converge(self):
        kernel, _ = C.learn_edge_kernel(steps=40, lr=2e-2, seed=1)
        chex.assert_trees_all_close(kernel, jnp.array([[1.0, -1.0]]), atol=1e-3)
