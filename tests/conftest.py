"""Test-wide settings: offline data, the shared course files, CPU only, quiet progress."""

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("D2LJAX_OFFLINE", "1")
os.environ.setdefault("D2LJAX_DATA", tempfile.mkdtemp(prefix="d2ljax-test-cache-"))
if SHARED_DATA.is_dir():
    extra = [str(SHARED_DATA)] + [
        p for p in os.environ.get("D2LJAX_DATA_PATH", "").split(os.pathsep) if p
    ]
    os.environ["D2LJAX_DATA_PATH"] = os.pathsep.join(extra)
os.environ.setdefault("CI", os.environ.get("CI", ""))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared course data ({SHARED_DATA}) is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fashion_mnist():
    """Real Fashion-MNIST (the Debian package dataset-fashion-mnist, or the user cache)."""
    from d2ljax.data import load_dataset
    from d2ljax.data.hub import DataNotFoundError

    try:
        return load_dataset("fashion_mnist")
    except DataNotFoundError as e:
        pytest.skip(f"Fashion-MNIST not available: {e}")
