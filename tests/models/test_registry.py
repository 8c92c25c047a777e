"""The model registry: lookup by name, helpful errors, every chapter 3-5 model buildable."""

import jax.numpy as jnp
import pytest
from flax import nnx

import d2ljax.models as models
from d2ljax.models import registry

# name -> (constructor kwargs besides rngs, input shape, output shape)
CHAPTER_3_TO_5 = {
    "linear_regression_scratch": ({"num_inputs": 3}, (2, 3), (2, 1)),
    "linear_regression": ({"num_inputs": 3}, (2, 3), (2, 1)),
    "softmax_regression_scratch": ({}, (2, 28, 28, 1), (2, 10)),
    "softmax_regression": ({}, (2, 28, 28, 1), (2, 10)),
    "mlp_scratch": ({}, (2, 28, 28, 1), (2, 10)),
    "mlp": ({}, (2, 28, 28, 1), (2, 10)),
    "dropout_mlp_scratch": ({}, (2, 28, 28, 1), (2, 10)),
    "dropout_mlp": ({}, (2, 28, 28, 1), (2, 10)),
}


@pytest.mark.parametrize("name", sorted(CHAPTER_3_TO_5))
def test_get_model_builds_each(name):
    kwargs, in_shape, out_shape = CHAPTER_3_TO_5[name]
    model = models.get_model(name, **kwargs, rngs=nnx.Rngs(params=0, dropout=1))
    assert isinstance(model, nnx.Module)
    assert model(jnp.ones(in_shape)).shape == out_shape


def test_list_models_has_descriptions():
    listed = models.list_models()
    assert set(CHAPTER_3_TO_5) <= set(listed)
    assert list(listed) == sorted(listed)
    assert all(isinstance(d, str) and d for d in listed.values())
    assert "§5.2.1" in listed["mlp_scratch"]


def test_registered_classes_are_reexported():
    assert models.get_constructor("softmax_regression") is models.SoftmaxRegression
    assert models.get_constructor("dropout_mlp_scratch") is models.DropoutMLPScratch


def test_unknown_name_lists_valid_names_and_close_matches():
    with pytest.raises(KeyError) as info:
        models.get_model("mpl_scratch", rngs=nnx.Rngs(0))
    message = str(info.value)
    assert "'mpl_scratch'" in message
    assert "Did you mean: mlp_scratch" in message
    names = sorted(models.list_models())
    assert ", ".join(names) in message  # every valid name, sorted
    assert isinstance(info.value, ValueError)  # also a ValueError, for config validation


def test_unknown_name_without_close_match():
    with pytest.raises(ValueError, match="Registered models: ") as info:
        models.get_constructor("zzzzzz")
    assert "Did you mean" not in str(info.value)


def test_register_function_and_duplicates():
    name = "_test_registry_factory"
    try:

        @registry.register(name)
        def factory(width=2, *, rngs):
            """A factory, described by its docstring's first line."""
            return nnx.Linear(width, 1, rngs=rngs)

        assert models.list_models()[name] == "A factory, described by its docstring's first line."
        assert models.get_model(name, width=4, rngs=nnx.Rngs(0)).kernel.shape == (4, 1)
        registry.register(name, description="re-registered")(factory)  # same object: allowed
        assert models.list_models()[name] == "re-registered"

        def other(*, rngs):
            return None

        with pytest.raises(ValueError, match="already registered"):
            registry.register(name)(other)
    finally:
        registry._REGISTRY.pop(name, None)
    with pytest.raises(ValueError):
        registry.register("")
