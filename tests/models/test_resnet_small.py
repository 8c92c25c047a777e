"""The book's 32x32 ResNet-18 (§13.6 ``d2l.resnet18(10, 3)``, trained in §14.1 and §14.13)."""

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models import get_model
from d2ljax.models.resnet import ResNet18Small
from d2ljax.train.state import num_params


def test_parameters_and_shapes():
    model = get_model("resnet18_small", rngs=nnx.Rngs(0))
    assert isinstance(model, ResNet18Small)
    # the book's layers: Conv2d(3, 64, 3, padding=1) + BN, then ResNet-18's four stages (with
    # conv biases) and Linear(512, 10): 1,792 + 128 + 11,175,050 = 11,176,970
    assert num_params(model) == 11_176_970
    model.eval()
    x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    assert jax.eval_shape(lambda x: model(x), x).shape == (2, 10)
    # no stride and no max-pooling in the stem: the last stage works on 4x4 maps
    assert jax.eval_shape(lambda x: model.stem(x), x).shape == (2, 32, 32, 64)


def test_narrow_width():
    model = ResNet18Small(width=16, rngs=nnx.Rngs(0))
    assert num_params(model) == 702_218
    assert model(jnp.zeros((2, 32, 32, 3))).shape == (2, 10)
