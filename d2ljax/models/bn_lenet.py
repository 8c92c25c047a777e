"""LeNet with batch normalization (§8.5.4 from scratch, §8.5.5 concise).

Both models are the book's LeNet variant with batch normalization after every convolution and
every hidden dense layer, *before* the sigmoid:

``Conv(6, 5x5) -> BN -> sigmoid -> AvgPool(2, 2) -> Conv(16, 5x5) -> BN -> sigmoid ->
AvgPool(2, 2) -> flatten -> Dense(120) -> BN -> sigmoid -> Dense(84) -> BN -> sigmoid ->
Dense(num_classes)``

Unlike §7.6's LeNet the first convolution has no padding, so a 28x28 image shrinks to 4x4 before
the dense layers (``16 * 4 * 4 = 256`` inputs to ``Dense(120)``).

- :class:`BNLeNetScratch` uses :class:`~d2ljax.nn.batch_norm.BatchNormScratch`.
- :class:`BNLeNet` uses ``nnx.BatchNorm(momentum=0.9, epsilon=1e-5)`` (PyTorch's defaults in
  Flax's momentum convention).

Weights follow the book's ``init_cnn`` (Xavier-uniform kernels; biases start at zero here).
Inputs are ``[B, H, W, C]``; ``model.train()`` / ``model.eval()`` switch batch statistics vs
moving averages.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

from d2ljax.models.lenet import conv5x5
from d2ljax.models.registry import register
from d2ljax.nn.batch_norm import BatchNormScratch

__all__ = ["BNLeNet", "BNLeNetScratch", "bn_lenet_feature_size"]

_KERNEL_INIT = nnx.initializers.xavier_uniform()  # the book's d2l.init_cnn


def bn_lenet_feature_size(input_size: int | tuple[int, int]) -> tuple[int, int]:
    """Height and width of BN-LeNet's last feature map for an input image size.

    Two rounds of ``conv 5x5 (no padding) -> avg-pool 2x2 stride 2``; 28 -> 24 -> 12 -> 8 -> 4.
    Raises ``ValueError`` below 16x16, the smallest size that leaves a 1x1 map.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    out = []
    for n in (h, w):
        for _ in range(2):
            n = (n - 4) // 2  # 5x5 valid conv, then 2x2 stride-2 pooling
        out.append(n)
    if min(out) < 1:
        raise ValueError(
            f"BN-LeNet needs input images of at least 16x16 pixels, got {h}x{w} "
            "(its two 5x5 valid convolutions and 2x2 poolings would leave no pixels)"
        )
    return out[0], out[1]


class _BNLeNetBase(nnx.Module):
    def __init__(
        self,
        norm: Callable[[int], nnx.Module],
        num_classes: int,
        in_channels: int,
        input_size: int | tuple[int, int],
        rngs: nnx.Rngs,
    ):
        h, w = bn_lenet_feature_size(input_size)
        self.feature_hw = (h, w)

        def conv(cin, cout):  # nnx.Conv's parameters; a faster banded matmul on the CPU
            return conv5x5(cin, cout, 0, "auto", rngs)

        def dense(din, dout):
            return nnx.Linear(din, dout, kernel_init=_KERNEL_INIT, rngs=rngs)

        self.conv1 = conv(in_channels, 6)
        self.bn1 = norm(6)
        self.conv2 = conv(6, 16)
        self.bn2 = norm(16)
        self.fc1 = dense(16 * h * w, 120)
        self.bn3 = norm(120)
        self.fc2 = dense(120, 84)
        self.bn4 = norm(84)
        self.fc3 = dense(84, num_classes)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h_BHWC = nnx.avg_pool(nnx.sigmoid(self.bn1(self.conv1(x_BHWC))), (2, 2), strides=(2, 2))
        h_BHWC = nnx.avg_pool(nnx.sigmoid(self.bn2(self.conv2(h_BHWC))), (2, 2), strides=(2, 2))
        if h_BHWC.shape[1:3] != self.feature_hw:
            raise ValueError(
                f"{type(self).__name__} was built for feature maps of {self.feature_hw} "
                f"(input_size), but input {x_BHWC.shape} gives {h_BHWC.shape[1:3]}"
            )
        h_BD = h_BHWC.reshape(h_BHWC.shape[0], -1)
        h_BD = nnx.sigmoid(self.bn3(self.fc1(h_BD)))
        h_BD = nnx.sigmoid(self.bn4(self.fc2(h_BD)))
        return self.fc3(h_BD)


@register("bn_lenet_scratch", description="§8.5.4 LeNet with batch normalization from scratch")
class BNLeNetScratch(_BNLeNetBase):
    """LeNet with scratch batch normalization (§8.5.4); 44,878 parameters at 28x28x1, 10 classes.

    Args:
      num_classes: number of output logits.
      in_channels: input channels (1 for Fashion-MNIST).
      input_size: image side (or ``(H, W)``) that sizes the first dense layer; at least 16.
      momentum: moving-average weight of the old statistic (Flax convention; 0.9 = PyTorch 0.1).
      eps: added to the variance.
      rngs: ``params`` stream for the conv/dense weights.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int | tuple[int, int] = 28,
        momentum: float = 0.9,
        eps: float = 1e-5,
        *,
        rngs: nnx.Rngs,
    ):
        def norm(c):
            return BatchNormScratch(c, eps=eps, momentum=momentum, rngs=rngs)

        super().__init__(norm, num_classes, in_channels, input_size, rngs)


@register("bn_lenet", description="§8.5.5 LeNet with nnx.BatchNorm (concise)")
class BNLeNet(_BNLeNetBase):
    """LeNet with ``nnx.BatchNorm`` (§8.5.5); 44,878 parameters at 28x28x1, 10 classes.

    Same layout, arguments and parameter count as :class:`BNLeNetScratch`; the batch-norm layers
    are ``nnx.BatchNorm(momentum=momentum, epsilon=eps)`` with ``scale``/``bias`` parameters and
    ``mean``/``var`` statistics.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int | tuple[int, int] = 28,
        momentum: float = 0.9,
        eps: float = 1e-5,
        *,
        rngs: nnx.Rngs,
    ):
        def norm(c):
            return nnx.BatchNorm(c, momentum=momentum, epsilon=eps, rngs=rngs)

        super().__init__(norm, num_classes, in_channels, input_size, rngs)
