"""One registry type for every name -> object table, and one way to say "did you mean".

A config names its model, dataset, loss and optimizer by string; each of those tables is a
:class:`Registry`::

    MODELS: Registry[Callable[..., nnx.Module]] = Registry("model")

    @MODELS.register("mlp")
    class MLP(nnx.Module): ...

    MODELS.register("gru_lm", language_model, defaults={"cell": "gru"})  # an entry with defaults

    MODELS.get("mlp")                 # the object itself
    MODELS.build("gru_lm", rngs=...)  # obj(**{**defaults, **kwargs})
    MODELS.get("mpl")                 # UnknownNameError: unknown model 'mpl'. Did you mean mlp? ...

An unknown name is an :class:`UnknownNameError` (both ``KeyError`` and ``ValueError``, or the error
class the registry is given) whose message names the known entries and the closest ones.
:func:`suggest` is the one place that computes the "Did you mean ...?" hint; code that checks names
outside a registry (config keys) uses it too.

This module imports nothing from d2ljax, so any layer can use it.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar, overload

__all__ = ["Entry", "Registry", "UnknownNameError", "close_matches", "suggest"]

T = TypeVar("T")
ObjT = TypeVar("ObjT")


def close_matches(name: Any, known: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` names of ``known`` closest to ``name`` (:func:`difflib.get_close_matches`)."""
    return difflib.get_close_matches(str(name), list(known), n=n, cutoff=cutoff)


def suggest(
    name: Any,
    known: Iterable[str],
    *,
    n: int = 3,
    cutoff: float = 0.6,
    quote: bool = False,
    prefix: str = "Did you mean",
) -> str:
    """The hint for a misspelt ``name``: ``" Did you mean a, b?"`` (with a leading space, ready to
    follow a sentence), or ``""`` when nothing in ``known`` is close.

    ``quote`` writes the names as ``repr`` (``'a', 'b'``); ``prefix`` replaces "Did you mean"."""
    close = close_matches(name, known, n=n, cutoff=cutoff)
    if not close:
        return ""
    return f" {prefix} {', '.join(map(repr, close) if quote else close)}?"


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered. ``name`` is the name asked for, ``known`` the registered ones.

    It is both a ``KeyError`` (lookup by name failed) and a ``ValueError`` (a bad config value).
    """

    def __init__(self, message: str, name: Any = None, known: Iterable[str] = ()):
        super().__init__(message)
        self.name = name
        self.known = list(known)

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object, its one-line description and its default keyword arguments."""

    name: str
    obj: T
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def bind(self) -> Any:
        """``obj`` with the defaults applied (a :func:`functools.partial`), or ``obj`` if none."""
        return functools.partial(self.obj, **self.defaults) if self.defaults else self.obj


def _qualified(obj: Any) -> str | None:
    qualname = getattr(obj, "__qualname__", None)
    return None if qualname is None else f"{getattr(obj, '__module__', '?')}.{qualname}"


def _same(a: Any, b: Any) -> bool:
    """The same object, or the same class/function of a module imported again (a notebook)."""
    if a is b:
        return True
    qa = _qualified(a)
    if qa is not None:
        return qa == _qualified(b)
    try:
        return bool(a == b)
    except Exception:
        return False


def _first_doc_line(obj: Any) -> str:
    if not callable(obj):
        return ""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


class Registry(Generic[T]):
    """A table of named objects with clear errors for unknown names.

    Args:
      kind: what an entry is, for messages ("model", "dataset").
      plural: its plural (default ``kind + "s"``).
      error: the exception class an unknown name raises; called with the message (and, for an
        :class:`UnknownNameError` subclass, ``name=`` and ``known=``).
      message: the unknown-name message, a :meth:`str.format` template with the fields
        ``name`` (use ``{name!r}``), ``hint`` (from :func:`suggest`), ``known`` (the sorted names,
        comma-separated), ``kind`` and ``plural``. Default:
        ``"unknown {kind} {name!r}.{hint} Known {plural}: {known}."``
      loader: called once before the first lookup, to import the modules that register entries.
      cutoff, quote, hint_prefix: passed to :func:`suggest` (``prefix=hint_prefix``).
    """

    DEFAULT_MESSAGE = "unknown {kind} {name!r}.{hint} Known {plural}: {known}."

    def __init__(
        self,
        kind: str,
        *,
        plural: str | None = None,
        error: type[Exception] = UnknownNameError,
        message: str | None = None,
        loader: Callable[[], Any] | None = None,
        cutoff: float = 0.6,
        quote: bool = False,
        hint_prefix: str = "Did you mean",
    ):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.error = error
        self.message = message or self.DEFAULT_MESSAGE
        self._loader = loader
        self._cutoff, self._quote, self._hint_prefix = cutoff, quote, hint_prefix
        self._entries: dict[str, Entry[T]] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            try:
                loader()
            except BaseException:
                self._loader = loader  # try again next time
                raise

    # ------------------------------------------------------------------------- registering

    @overload
    def register(
        self,
        name: str,
        obj: None = None,
        *,
        description: str = "",
        defaults: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Callable[[ObjT], ObjT]: ...

    @overload
    def register(
        self,
        name: str,
        obj: ObjT,
        *,
        description: str = "",
        defaults: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> ObjT: ...

    def register(self, name, obj=None, *, description="", defaults=None, overwrite=False):
        """Register ``obj`` under ``name`` and return it; without ``obj``, a decorator.

        ``description`` defaults to the first line of ``obj``'s docstring. ``defaults`` are
        keyword arguments :meth:`build` (and :meth:`Entry.bind`) pass unless the caller gives them,
        so one function can serve several names. A different object under a taken name is a
        ``ValueError`` unless ``overwrite``; the same one again (a module re-imported) replaces
        the entry.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def wrap(o):
            existing = self._entries.get(name)
            if existing is not None and not overwrite and not _same(existing.obj, o):
                where = _qualified(existing.obj) or repr(existing.obj)
                raise ValueError(f"{self.kind} name {name!r} is already registered to {where}")
            self._entries[name] = Entry(
                name, o, description or _first_doc_line(o), MappingProxyType(dict(defaults or {}))
            )
            return o

        return wrap if obj is None else wrap(obj)

    def pop(self, name: str, default: Any = None) -> Entry[T] | Any:
        """Remove ``name``'s entry and return it (``default`` if there is none)."""
        return self._entries.pop(name, default)

    # ------------------------------------------------------------------------- looking up

    def unknown(self, name: Any) -> Exception:
        """The error for an unknown ``name`` (to raise from a custom check)."""
        self._load()
        names = self.names()
        msg = self.message.format(
            name=name,
            hint=suggest(
                name, names, cutoff=self._cutoff, quote=self._quote, prefix=self._hint_prefix
            ),
            known=", ".join(names),
            kind=self.kind,
            plural=self.plural,
        )
        if isinstance(self.error, type) and issubclass(self.error, UnknownNameError):
            return self.error(msg, name=name, known=names)
        return self.error(msg)

    def entry(self, name: str) -> Entry[T]:
        """The :class:`Entry` of ``name``; the registry's error (listing the names) if none."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a config
            raise self.unknown(name) from None

    def get(self, name: str) -> T:
        """The object registered under ``name`` (without its defaults; see :meth:`build`)."""
        return self.entry(name).obj

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the object of ``name`` with its defaults updated by ``kwargs``."""
        entry = self.entry(name)
        return entry.obj(*args, **{**entry.defaults, **kwargs})

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """``{name: description}``, sorted by name."""
        self._load()
        return {n: self._entries[n].description for n in sorted(self._entries)}

    def __contains__(self, name: object) -> bool:
        self._load()
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
