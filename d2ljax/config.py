"""Experiment configs: nested dicts with attribute access, fixed keys and typed overrides.

A config file in ``configs/`` defines ``get_config(variant=None) -> Config``. Its keys are fixed
once built: ``cfg.set("optimizer.learning_rate", 0.05)`` (what ``--set`` does) only changes keys
that exist, checks the value's type, and names the valid keys when a key is unknown.
``model.kwargs`` is the one open mapping: its keys are checked against the model constructor.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping
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
            raise ConfigError(f"{path} expects true/false, got {new!r}")
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
                raise ConfigError(f"{path} expects an integer, got {new!r}")
            return int(new)
        return new
    if isinstance(old, Mapping):
        if not isinstance(new, Mapping):
            raise ConfigError(f"{path} expects a mapping, got {new!r}")
        return Config(new)
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return type(old)(new)
    if type(old) is not type(new):
        raise ConfigError(
            f"{path} expects a {type(old).__name__}, got {new!r} ({type(new).__name__})"
        )
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
