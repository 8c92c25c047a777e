"""Fashion-MNIST and MNIST as in-memory NumPy arrays (book §4.2 and the CNN chapters).

Both loaders return the same structure::

    {"train": {"x": uint8 [60000, 28, 28, 1], "y": int32 [60000]},
     "test":  {"x": uint8 [10000, 28, 28, 1], "y": int32 [10000]}}

Images are raw NHWC ``uint8``; scaling to float happens in the input pipeline. The arrays are
cached in memory and returned read-only (copy them before modifying in place).

Sources: ``"idx"`` reads the original gzip IDX files through :mod:`d2ljax.data.hub` (local copies
first: the cache, ``$D2LJAX_DATA_PATH``, ``/usr/share/datasets/fashion-mnist`` from Debian's
``dataset-fashion-mnist``; else downloaded and checked). ``"tfds"`` reads a prepared TFDS dataset
with ``tfds.data_source`` (no TensorFlow needed). ``"auto"`` tries the IDX files, then TFDS.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from d2ljax.data import hub

__all__ = [
    "FASHION_MNIST_LABELS",
    "MNIST_LABELS",
    "clear_cache",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "text_labels",
]

FASHION_MNIST_LABELS: tuple[str, ...] = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
MNIST_LABELS: tuple[str, ...] = tuple(str(i) for i in range(10))

# IDX type codes (third magic byte) -> big-endian NumPy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# dataset -> split -> (hub name of the images, hub name of the labels)
_HUB_FILES = {
    "fashion_mnist": {
        "train": ("fashion-mnist-train-images", "fashion-mnist-train-labels"),
        "test": ("fashion-mnist-t10k-images", "fashion-mnist-t10k-labels"),
    },
    "mnist": {
        "train": ("mnist-train-images", "mnist-train-labels"),
        "test": ("mnist-t10k-images", "mnist-t10k-labels"),
    },
}
_SOURCES = ("auto", "idx", "tfds")
_NUM_CLASSES = 10


def text_labels(indices, names: Sequence[str] = FASHION_MNIST_LABELS) -> list[str]:
    """The text labels of class indices (an int, a sequence or an array of any shape, flattened)."""
    flat = np.asarray(indices).reshape(-1)
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        if not np.all(np.equal(np.mod(flat, 1), 0)):
            raise ValueError(f"class indices must be integers, got {flat.dtype} values")
        flat = flat.astype(np.int64)
    bad = flat[(flat < 0) | (flat >= len(names))]
    if bad.size:
        raise ValueError(f"class index {int(bad[0])} is out of range [0, {len(names)})")
    return [names[int(i)] for i in flat]


# ----------------------------------------------------------------------------------------------
# IDX files


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (gzip-compressed or not) into an array in native byte order.

    Header: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
    dimension; the data follow and must fill exactly the product of the dimensions.

    Raises:
      CorruptFileError: naming the file, when it is truncated, not gzip or not IDX.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(2)
    try:
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise hub.CorruptFileError(f"{path}: corrupt or truncated gzip data ({e})") from e
    return _parse_idx(raw, path)


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    def corrupt(why: str) -> hub.CorruptFileError:
        return hub.CorruptFileError(f"{path} is not a valid IDX file: {why}")

    if len(raw) < 4:
        raise corrupt(f"only {len(raw)} bytes, shorter than the 4-byte magic number")
    zero, type_code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00":
        raise corrupt(f"magic number starts with {zero.hex()} instead of 0000")
    if type_code not in _IDX_DTYPES:
        raise corrupt(f"unknown data type code 0x{type_code:02x}")
    if ndim == 0:
        raise corrupt("zero dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise corrupt(f"header needs {header} bytes, file has {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        state = "truncated" if actual < expected else "has trailing bytes"
        raise corrupt(f"dims {dims} need {expected} data bytes, found {actual} ({state})")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=False)


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _load_split_cached(
    images_key: tuple[str, int, int], labels_key: tuple[str, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = Path(images_key[0]), Path(labels_key[0])
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise hub.CorruptFileError(
            f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise hub.CorruptFileError(
            f"{labels_path}: expected uint8 labels [N], got {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise hub.CorruptFileError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= _NUM_CLASSES:
        raise hub.CorruptFileError(
            f"{labels_path}: label {int(labels.max())} is outside [0, {_NUM_CLASSES})"
        )
    x = images[..., None]
    y = labels.astype(np.int32)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _load_idx(dataset: str, data_dir) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for split, (images_name, labels_name) in _HUB_FILES[dataset].items():
        images_path = hub.download(images_name, data_dir=data_dir)
        labels_path = hub.download(labels_name, data_dir=data_dir)
        x, y = _load_split_cached(_file_key(images_path), _file_key(labels_path))
        out[split] = {"x": x, "y": y}
    return out


# ----------------------------------------------------------------------------------------------
# TFDS


@functools.lru_cache(maxsize=4)
def _load_tfds_cached(tfds_name: str, tfds_data_dir: str | None, download: bool):
    import tensorflow_datasets as tfds  # optional at import time of d2ljax

    out = {}
    for split in ("train", "test"):
        source = tfds.data_source(tfds_name, split=split, data_dir=tfds_data_dir, download=download)
        n = len(source)
        images, labels = [], []
        for i in range(n):  # records hold PNG bytes: decoding, not indexing, is the cost
            record = source[i]
            images.append(np.asarray(record["image"], dtype=np.uint8))
            labels.append(record["label"])
        x = np.stack(images) if images else np.zeros((0, 28, 28, 1), np.uint8)
        if x.ndim == 3:
            x = x[..., None]
        y = np.asarray(labels, dtype=np.int32).reshape(-1)
        x.flags.writeable = False
        y.flags.writeable = False
        out[split] = (x, y)
    return out


def _load_tfds(tfds_name: str, tfds_data_dir) -> dict[str, dict[str, np.ndarray]]:
    cached = _load_tfds_cached(
        tfds_name, None if tfds_data_dir is None else str(tfds_data_dir), not hub.is_offline()
    )
    return {split: {"x": x, "y": y} for split, (x, y) in cached.items()}


def clear_cache() -> None:
    """Forgets the arrays held in memory (they are reloaded on the next call)."""
    _load_split_cached.cache_clear()
    _load_tfds_cached.cache_clear()


# ----------------------------------------------------------------------------------------------
# Public loaders


def _load(dataset: str, tfds_name: str, data_dir, source: str, tfds_data_dir):
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {_SOURCES}, not {source!r}")
    if source == "idx":
        return _load_idx(dataset, data_dir)
    if source == "tfds":
        return _load_tfds(tfds_name, tfds_data_dir)
    try:
        return _load_idx(dataset, data_dir)
    except hub.DataNotFoundError as idx_error:
        try:
            return _load_tfds(tfds_name, tfds_data_dir)
        except Exception as tfds_error:  # any TFDS failure: report both ways of getting the data
            raise hub.DataNotFoundError(
                f"{idx_error}\n\nThe TFDS fallback (tfds.data_source({tfds_name!r})) failed too: "
                f"{type(tfds_error).__name__}: {tfds_error}"
            ) from tfds_error


def load_fashion_mnist(
    *, data_dir: str | os.PathLike | None = None, source: str = "auto", tfds_data_dir=None
) -> dict[str, dict[str, np.ndarray]]:
    """Fashion-MNIST (Xiao et al. 2017) as ``{"train"|"test": {"x": uint8 NHWC, "y": int32}}``.

    Args:
      data_dir: the hub's cache folder (searched first, downloads land there).
      source: ``"idx"``, ``"tfds"`` or ``"auto"`` (IDX files if found or downloadable, else TFDS).
      tfds_data_dir: TFDS's own data folder for ``source="tfds"`` (default: TFDS's default).
    """
    return _load("fashion_mnist", "fashion_mnist", data_dir, source, tfds_data_dir)


def load_mnist(
    *, data_dir: str | os.PathLike | None = None, source: str = "auto", tfds_data_dir=None
) -> dict[str, dict[str, np.ndarray]]:
    """MNIST (LeCun et al. 1998); same arguments and format as :func:`load_fashion_mnist`."""
    return _load("mnist", "mnist", data_dir, source, tfds_data_dir)
