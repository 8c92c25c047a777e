"""Model registry: a name -> constructor table so a config can pick a model by string.

Usage::

    @register("mlp", description="§5.2 concise MLP")
    class MLP(nnx.Module): ...

    model = get_model("mlp", num_hiddens=256, rngs=nnx.Rngs(0))

A constructor is a class or a factory function; ``get_model`` passes its keyword arguments
(including ``rngs``) straight through. Importing :mod:`d2ljax.models` registers every model.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["UnknownModelError", "get_constructor", "get_model", "list_models", "register"]

T = TypeVar("T", bound=Callable[..., Any])

_REGISTRY: dict[str, tuple[Callable[..., Any], str]] = {}


class UnknownModelError(KeyError, ValueError):
    """Raised for a model name that is not registered; the message lists the valid names.

    It is both a ``KeyError`` (lookup by name failed) and a ``ValueError`` (bad config value).
    """

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes.
        return str(self.args[0]) if self.args else ""


def _qualified(obj: Callable[..., Any]) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _first_doc_line(obj: Callable[..., Any]) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def register(name: str, *, description: str = "") -> Callable[[T], T]:
    """Decorator that registers a class or factory function under ``name``.

    ``description`` defaults to the first line of the constructor's docstring. Registering a second,
    different constructor under a taken name is an error; re-registering the same one (a module
    reloaded in a notebook) replaces the entry.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")

    def wrap(obj: T) -> T:
        if not callable(obj):
            raise TypeError(f"register({name!r}) expects a class or function, got {obj!r}")
        if name in _REGISTRY:
            existing = _REGISTRY[name][0]
            if _qualified(existing) != _qualified(obj):
                raise ValueError(
                    f"model name {name!r} is already registered to {_qualified(existing)}"
                )
        _REGISTRY[name] = (obj, description or _first_doc_line(obj))
        return obj

    return wrap


def _ensure_loaded() -> None:
    # Registration happens when the model modules are imported; make sure they are, even when
    # this module was imported on its own (``from d2ljax.models.registry import get_model``).
    import d2ljax.models  # noqa: F401


def get_constructor(name: str) -> Callable[..., Any]:
    """The class or factory registered under ``name``; :class:`UnknownModelError` if none."""
    _ensure_loaded()
    try:
        return _REGISTRY[name][0]
    except (KeyError, TypeError):
        names = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Registered models: {', '.join(names)}."
        ) from None


def get_model(name: str, **kwargs: Any) -> Any:
    """Build the model registered under ``name`` with ``kwargs`` (which include ``rngs``)."""
    return get_constructor(name)(**kwargs)


def list_models() -> dict[str, str]:
    """All registered models as ``{name: description}``, sorted by name."""
    _ensure_loaded()
    return {name: _REGISTRY[name][1] for name in sorted(_REGISTRY)}
