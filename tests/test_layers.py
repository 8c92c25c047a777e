"""The package's layers, checked on the import graph (read from the source with ``ast``, so
imports inside functions count too): ``models/`` knows no dataset, loop or task; ``data/`` knows
no model, loop or task; ``nn/`` knows only itself; ``train/`` is model- and dataset-agnostic;
``tune/`` uses everything but the CLI and is used by nothing below it."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "d2ljax"

FORBIDDEN = {
    "models": {"data", "train", "tasks", "experiment", "cli", "pretrained", "inference", "tune"},
    "data": {"models", "train", "tasks", "nn", "experiment", "cli", "pretrained", "inference",
             "tune"},
    "nn": {"models", "data", "train", "tasks", "experiment", "cli", "tune"},
    "train": {"models", "data", "tasks", "experiment", "cli", "pretrained", "inference", "tune"},
    # tune/ sits above experiment (a trial is a run): it may use everything but the CLI, and only
    # the CLI uses it
    "tune": {"cli"},
    # envs/ are sources, like data/: RL environments know no model, loop, task or experiment
    "envs": {"models", "data", "train", "tasks", "nn", "experiment", "cli", "pretrained",
             "inference", "tune"},
}


def _imports(path: Path) -> set[str]:
    """The ``d2ljax`` subpackages/modules ``path`` imports (first component after ``d2ljax.``)."""
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the package uses absolute imports")
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "d2ljax" and len(parts) > 1:
                out.add(parts[1])
    return out


def _violations(layer: str) -> list[str]:
    bad = []
    for path in sorted((PKG / layer).rglob("*.py")):
        for dep in sorted(_imports(path) & FORBIDDEN[layer]):
            bad.append(f"{path.relative_to(PKG.parent)} imports d2ljax.{dep}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer):
    assert _violations(layer) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from d2ljax.data import translation\n    import d2ljax.train\n")
    assert _imports(src) == {"data", "train"}


def test_every_subpackage_is_packaged():
    """A non-editable ``pip install`` ships only the packages pyproject lists; a new subpackage
    left out of that list imports in a development checkout and fails for every user."""
    import tomllib

    listed = set(tomllib.loads((PKG.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    on_disk = {".".join(("d2ljax",) + p.parent.relative_to(PKG).parts)
               for p in PKG.rglob("__init__.py")}
    assert on_disk - listed == set(), f"packages missing from pyproject.toml: {on_disk - listed}"
