"""CIFAR-10 (Krizhevsky 2009): the full set (book §14.1) and the Kaggle competition's layout
(book §14.13), as in-memory uint8 NHWC arrays.

* :func:`load_cifar10`: the 50,000 training and 10,000 test images of the CIFAR-10 python
  release (hub entry ``cifar10``, ``cifar-10-python.tar.gz``, the MD5 torchvision checks).
* :func:`read_kaggle_cifar10`: a folder (or zip) in the Kaggle competition's layout --
  ``train/<id>.png``, ``test/<id>.png``, ``trainLabels.csv`` (``id,label``) -- the full
  competition once its ``train.7z``/``test.7z`` are unpacked, or a sample of it.
  :func:`load_kaggle_cifar10` adds the book's ``reorg_train_valid`` split
  (:func:`reorg_train_valid`) and finds a sample through the hub when no folder is given: the
  book's ``kaggle_cifar10_tiny.zip`` (hub ``cifar10_tiny``) or the 1,000 training + 100 test
  PNGs of d2l-zh's ``data/kaggle_cifar10`` (hub ``kaggle_cifar10_samples`` with the full
  labels file ``kaggle_cifar10_labels``).
* :func:`write_cifar10_submission`: Kaggle's ``submission.csv`` (``id,label``).

Class indices follow :data:`CIFAR10_CLASSES`, the alphabetical order of the names (torchvision's
``ImageFolder`` order in the book, and also CIFAR-10's own label order).
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import pickle
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from d2ljax.data import hub

__all__ = [
    "CIFAR10_CLASSES",
    "load_cifar10",
    "load_kaggle_cifar10",
    "read_kaggle_cifar10",
    "reorg_train_valid",
    "write_cifar10_submission",
]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

_SOURCES = ("auto", "samples", "tiny")

# ----------------------------------------------------------------------------------------------
# The python release (book §14.1)


def _read_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    d = pickle.loads(raw, encoding="bytes")  # noqa: S301 - the archive's digest was checked
    data = np.asarray(d[b"data"], np.uint8)
    labels = np.asarray(d[b"labels"], np.int32)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise hub.CorruptFileError(f"{name}: not a CIFAR-10 batch ({data.shape}, {labels.shape})")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@functools.lru_cache(maxsize=2)
def _cifar10_cached(path: str, size: int, mtime: int):
    train_x, train_y, test = [], [], None
    with tarfile.open(path, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        for i in range(1, 6):
            x, y = _read_batch(tar.extractfile(members[f"data_batch_{i}"]).read(), path)
            train_x.append(x)
            train_y.append(y)
        test = _read_batch(tar.extractfile(members["test_batch"]).read(), path)
    out = {"train": (np.concatenate(train_x), np.concatenate(train_y)), "test": test}
    for x, y in out.values():
        x.flags.writeable = y.flags.writeable = False
    return out


def load_cifar10(*, data_dir: str | os.PathLike | None = None) -> dict:
    """CIFAR-10: ``{"train": {"x": uint8 [50000, 32, 32, 3], "y": int32}, "test": {... 10000}}``
    from the python release (hub ``cifar10``: found locally or downloaded, MD5 checked)."""
    path = hub.download("cifar10", data_dir=data_dir)
    st = path.stat()
    try:
        cached = _cifar10_cached(str(path), st.st_size, st.st_mtime_ns)
    except (KeyError, tarfile.TarError, pickle.UnpicklingError, EOFError) as e:
        raise hub.CorruptFileError(f"{path} is not the CIFAR-10 python release: {e}") from None
    return {split: {"x": x, "y": y} for split, (x, y) in cached.items()}


# ----------------------------------------------------------------------------------------------
# The Kaggle layout (book §14.13)


def _decode_png(raw: bytes, name: str) -> np.ndarray:
    from PIL import Image  # Pillow comes with matplotlib

    try:
        with Image.open(io.BytesIO(raw)) as im:
            x = np.asarray(im.convert("RGB"), np.uint8)
    except Exception as e:  # noqa: BLE001 - any decoding failure names the file
        raise hub.CorruptFileError(f"{name}: cannot decode the image ({e})") from None
    return x


class _Files:
    """``{relative path: bytes reader}`` over a folder or a zip archive."""

    def __init__(self, root: Path):
        self.root = root
        if root.is_file() and zipfile.is_zipfile(root):
            self.zip = zipfile.ZipFile(root)
            self.names = [n for n in self.zip.namelist() if not n.endswith("/")]
        elif root.is_dir():
            self.zip = None
            self.names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        else:
            raise hub.DataNotFoundError(
                f"{root} is neither a folder nor a zip archive in the Kaggle CIFAR-10 layout "
                "(train/<id>.png, test/<id>.png, trainLabels.csv)"
            )

    def read(self, name: str) -> bytes:
        return self.zip.read(name) if self.zip is not None else (self.root / name).read_bytes()

    def pngs(self, folder: str) -> dict[int, str]:
        """``{id: name}`` of the PNGs directly inside a folder called ``folder``."""
        out = {}
        for n in self.names:
            parts = n.split("/")
            if len(parts) >= 2 and parts[-2] == folder and parts[-1].lower().endswith(".png"):
                stem = parts[-1][:-4]
                if stem.isdigit():
                    out[int(stem)] = n
        return out

    def find(self, filename: str) -> str | None:
        hits = sorted((n for n in self.names if n.split("/")[-1] == filename), key=len)
        return hits[0] if hits else None


def _read_labels(text: str, where: str) -> dict[int, str]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["id", "label"]:
        raise hub.CorruptFileError(f"{where}: expected the header 'id,label'")
    labels = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            labels[int(row[0])] = row[1].strip()
        except (ValueError, IndexError):
            raise hub.CorruptFileError(f"{where}, line {line}: not 'id,label': {row!r}") from None
    return labels


def _stack(files: _Files, names: list[str]) -> np.ndarray:
    if not names:
        return np.zeros((0, 32, 32, 3), np.uint8)
    images = [_decode_png(files.read(n), f"{files.root}:{n}") for n in names]
    shapes = {x.shape for x in images}
    if len(shapes) != 1:
        raise hub.CorruptFileError(f"{files.root}: images of different sizes {sorted(shapes)}")
    return np.stack(images)


def read_kaggle_cifar10(
    root: str | os.PathLike, labels_file: str | os.PathLike | None = None
) -> dict:
    """The Kaggle CIFAR-10 layout under ``root`` (a folder or a zip: ``train/<id>.png``,
    ``test/<id>.png`` and ``trainLabels.csv``, at any depth): ``{"train": {"x": uint8 NHWC, "y":
    int32, "id": int64}, "test": {"x": ..., "id": ...}}``, each sorted by id. ``labels_file`` (a
    CSV, or a zip holding one) replaces a missing or other ``trainLabels.csv``; it may list more
    ids than there are images (the full 50,000-row file with a sample)."""
    files = _Files(Path(root))
    train, test = files.pngs("train") or files.pngs("train_tiny"), files.pngs("test")
    if not train:
        raise hub.DataNotFoundError(f"{root} has no train/<id>.png images (the Kaggle layout)")
    if labels_file is not None:
        lf = _Files(Path(labels_file)) if zipfile.is_zipfile(labels_file) else None
        if lf is not None:
            name = lf.find("trainLabels.csv") or (lf.names[0] if lf.names else None)
            text, where = lf.read(name).decode(), f"{labels_file}:{name}"
        else:
            text, where = Path(labels_file).read_text(), str(labels_file)
    else:
        name = files.find("trainLabels.csv")
        if name is None:
            raise hub.DataNotFoundError(f"{root} has no trainLabels.csv")
        text, where = files.read(name).decode(), f"{root}:{name}"
    labels = _read_labels(text, where)
    ids = sorted(train)
    missing = [i for i in ids if i not in labels]
    if missing:
        raise hub.CorruptFileError(f"{where} has no label for training image(s) {missing[:5]}")
    unknown = sorted({labels[i] for i in ids} - set(CIFAR10_CLASSES))
    if unknown:
        raise hub.CorruptFileError(f"{where}: unknown class name(s) {unknown}")
    index = {c: k for k, c in enumerate(CIFAR10_CLASSES)}
    out = {
        "train": {
            "x": _stack(files, [train[i] for i in ids]),
            "y": np.asarray([index[labels[i]] for i in ids], np.int32),
            "id": np.asarray(ids, np.int64),
        }
    }
    test_ids = sorted(test)
    out["test"] = {
        "x": _stack(files, [test[i] for i in test_ids]),
        "id": np.asarray(test_ids, np.int64),
    }
    return out


def reorg_train_valid(labels, valid_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """The book's ``reorg_train_valid``: ``n = max(1, floor(m * valid_ratio))`` examples of every
    class go to the validation set, ``m`` the size of the smallest class; the first ``n`` of each
    class in the given order (the book takes them in directory-listing order; here, by id).
    Returns the indices ``(train, valid)``, each ascending."""
    if not 0 < valid_ratio < 1:
        raise ValueError(f"valid_ratio must lie in (0, 1), got {valid_ratio}")
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError("no labels to split")
    smallest = Counter(labels.tolist()).most_common()[-1][1]
    per_class = max(1, math.floor(smallest * valid_ratio))
    taken: Counter = Counter()
    valid = []
    for i, y in enumerate(labels.tolist()):
        if taken[y] < per_class:
            taken[y] += 1
            valid.append(i)
    valid_idx = np.asarray(valid, np.int64)
    train_idx = np.setdiff1d(np.arange(labels.size), valid_idx)
    return train_idx, valid_idx


def _frozen(split: dict) -> dict:
    for v in split.values():
        v.flags.writeable = False
    return split


@functools.lru_cache(maxsize=4)
def _kaggle_cached(root: str, labels: str | None, stamp: tuple) -> dict:
    data = read_kaggle_cifar10(root, labels)
    return {k: _frozen(v) for k, v in data.items()}


def _stamp(*paths) -> tuple:
    out = []
    for p in paths:
        if p is None:
            continue
        st = Path(p).stat()
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _sample_source(source: str, data_dir) -> tuple[Path, Path | None]:
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {_SOURCES}, not {source!r}")
    if source in ("auto", "samples"):
        try:
            return (
                hub.download("kaggle_cifar10_samples", data_dir=data_dir),
                hub.download("kaggle_cifar10_labels", data_dir=data_dir),
            )
        except hub.DataNotFoundError:
            if source == "samples":
                raise
    return hub.extract("cifar10_tiny", data_dir=data_dir), None


def load_kaggle_cifar10(
    root: str | os.PathLike | None = None,
    *,
    valid_ratio: float = 0.1,
    labels_file: str | os.PathLike | None = None,
    source: str = "auto",
    train_on: str = "train",
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """The Kaggle CIFAR-10 competition data with the book's validation split.

    Returns ``{"train", "valid", "train_valid": {"x": uint8 NHWC, "y": int32}, "test": {"x"},
    "_info": {...}}``: ``valid`` and ``train_valid`` minus it split every labelled image by
    :func:`reorg_train_valid`; ``train`` is that remainder, or with ``train_on="train_valid"``
    every labelled image (the book's final run before it predicts the test set); ``test`` has no
    labels. ``_info`` holds ``classes``, ``num_classes`` and ``submission`` (the test images,
    their ids and :func:`write_cifar10_submission`: what the experiment layer needs to write
    ``submission.csv``).

    Args:
      root: a folder or zip in the Kaggle layout (the full competition: unpack its train.7z and
        test.7z next to trainLabels.csv). None: a sample found through the hub, ``source``
        ``"samples"`` (the 1,000 + 100 PNGs), ``"tiny"`` (the book's kaggle_cifar10_tiny.zip) or
        ``"auto"`` (the first of them that is present or downloadable).
      valid_ratio: the book's ``valid_ratio``.
      labels_file: a ``trainLabels.csv`` (or a zip of it) to use instead of ``root``'s.
      train_on: ``"train"`` or ``"train_valid"``: what the ``train`` split holds.
    """
    if train_on not in ("train", "train_valid"):
        raise ValueError(f"train_on must be 'train' or 'train_valid', not {train_on!r}")
    if root is None:
        root, default_labels = _sample_source(source, data_dir)
        labels_file = labels_file if labels_file is not None else default_labels
    root = Path(root)
    if not root.exists():
        raise hub.DataNotFoundError(f"{root} does not exist (a Kaggle CIFAR-10 folder or zip)")
    data = _kaggle_cached(
        str(root),
        None if labels_file is None else str(labels_file),
        _stamp(root if root.is_file() else None, labels_file),
    )
    full = data["train"]
    tr, va = reorg_train_valid(full["y"], valid_ratio)
    labelled = {"x": full["x"], "y": full["y"]}
    test = data["test"]
    return {
        "train": labelled if train_on == "train_valid" else {k: v[tr] for k, v in labelled.items()},
        "valid": {k: v[va] for k, v in labelled.items()},
        "train_valid": labelled,
        "test": {"x": test["x"]},
        "_info": {
            "classes": CIFAR10_CLASSES,
            "num_classes": len(CIFAR10_CLASSES),
            "submission": {"x": test["x"], "ids": test["id"], "write": write_cifar10_submission},
        },
    }


def write_cifar10_submission(
    path: str | os.PathLike, ids, predictions, classes=CIFAR10_CLASSES
) -> Path:
    """Kaggle's ``submission.csv``: the header ``id,label``, then one row per test image with its
    class name, ordered as the book orders them (the ids sorted as strings: 1, 10, 100, ...).
    ``predictions`` are class indices ``[n]`` or scores ``[n, num_classes]`` (argmax taken)."""
    ids = np.asarray(ids).reshape(-1)
    preds = np.asarray(predictions)
    if preds.ndim == 2:
        preds = preds.argmax(axis=1)
    preds = preds.reshape(-1)
    if len(ids) != len(preds):
        raise ValueError(f"{len(ids)} ids but {len(preds)} predictions")
    if len(set(ids.tolist())) != len(ids):
        raise ValueError("the ids are not unique")
    if preds.size and (preds.min() < 0 or preds.max() >= len(classes)):
        raise ValueError(f"predicted class indices must lie in [0, {len(classes)})")
    order = sorted(range(len(ids)), key=lambda i: str(int(ids[i])))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        for i in order:
            w.writerow([int(ids[i]), classes[int(preds[i])]])
    return path
