"""The book's ``layer_summary``: each layer's output shape, for any model, without computing.

:func:`layer_shapes` traces the model under :func:`jax.eval_shape` (no FLOPs, no memory for
activations; abstract models from ``nnx.eval_shape`` work too) and reports:

- for a model with ``named_layers()`` (LeNet), every entry of it in order, activations and
  pooling included -- exactly the book's printout;
- for any other model, the output of every call of its child modules in call order, looking
  inside ``nnx.List`` and ``nnx.Sequential`` containers (``stages.1.0`` is block 0 of stage 1):
  AlexNet's convolutions and dense layers, VGG's blocks, ResNet's stem and residual blocks...
  Functional steps between modules (``relu``, pooling written as a function) do not appear; the
  next module's shape shows their effect.

A model with neither gives one ``("output", shape)`` entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["layer_shapes"]

Shapes = list[tuple[str, tuple[int, ...]]]

# id(module copy) -> (name, list to append to), live only while layer_shapes traces.
_RECORDING: dict[int, tuple[str, Shapes]] = {}
_RECORDING_CLASSES: dict[type, type] = {}


def _recording_class(cls: type) -> type:
    """``cls`` with a ``__call__`` that also notes its output shape (one subclass per class)."""
    if cls not in _RECORDING_CLASSES:

        def __call__(self, *args, **kwargs):
            out = cls.__call__(self, *args, **kwargs)
            name, shapes = _RECORDING[id(self)]
            shapes.append((name, tuple(jnp.shape(out))))
            return out

        _RECORDING_CLASSES[cls] = type(cls.__name__, (cls,), {"__call__": __call__})
    return _RECORDING_CLASSES[cls]


def _children(module: nnx.Module, prefix: str = "") -> Iterator[tuple[str, nnx.Module]]:
    """Child modules in definition order; list-like containers are opened, not reported."""
    if isinstance(module, nnx.List | nnx.Sequential):
        items = module.layers if isinstance(module, nnx.Sequential) else module
        for i, item in enumerate(items):
            yield from _container_item(f"{prefix}{i}", item)
        return
    for name, value in vars(module).items():
        if not name.startswith("_"):
            yield from _container_item(f"{prefix}{name}", value)


def _container_item(name: str, value) -> Iterator[tuple[str, nnx.Module]]:
    if isinstance(value, nnx.List | nnx.Sequential):
        yield from _children(value, f"{name}.")
    elif isinstance(value, nnx.Module):
        yield name, value


def layer_shapes(
    model: nnx.Module,
    input_shape: Sequence[int] = (1, 28, 28, 1),
    dtype: jnp.dtype = jnp.float32,
) -> Shapes:
    """``[(layer name, output shape), ...]`` for an input of ``input_shape`` (see the module
    docstring for what counts as a layer). The model runs in eval mode on a traced copy: it is
    not changed, and nothing is computed."""
    spec = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    check = getattr(model, "check_input", None)
    if callable(check):
        check(spec)
    graphdef, state = nnx.split(model)
    shapes: Shapes = []

    def run(state, x):
        m = nnx.merge(graphdef, state)
        m.eval()
        named = getattr(m, "named_layers", None)
        if callable(named):
            for name, layer in named():
                x = layer(x)
                shapes.append((name, tuple(x.shape)))
            return x
        children = list(_children(m))
        try:
            for name, child in children:
                _RECORDING[id(child)] = (name, shapes)
                child.__class__ = _recording_class(type(child))
            out = m(x)
        finally:
            for _, child in children:
                _RECORDING.pop(id(child), None)
        if not shapes:
            shapes.append(("output", tuple(jnp.shape(out))))
        return out

    jax.eval_shape(run, state, spec)
    return shapes
