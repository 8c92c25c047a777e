"""The course's models, one file per family, each registered by name (see :mod:`.registry`).

``import d2ljax.models`` imports every model module in this package, so every model is registered;
the classes are re-exported here (``from d2ljax.models import SoftmaxRegression``).
"""

import importlib as _importlib
import pkgutil as _pkgutil

from d2ljax.models.linear import LinearRegression, LinearRegressionScratch
from d2ljax.models.mlp import (
    MLP,
    DeepMLP,
    DropoutMLP,
    DropoutMLPScratch,
    MLPScratch,
    deep_mlp,
    layer_gradient_norms,
    matrix_product_explosion,
)
from d2ljax.models.registry import (
    UnknownModelError,
    get_constructor,
    get_model,
    list_models,
    register,
)
from d2ljax.models.softmax import SoftmaxRegression, SoftmaxRegressionScratch

# Register the model families not imported by name above (any module here not starting with "_").
for _info in _pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_info.name}")
del _info

__all__ = [
    "MLP",
    "DeepMLP",
    "DropoutMLP",
    "DropoutMLPScratch",
    "LinearRegression",
    "LinearRegressionScratch",
    "MLPScratch",
    "SoftmaxRegression",
    "SoftmaxRegressionScratch",
    "UnknownModelError",
    "deep_mlp",
    "get_constructor",
    "get_model",
    "layer_gradient_norms",
    "list_models",
    "matrix_product_explosion",
    "register",
]
