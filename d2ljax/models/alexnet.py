"""AlexNet (§8.1), as the book trains it on Fashion-MNIST resized to 224x224.

``Conv(96, 11x11, stride 4, pad 1) -> relu -> MaxPool(3, 2) -> Conv(256, 5x5, pad 2) -> relu ->
MaxPool(3, 2) -> Conv(384, 3x3, pad 1) -> relu -> Conv(384, 3x3, pad 1) -> relu ->
Conv(256, 3x3, pad 1) -> relu -> MaxPool(3, 2) -> flatten -> Dense(4096) -> relu -> Dropout(0.5)
-> Dense(4096) -> relu -> Dropout(0.5) -> Dense(num_classes)``

At 224x224 the feature maps are 54x54 (conv1), 26 (pool), 26 (conv2), 12 (pool), 12 (conv3-5),
5 (pool), so the first dense layer takes ``256 * 5 * 5 = 6400`` inputs. The book's ``LazyLinear``
infers that size; here ``input_size`` computes it. The smallest input that leaves a 1x1 map is
65x65 (Fashion-MNIST's native 28x28 does not fit: the stride-4 11x11 convolution and three
3x3 stride-2 poolings would leave nothing).

Weights follow the book's ``init_cnn`` (Xavier-uniform kernels; biases start at zero here).
"""

from __future__ import annotations

import jax
from flax import nnx

from d2ljax.models.registry import register

__all__ = ["ALEXNET_MIN_INPUT_SIZE", "AlexNet", "alexnet_feature_size"]

_KERNEL_INIT = nnx.initializers.xavier_uniform()  # the book's d2l.init_cnn

ALEXNET_MIN_INPUT_SIZE = 65


def _side(n: int) -> int:
    n = (n + 2 * 1 - 11) // 4 + 1  # conv 11x11, stride 4, padding 1
    n = (n - 3) // 2 + 1  # max-pool 3x3, stride 2
    n = (n - 3) // 2 + 1  # conv 5x5 pad 2 keeps the size; max-pool
    return (n - 3) // 2 + 1  # three 3x3 pad-1 convs keep it; max-pool


def alexnet_feature_size(input_size: int | tuple[int, int]) -> tuple[int, int]:
    """Height and width of AlexNet's last feature map (5x5 at 224); ``ValueError`` below 65."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if min(h, w) < ALEXNET_MIN_INPUT_SIZE:
        raise ValueError(
            f"AlexNet needs input images of at least {ALEXNET_MIN_INPUT_SIZE}x"
            f"{ALEXNET_MIN_INPUT_SIZE} pixels, got {h}x{w}; the book resizes Fashion-MNIST to "
            "224x224"
        )
    return _side(h), _side(w)


@register("alexnet", description="§8.1 AlexNet (input 224x224)")
class AlexNet(nnx.Module):
    """AlexNet (§8.1); 46,764,746 parameters at 224x224x1 with 10 classes.

    Args:
      num_classes: number of output logits.
      in_channels: input channels (1 for Fashion-MNIST).
      input_size: image side (or ``(H, W)``) that sizes the first dense layer; at least 65.
      dropout: dropout rate after each hidden dense layer.
      rngs: ``params`` stream for the weights, ``dropout`` stream for the masks.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int | tuple[int, int] = 224,
        dropout: float = 0.5,
        *,
        rngs: nnx.Rngs,
    ):
        h, w = alexnet_feature_size(input_size)
        self.feature_hw = (h, w)

        def conv(cin, cout, k, strides, padding):
            return nnx.Conv(
                cin,
                cout,
                (k, k),
                strides=strides,
                padding=padding,
                kernel_init=_KERNEL_INIT,
                rngs=rngs,
            )

        def dense(din, dout):
            return nnx.Linear(din, dout, kernel_init=_KERNEL_INIT, rngs=rngs)

        self.conv1 = conv(in_channels, 96, 11, 4, 1)
        self.conv2 = conv(96, 256, 5, 1, 2)
        self.conv3 = conv(256, 384, 3, 1, 1)
        self.conv4 = conv(384, 384, 3, 1, 1)
        self.conv5 = conv(384, 256, 3, 1, 1)
        self.fc1 = dense(256 * h * w, 4096)
        self.dropout1 = nnx.Dropout(dropout, rngs=rngs)
        self.fc2 = dense(4096, 4096)
        self.dropout2 = nnx.Dropout(dropout, rngs=rngs)
        self.fc3 = dense(4096, num_classes)

    def features(self, x_BHWC: jax.Array) -> jax.Array:
        """The convolutional part: ``[B, H, W, C] -> [B, 5, 5, 256]`` at 224x224."""
        pool = dict(window_shape=(3, 3), strides=(2, 2))
        h = nnx.max_pool(nnx.relu(self.conv1(x_BHWC)), **pool)
        h = nnx.max_pool(nnx.relu(self.conv2(h)), **pool)
        h = nnx.relu(self.conv3(h))
        h = nnx.relu(self.conv4(h))
        return nnx.max_pool(nnx.relu(self.conv5(h)), **pool)

    def __call__(self, x_BHWC: jax.Array) -> jax.Array:
        h_BHWC = self.features(x_BHWC)
        if h_BHWC.shape[1:3] != self.feature_hw:
            raise ValueError(
                f"AlexNet was built for {self.feature_hw} feature maps (input_size), but input "
                f"{x_BHWC.shape} gives {h_BHWC.shape[1:3]}; build it with the input's size"
            )
        h_BD = h_BHWC.reshape(h_BHWC.shape[0], -1)
        h_BD = self.dropout1(nnx.relu(self.fc1(h_BD)))
        h_BD = self.dropout2(nnx.relu(self.fc2(h_BD)))
        return self.fc3(h_BD)
