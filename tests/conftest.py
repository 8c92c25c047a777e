"""Test-wide settings: offline data, the shared course files, CPU only, quiet progress, a
persistent compilation cache, and the ``slow`` tier.

Compiled programs are kept on disk (``$D2LJAX_TEST_JAX_CACHE``, default
``~/.cache/d2ljax/test-jax-cache``): the xdist workers and the subprocesses of the multi-device
tests share what one of them compiled, and a second run compiles almost nothing.

``pytest -m "not slow"`` is the development tier: it leaves out the notebooks, the multi-device
and multi-process runs (subprocesses), the real-data training runs (the ``fashion_mnist``
fixture) and the tests marked ``slow`` by hand.
"""

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
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.environ.get("D2LJAX_TEST_JAX_CACHE")
    or os.path.join(os.path.expanduser("~"), ".cache", "d2ljax", "test-jax-cache"),
)

import jax  # noqa: E402
import pytest  # noqa: E402

# Keep every program, however quick to compile: the suite is thousands of small ones.
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


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


_SLOW_DIRS = ("parallel",)
_SLOW_FILES = ("test_parallel_fit.py", "test_notebooks.py", "test_tpu_scripts.py")


def pytest_collection_modifyitems(config, items):
    """Mark the slow tier (see the module docstring)."""
    slow = pytest.mark.slow
    for item in items:
        path = Path(str(item.fspath))
        if (
            item.get_closest_marker("notebook")
            or path.name in _SLOW_FILES
            or path.parent.name in _SLOW_DIRS
            or "fashion_mnist" in getattr(item, "fixturenames", ())
        ):
            item.add_marker(slow)
