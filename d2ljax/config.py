"""Experiment configs: nested dicts with attribute access, fixed keys and typed overrides.

A config file in ``configs/`` defines ``get_config(variant=None) -> Config``. Its keys are fixed
once built: ``cfg.set("optimizer.learning_rate", 0.05)`` (what ``--set`` does) only changes keys
that exist, checks the value's type, and names the valid keys when a key is unknown.
``model.kwargs`` is the one open mapping: its keys are checked against the model constructor.

Values are checked by :func:`check_values` against a table of :class:`Key` specs (each key's type
and range; the experiment layer holds the table for experiment configs): a bad value is a
:class:`ConfigError` naming the key, the value and what is expected.
"""

from __future__ import annotations

import ast
import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from d2ljax.registry import suggest

OPEN_KEYS = ("model.kwargs", "data.kwargs")


class ConfigError(ValueError):
    """A bad key or value in a config or an override."""


class Config(dict):
    """A dict whose items are also attributes (``cfg.optimizer.learning_rate``)."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        for k, v in dict(*args, **kwargs).items():
            self[k] = Config(v) if isinstance(v, Mapping) and not isinstance(v, Config) else v

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(_unknown_key(name, self, "")) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __deepcopy__(self, memo):
        return Config({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def copy(self) -> Config:
        return copy.deepcopy(self)

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Config) else v for k, v in self.items()}

    def flat_keys(self, prefix: str = "") -> list[str]:
        keys = []
        for k, v in self.items():
            path = f"{prefix}{k}"
            if isinstance(v, Config) and v and path not in OPEN_KEYS:
                keys.extend(v.flat_keys(path + "."))
            else:
                keys.append(path)
        return keys

    def get_path(self, path: str) -> Any:
        node: Any = self
        for part in path.split("."):
            node = node[part]
        return node

    def set(self, path: str, value: Any) -> Config:
        """Set an existing key (dotted path) to ``value``, converting strings like the CLI does."""
        parts = path.split(".")
        node: Any = self
        for i, part in enumerate(parts[:-1]):
            prefix = ".".join(parts[:i])
            if not isinstance(node, Mapping) or part not in node:
                raise ConfigError(_unknown_key(".".join(parts[: i + 1]), node, prefix, self))
            node = node[part]
        last = parts[-1]
        parent = ".".join(parts[:-1])
        if not isinstance(node, Mapping):
            raise ConfigError(f"{parent!r} is a value, not a group: cannot set {path!r}")
        if isinstance(value, str):
            value = parse_value(value)
        if last not in node:
            if parent in OPEN_KEYS:
                node[last] = value
                return self
            raise ConfigError(_unknown_key(path, node, parent, self))
        node[last] = _coerce(path, node[last], value)
        return self


def _unknown_key(path: str, node: Any, prefix: str, root: Config | None = None) -> str:
    valid = (root or node).flat_keys() if isinstance(root or node, Config) else []
    return f"unknown config key {path!r}.{suggest(path, valid)} Valid keys: {', '.join(valid)}"


def parse_value(text: str) -> Any:
    """``'0.1'`` -> 0.1, ``'[1, 2]'`` -> [1, 2], ``'none'`` -> None, other text stays a string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _coerce(path: str, old: Any, new: Any) -> Any:
    if old is None or new is None:
        return Config(new) if isinstance(new, Mapping) else new
    if isinstance(old, bool):
        if not isinstance(new, bool):
            raise ConfigError(f"config key `{path}` must be true or false, got {new!r}")
        return new
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new)
    if (
        isinstance(old, (int, float))
        and isinstance(new, (int, float))
        and not isinstance(new, bool)
    ):
        if isinstance(old, int) and isinstance(new, float):
            if not new.is_integer():
                raise ConfigError(f"config key `{path}` must be an integer, got {new!r}")
            return int(new)
        return new
    if isinstance(old, Mapping):
        if not isinstance(new, Mapping):
            raise ConfigError(f"config key `{path}` must be a mapping, got {new!r}")
        return Config(new)
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return type(old)(new)
    if type(old) is not type(new):
        kind = _KIND_NAMES.get(type(old), f"a {type(old).__name__}")
        raise ConfigError(f"config key `{path}` must be {kind}, got {new!r}")
    return new


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Apply ``key=value`` strings (``--set``) to a copy of ``cfg``."""
    cfg = cfg.copy()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        cfg.set(key.strip(), value)
    return cfg


_KIND_NAMES: dict[type, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    Mapping: "a mapping",
    list: "a list",
}


@dataclass(frozen=True)
class Key:
    """The type and range of one config value.

    ``kind`` is ``int``, ``float`` (an int is accepted too), ``str``, ``bool``, ``Mapping`` or
    ``list`` (a tuple is accepted too); ``low``/``high`` bound numbers (inclusive, ``low_open``
    makes the lower bound exclusive); ``choices`` lists the accepted values; ``none``: None is
    accepted (meaning: the default behaviour, said in ``none_means``).
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    none: bool = False
    none_means: str = ""

    def expected(self) -> str:
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = _KIND_NAMES[self.kind]
            if self.low is not None and self.high is not None:
                text += f" in [{_num(self.low)}, {_num(self.high)}]"
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {_num(self.low)}"
            elif self.high is not None:
                text += f" <= {_num(self.high)}"
        if self.none:
            text += " or none" + (f" ({self.none_means})" if self.none_means else "")
        return text

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none
        if self.choices:
            return value in self.choices
        kind = self.kind
        if kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if kind is int:
            ok = isinstance(value, int)
        elif kind is float:
            ok = isinstance(value, (int, float)) and math.isfinite(value)
        elif kind is list:
            ok = isinstance(value, (list, tuple))
        else:
            ok = isinstance(value, kind)
        if not ok or kind not in (int, float):
            return ok
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def check_values(cfg: Mapping, keys: Mapping[str, Key]) -> None:
    """Check every value of ``cfg`` that ``keys`` (dotted path -> :class:`Key`) describes; keys
    absent from ``cfg`` are skipped. Raises a :class:`ConfigError` for the first bad value."""
    for path, spec in keys.items():
        node: Any = cfg
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            if not spec.accepts(node):
                raise ConfigError(f"config key `{path}` must be {spec.expected()}, got {node!r}")
