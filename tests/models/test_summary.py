"""layer_shapes: the book's layer_summary for every chapter-8 model, traced without computing."""

import jax
import pytest
from flax import nnx

import d2ljax.models as M
from d2ljax.models import layer_shapes, summary


def abstract(name):
    cls = getattr(M, name)
    return nnx.eval_shape(lambda: cls(rngs=nnx.Rngs(0)))


def test_alexnet_as_in_the_book():
    # Book §8.1 layer_summary at 224x224: convs 54, 26, 12, 12, 12; dense 4096, 4096, 10.
    assert layer_shapes(abstract("AlexNet"), (1, 224, 224, 1)) == [
        ("conv1", (1, 54, 54, 96)),
        ("conv2", (1, 26, 26, 256)),
        ("conv3", (1, 12, 12, 384)),
        ("conv4", (1, 12, 12, 384)),
        ("conv5", (1, 12, 12, 256)),
        ("fc1", (1, 4096)),
        ("dropout1", (1, 4096)),
        ("fc2", (1, 4096)),
        ("dropout2", (1, 4096)),
        ("fc3", (1, 10)),
    ]


def test_resnet18_blocks_as_in_the_book():
    # Book §8.6 at 96x96: b1 24x24x64, then stages of 64@24, 128@12, 256@6, 512@3, two blocks each.
    shapes = layer_shapes(abstract("ResNet18"), (2, 96, 96, 1))
    assert shapes[0] == ("stem", (2, 24, 24, 64))
    blocks = [(n, s) for n, s in shapes if n.startswith("stages.")]
    assert [n for n, _ in blocks] == [f"stages.{i}.{j}" for i in range(4) for j in range(2)]
    expected = [(24, 24, 64), (12, 12, 128), (6, 6, 256), (3, 3, 512)]
    assert [s[1:] for _, s in blocks[1::2]] == expected
    assert shapes[-1] == ("fc", (2, 10))


@pytest.mark.parametrize(
    "name, size, checks",
    [
        ("VGG11", 224, {"blocks.0": (112, 112, 64), "blocks.4": (7, 7, 512)}),
        ("NiN", 224, {"block1": (54, 54, 96), "block3": (12, 12, 384), "block4": (5, 5, 10)}),
        ("GoogLeNet", 96, {"b2_conv2": (24, 24, 192), "b3.1": (12, 12, 480), "b4.4": (6, 6, 832)}),
        ("DenseNet", 96, {"blocks.0": (24, 24, 192), "blocks.1": (12, 12, 96)}),
        ("RegNetX32", 96, {"stem_conv": (48, 48, 32)}),
        ("BNLeNet", 28, {"conv1": (24, 24, 6), "bn2": (8, 8, 16), "fc1": (120,)}),
    ],
)
def test_stage_shapes_of_every_chapter8_model(name, size, checks):
    model = abstract(name)
    shapes = dict(layer_shapes(model, (1, size, size, 1)))
    for layer, shape in checks.items():
        assert shapes[layer] == (1, *shape), layer
    graphdef, state = nnx.split(model)

    def forward(state, x):
        m = nnx.merge(graphdef, state)
        m.eval()
        return m(x)

    out = jax.eval_shape(forward, state, jax.ShapeDtypeStruct((1, size, size, 1), "float32"))
    last = list(shapes.values())[-1]
    # NiN ends in a functional global average pool after its last block.
    assert last == (out.shape if name != "NiN" else (1, 5, 5, 10))


def test_model_is_left_as_it_was():
    model = M.ResNet18(rngs=nnx.Rngs(0))
    before = jax.tree.map(lambda a: a.copy(), nnx.state(model))
    classes = [type(m) for _, m in nnx.iter_modules(model)]
    layer_shapes(model, (1, 96, 96, 1))
    assert [type(m) for _, m in nnx.iter_modules(model)] == classes
    after = nnx.state(model)
    assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool((a == b).all()), before, after)))
    assert not summary._RECORDING
