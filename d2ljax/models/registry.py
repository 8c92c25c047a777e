"""Model registry: a name -> constructor table so a config can pick a model by string.

Usage::

    @register("mlp", description="§5.2 concise MLP")
    class MLP(nnx.Module): ...

    model = get_model("mlp", num_hiddens=256, rngs=nnx.Rngs(0))

A constructor is a class or a factory function; ``get_model`` passes its keyword arguments
(including ``rngs``) straight through, after the entry's ``defaults`` (one factory can serve several
names: ``register("gru_lm", defaults={"cell": "gru"})(rnn_lm)``). Importing :mod:`d2ljax.models`
registers every model. The table is :data:`MODELS`, a :class:`d2ljax.registry.Registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from d2ljax.registry import Registry, UnknownNameError

__all__ = [
    "MODELS",
    "UnknownModelError",
    "get_constructor",
    "get_model",
    "list_models",
    "register",
    "register_model",
]

T = TypeVar("T", bound=Callable[..., Any])


class UnknownModelError(UnknownNameError):
    """Raised for a model name that is not registered; the message lists the valid names.

    It is both a ``KeyError`` (lookup by name failed) and a ``ValueError`` (bad config value).
    """


def _ensure_loaded() -> None:
    # Registration happens when the model modules are imported; make sure they are, even when
    # this module was imported on its own (``from d2ljax.models.registry import get_model``).
    import d2ljax.models  # noqa: F401


MODELS: Registry[Callable[..., Any]] = Registry(
    "model",
    error=UnknownModelError,
    message="unknown model {name!r}.{hint} Registered models: {known}.",
    loader=_ensure_loaded,
    cutoff=0.5,
    hint_prefix="Did you mean:",
)
_REGISTRY = MODELS  # the old private name (tests remove their entries with ``_REGISTRY.pop``)


def register(
    name: str, *, description: str = "", defaults: Mapping[str, Any] | None = None
) -> Callable[[T], T]:
    """Decorator that registers a class or factory function under ``name``.

    ``description`` defaults to the first line of the constructor's docstring; ``defaults`` are
    keyword arguments every build of this name gets unless it gives them. Registering a second,
    different constructor under a taken name is an error; re-registering the same one (a module
    reloaded in a notebook) replaces the entry.
    """
    wrap = MODELS.register(name, description=description, defaults=defaults)

    def check(obj: T) -> T:
        if not callable(obj):
            raise TypeError(f"register({name!r}) expects a class or function, got {obj!r}")
        return wrap(obj)

    return check


register_model = register


def get_constructor(name: str) -> Callable[..., Any]:
    """The class or factory registered under ``name`` (a :func:`functools.partial` of it when the
    entry has defaults); :class:`UnknownModelError` if none."""
    return MODELS.entry(name).bind()


def get_model(name: str, **kwargs: Any) -> Any:
    """Build the model registered under ``name`` with ``kwargs`` (which include ``rngs``)."""
    return MODELS.build(name, **kwargs)


def list_models() -> dict[str, str]:
    """All registered models as ``{name: description}``, sorted by name."""
    return MODELS.describe()
