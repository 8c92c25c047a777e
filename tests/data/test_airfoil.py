"""The airfoil self-noise data (§12.5): the loader, the registered dataset, one tiny run."""

import urllib.request
from pathlib import Path

import numpy as np
import pytest

from d2ljax.data import hub, load_dataset
from d2ljax.data.tabular import load_airfoil

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HAVE_AIRFOIL = (SHARED_DATA / "airfoil_self_noise.dat").is_file()
needs_airfoil = pytest.mark.skipif(not HAVE_AIRFOIL, reason=f"no airfoil file in {SHARED_DATA}")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(SHARED_DATA))
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@needs_airfoil
def test_shapes_and_standardization():
    split = load_airfoil()["train"]
    assert split["x"].shape == (1500, 5) and split["y"].shape == (1500, 1)
    assert split["x"].dtype == np.float32 and split["y"].dtype == np.float32
    # Standardized over all 1503 rows (population std), label included, as the book does.
    every = load_airfoil(num_examples=1503)["train"]
    table = np.concatenate([every["x"], every["y"]], axis=1).astype(np.float64)
    np.testing.assert_allclose(table.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(table.std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(every["x"][:1500], split["x"])
    # The first row by hand from the raw file: 800 Hz, angle 0, chord 0.3048 m, 71.3 m/s, ...
    raw = np.loadtxt(SHARED_DATA / "airfoil_self_noise.dat", delimiter="\t")
    expected = (raw[0] - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(split["x"][0], expected[:5], rtol=1e-5)
    np.testing.assert_allclose(split["y"][0, 0], expected[5], rtol=1e-5)


@needs_airfoil
def test_registered_dataset_and_arguments():
    split = load_dataset("airfoil", num_examples=100)["train"]
    assert split["x"].shape == (100, 5)
    np.testing.assert_array_equal(split["x"], load_airfoil()["train"]["x"][:100])
    with pytest.raises(ValueError, match="num_examples"):
        load_airfoil(num_examples=2000)


def test_missing_or_wrong_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("D2LJAX_DATA_PATH")
    with pytest.raises(hub.DataNotFoundError, match="airfoil_self_noise.dat"):
        load_airfoil()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "airfoil_self_noise.dat").write_text("1\t2\t3\n")
    with pytest.raises(hub.ChecksumError):
        load_airfoil(data_dir=bad)


@needs_airfoil
def test_the_book_gradient_descent_run():
    """airfoil_sgd:gd, the book's full-batch run (10 epochs, lr 1): loss ~0.24 as in §12.5."""
    from d2ljax.cli import load_config
    from d2ljax.experiment import run

    history = run(load_config("airfoil_sgd:gd"), None, progress=False).history
    assert len(history["val_loss"]) == 10
    assert history["val_loss"][0] > history["val_loss"][-1]
    assert 0.23 < history["val_loss"][-1] < 0.26
