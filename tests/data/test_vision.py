"""Tests of d2ljax.data.vision: real Fashion-MNIST (Debian's dataset-fashion-mnist, skipped when
absent), IDX parsing on tiny files written here, and the TFDS path on tfds.testing.mock_data
(which serves tfds.data_source without TensorFlow). No network: offline mode and a failing
urlopen are installed for every test."""

from __future__ import annotations

import gzip
import hashlib
import struct
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from d2ljax.data import hub, vision

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("D2LJAX_DATA_PATH", raising=False)
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    vision.clear_cache()
    yield tmp_path
    vision.clear_cache()


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def _write(path: Path, data: bytes, compress: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# ----------------------------------------------------------------------------------------------
# Labels


def test_text_labels():
    assert vision.FASHION_MNIST_LABELS[0] == "t-shirt"
    assert vision.FASHION_MNIST_LABELS[-1] == "ankle boot"
    assert len(vision.FASHION_MNIST_LABELS) == 10
    assert vision.text_labels([0, 9, 3]) == ["t-shirt", "ankle boot", "dress"]
    assert vision.text_labels(np.array([[1], [2]], dtype=np.int32)) == ["trouser", "pullover"]
    assert vision.text_labels(7) == ["sneaker"]
    assert vision.text_labels(np.array([4.0])) == ["coat"]
    assert vision.text_labels([3], vision.MNIST_LABELS) == ["3"]
    with pytest.raises(ValueError, match="out of range"):
        vision.text_labels([10])
    with pytest.raises(ValueError, match="integers"):
        vision.text_labels([1.5])


# ----------------------------------------------------------------------------------------------
# IDX parsing


def test_read_idx_tiny_files(tmp_path):
    images = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2)
    got = vision.read_idx(_write(tmp_path / "i.gz", _idx_bytes(images)))
    np.testing.assert_array_equal(got, images)
    assert got.dtype == np.uint8
    raw = vision.read_idx(_write(tmp_path / "i.idx", _idx_bytes(images), compress=False))
    np.testing.assert_array_equal(raw, images)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    got = vision.read_idx(_write(tmp_path / "n.gz", _idx_bytes(ints, 0x0C)))
    np.testing.assert_array_equal(got, ints)
    assert got.dtype == np.int32 and got.dtype.isnative


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"\x00\x00", "shorter than the 4-byte magic"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "instead of 0000"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown data type"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 1), "header needs 16 bytes"),
        (b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + b"\x00" * 5, "truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00" * 3, "trailing bytes"),
    ],
)
def test_read_idx_corrupt_file_names_it(tmp_path, data, pattern):
    path = _write(tmp_path / "bad-idx.gz", data)
    with pytest.raises(hub.CorruptFileError, match=pattern) as info:
        vision.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_gzip(tmp_path):
    full = gzip.compress(_idx_bytes(np.zeros((100, 28, 28), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(hub.CorruptFileError, match="corrupt or truncated gzip") as info:
        vision.read_idx(path)
    assert str(path) in str(info.value)


def _install_tiny_fashion(monkeypatch, root: Path, n_train=6, n_test=4, labels_train=None):
    """Registers tiny IDX files under the Fashion-MNIST hub names (their real digests differ)."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels": (
            np.arange(n_train, dtype=np.uint8) % 10 if labels_train is None else labels_train
        ),
        "t10k-images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for key, array in arrays.items():
        filename = f"{key}-idx{3 if 'images' in key else 1}-ubyte.gz"
        path = _write(root / "fashion-mnist" / filename, _idx_bytes(array))
        entry = hub.HubEntry(
            hub.FASHION_MNIST_URL + filename,
            ("sha1:" + hashlib.sha1(path.read_bytes()).hexdigest(),),
            subdir="fashion-mnist",
        )
        monkeypatch.setitem(hub.DATA_HUB, f"fashion-mnist-{key}", entry)
    return arrays


def test_idx_loader_on_tiny_files(monkeypatch, tmp_path):
    arrays = _install_tiny_fashion(monkeypatch, tmp_path / "cache")
    data = vision.load_fashion_mnist(source="idx")
    assert set(data) == {"train", "test"}
    x, y = data["train"]["x"], data["train"]["y"]
    assert x.shape == (6, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (6,) and y.dtype == np.int32
    np.testing.assert_array_equal(x[..., 0], arrays["train-images"])
    np.testing.assert_array_equal(data["test"]["y"], arrays["t10k-labels"])
    assert not x.flags.writeable  # cached arrays are shared, so read-only


def test_idx_loader_count_mismatch(monkeypatch, tmp_path):
    _install_tiny_fashion(monkeypatch, tmp_path / "cache", labels_train=np.zeros(5, np.uint8))
    with pytest.raises(hub.CorruptFileError, match="6 images but .* has 5 labels"):
        vision.load_fashion_mnist(source="idx")


def test_idx_loader_label_out_of_range(monkeypatch, tmp_path):
    _install_tiny_fashion(monkeypatch, tmp_path / "cache", labels_train=np.full(6, 12, np.uint8))
    with pytest.raises(hub.CorruptFileError, match="label 12 is outside"):
        vision.load_fashion_mnist(source="idx")


def test_bad_source():
    with pytest.raises(ValueError, match="source must be one of"):
        vision.load_fashion_mnist(source="torchvision")


# ----------------------------------------------------------------------------------------------
# Real Fashion-MNIST


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
@pytest.mark.parametrize("source", ["auto", "idx"])
def test_real_fashion_mnist(source):
    data = vision.load_fashion_mnist(source=source)
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = data[split]["x"], data[split]["y"]
        assert x.shape == (n, 28, 28, 1) and x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.int32
        assert y.min() == 0 and y.max() == 9
        np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, n // 10))
    assert data["train"]["x"].max() == 255 and data["train"]["x"].min() == 0
    assert vision.text_labels(data["train"]["y"][:2]) == ["ankle boot", "t-shirt"]

    start = time.perf_counter()
    again = vision.load_fashion_mnist(source=source)
    assert time.perf_counter() - start < 1.0
    assert again["train"]["x"] is data["train"]["x"]  # served from the in-memory cache


# ----------------------------------------------------------------------------------------------
# TFDS (mock data; tfds.testing.mock_data serves tfds.data_source without TensorFlow)


def test_tfds_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=7):
        data = vision.load_fashion_mnist(source="tfds")
    for split in ("train", "test"):
        x, y = data[split]["x"], data[split]["y"]
        assert x.shape == (7, 28, 28, 1) and x.dtype == np.uint8
        assert y.shape == (7,) and y.dtype == np.int32
        assert ((0 <= y) & (y < 10)).all()


def test_auto_falls_back_to_tfds_when_idx_missing():
    tfds = pytest.importorskip("tensorflow_datasets")
    # MNIST's IDX files are nowhere in this isolated environment and the hub is offline.
    with tfds.testing.mock_data(num_examples=3):
        data = vision.load_mnist(source="auto")
    assert data["train"]["x"].shape == (3, 28, 28, 1)
    assert data["test"]["y"].dtype == np.int32


def test_auto_reports_both_failures(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def no_tfds(*args, **kwargs):
        raise FileNotFoundError("dataset mnist not prepared")

    monkeypatch.setattr(tfds, "data_source", no_tfds)
    with pytest.raises(hub.DataNotFoundError) as info:
        vision.load_mnist()
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert hub.MNIST_URL in message
    assert "TFDS fallback" in message and "not prepared" in message


def test_idx_source_does_not_fall_back():
    with pytest.raises(hub.DataNotFoundError, match="mnist-train-images"):
        vision.load_mnist(source="idx")
