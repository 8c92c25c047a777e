"""CIFAR-10 (book §14.1, §14.13): the Kaggle layout on the real 1,000-image sample, the book's
reorg_train_valid split, submission.csv, a fixture in the competition's layout, the python
release's batch format."""

import csv
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from d2ljax.data import hub, load_dataset
from d2ljax.data.cifar10 import (
    CIFAR10_CLASSES,
    _cifar10_cached,
    load_cifar10,
    load_kaggle_cifar10,
    read_kaggle_cifar10,
    reorg_train_valid,
    write_cifar10_submission,
)


@pytest.fixture(scope="module")
def sample(shared_data):
    try:
        return load_dataset("kaggle_cifar10", source="samples")
    except hub.DataNotFoundError as e:
        pytest.skip(f"the Kaggle CIFAR-10 sample is not available: {e}")


def test_the_real_sample_and_the_book_split(sample, shared_data):
    tr, va, tv = sample["train"], sample["valid"], sample["train_valid"]
    assert tv["x"].shape == (1000, 32, 32, 3) and tv["x"].dtype == np.uint8
    assert tr["x"].shape == (900, 32, 32, 3) and va["x"].shape == (100, 32, 32, 3)
    assert sample["test"]["x"].shape == (100, 32, 32, 3) and set(sample["test"]) == {"x"}
    # every class has 100 images here, so floor(100 * 0.1) = 10 of each go to valid
    np.testing.assert_array_equal(np.bincount(va["y"], minlength=10), [10] * 10)
    np.testing.assert_array_equal(np.bincount(tv["y"], minlength=10), [100] * 10)
    info = sample["_info"]
    assert info["classes"] == CIFAR10_CLASSES and info["num_classes"] == 10
    ids = info["submission"]["ids"]
    np.testing.assert_array_equal(ids, np.arange(1, 101))
    # image 1 is a frog (trainLabels.csv), pixel for pixel the PNG in the zip
    with zipfile.ZipFile(shared_data / "kaggle_cifar10_samples_1000train_100test.zip") as z:
        png = z.read("kaggle_cifar10_samples/train/1.png")
    np.testing.assert_array_equal(tv["x"][0], np.asarray(Image.open(io.BytesIO(png))))
    assert CIFAR10_CLASSES[tv["y"][0]] == "frog"
    train_all = load_dataset("kaggle_cifar10", source="samples", train_on="train_valid")
    assert len(train_all["train"]["y"]) == 1000


def test_reorg_train_valid_is_the_books_rule():
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1, 0, 0, 2, 1, 1])  # smallest class: 4 examples
    train, valid = reorg_train_valid(labels, 0.5)  # floor(4 * 0.5) = 2 per class, first ones
    np.testing.assert_array_equal(valid, [0, 1, 2, 3, 4, 6])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid])), np.arange(14))
    _, valid = reorg_train_valid(labels, 0.1)  # max(1, floor(0.4)) = 1 per class
    np.testing.assert_array_equal(valid, [0, 1, 3])
    with pytest.raises(ValueError, match="valid_ratio"):
        reorg_train_valid(labels, 1.0)


def _kaggle_folder(root, n_train=12, n_test=3, labels=None):
    """A fixture in the competition's layout: random PNGs, ids 1..n, trainLabels.csv."""
    rs = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for folder, n in (("train", n_train), ("test", n_test)):
        for i in range(1, n + 1):
            pixels = rs.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{i}.png")
    labels = labels or [CIFAR10_CLASSES[i % 3] for i in range(n_train)]
    rows = "".join(f"{i},{c}\n" for i, c in enumerate(labels, start=1))
    (root / "trainLabels.csv").write_text("id,label\n" + rows)
    return root


def test_a_folder_and_a_zip_in_the_kaggle_layout(tmp_path):
    root = _kaggle_folder(tmp_path / "cifar-10")
    data = read_kaggle_cifar10(root)
    np.testing.assert_array_equal(data["train"]["id"], np.arange(1, 13))  # by id, not by name
    np.testing.assert_array_equal(data["train"]["y"], [0, 1, 2] * 4)
    np.testing.assert_array_equal(
        data["train"]["x"][9], np.asarray(Image.open(root / "train" / "10.png"))
    )
    z = tmp_path / "cifar.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                f.write(p, "cifar-10/" + p.relative_to(root).as_posix())
    from_zip = load_kaggle_cifar10(z, valid_ratio=0.25)
    np.testing.assert_array_equal(from_zip["train_valid"]["x"], data["train"]["x"])
    assert len(from_zip["valid"]["y"]) == 3 and len(from_zip["train"]["y"]) == 9


def test_bad_kaggle_folders_are_clear_errors(tmp_path):
    root = _kaggle_folder(tmp_path / "a", labels=["frog"] * 11)
    with pytest.raises(hub.CorruptFileError, match="no label for training image"):
        read_kaggle_cifar10(root)
    root = _kaggle_folder(tmp_path / "b", labels=["frog"] * 11 + ["unicorn"])
    with pytest.raises(hub.CorruptFileError, match="unknown class.*unicorn"):
        read_kaggle_cifar10(root)
    with pytest.raises(hub.DataNotFoundError, match="does not exist"):
        load_kaggle_cifar10(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(hub.DataNotFoundError, match="no train/<id>.png"):
        read_kaggle_cifar10(tmp_path / "empty")
    with pytest.raises(ValueError, match="train_on"):
        load_kaggle_cifar10(tmp_path / "a", train_on="everything")


def test_submission_csv(tmp_path):
    ids = np.array([1, 2, 10, 11, 100])
    scores = np.eye(10)[[6, 9, 0, 3, 8]]
    path = write_cifar10_submission(tmp_path / "sub" / "submission.csv", ids, scores)
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["id", "label"]
    # the book's order: ids sorted as strings (1, 10, 100, 11, 2)
    assert rows[1:] == [["1", "frog"], ["10", "airplane"], ["100", "ship"], ["11", "cat"],
                        ["2", "truck"]]
    with pytest.raises(ValueError, match="2 ids but 3"):
        write_cifar10_submission(tmp_path / "x.csv", [1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        write_cifar10_submission(tmp_path / "x.csv", [1], [10])
    with pytest.raises(ValueError, match="unique"):
        write_cifar10_submission(tmp_path / "x.csv", [1, 1], [0, 1])


def test_the_python_release_format(tmp_path):
    """A stand-in archive in the release's format (cifar-10-batches-py/data_batch_1..5,
    test_batch: pickled dicts of row-major CHW bytes), as the format test it is."""
    rs = np.random.default_rng(0)
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rs.integers(0, 256, (4, 3072), dtype=np.uint8)
            raw = pickle.dumps({b"data": data, b"labels": list(range(4))})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
            if name == "data_batch_1":
                first = data[0].reshape(3, 32, 32).transpose(1, 2, 0)
    out = _cifar10_cached(str(path), 0, 0)
    x, y = out["train"]
    assert x.shape == (20, 32, 32, 3) and y.tolist() == [0, 1, 2, 3] * 5
    np.testing.assert_array_equal(x[0], first)
    assert out["test"][0].shape == (4, 32, 32, 3)


def test_the_real_release_when_present():
    try:
        data = load_cifar10()
    except hub.DataNotFoundError as e:
        pytest.skip(f"cifar-10-python.tar.gz is not available offline: {e}")
    assert data["train"]["x"].shape == (50000, 32, 32, 3)
    assert data["test"]["x"].shape == (10000, 32, 32, 3)
    assert hub.DATA_HUB["cifar10"].digests == ("md5:c58f30108f718f92721af3b95e74349a",)
