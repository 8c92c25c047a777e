"""DCGAN (book §20.2) end to end: the Pokémon loader (skips without the hub's file), the image-
folder reader, the Fréchet distance, and the ``dcgan:cpu`` config learning real Fashion-MNIST."""

import jax
import numpy as np
import pytest

from d2ljax.cli import load_config
from d2ljax.config import apply_overrides
from d2ljax.data import hub, image_transform
from d2ljax.data.pokemon import load_image_folder, load_pokemon
from d2ljax.experiment import build, run
from d2ljax.tasks.gan import frechet_distance


def test_pokemon_loads_as_the_book_reads_it():
    """The hub's pokemon.zip (SHA-1 c065c0e2...) as ImageFolder + Resize((64, 64)) reads it."""
    try:
        data = load_pokemon()
    except hub.DataNotFoundError as e:
        pytest.skip(f"pokemon.zip is not available offline: {str(e).splitlines()[0]}")
    x, y = data["train"]["x"], data["train"]["y"]
    assert x.dtype == np.uint8 and x.shape[1:] == (64, 64, 3) and len(x) > 10_000
    assert y.min() == 0 and len(y) == len(x) and np.all(np.diff(y) >= 0)


def test_image_folder_reads_classes_in_order_and_resizes(tmp_path):
    """On a folder of three small PNG/JPEG files written here (made up for this test, not a
    dataset): classes sorted by folder name, RGB, resized to the size asked for."""
    from PIL import Image

    for cls, name, size, colour in [
        ("b", "1.png", (8, 8), (255, 0, 0)),
        ("a", "2.jpg", (10, 6), (0, 255, 0)),
        ("a", "1.png", (8, 8), (0, 0, 255)),
    ]:
        (tmp_path / cls).mkdir(exist_ok=True)
        Image.new("RGB" if name.endswith("jpg") else "L", size, colour[0]).save(
            tmp_path / cls / name
        )
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    out = load_image_folder(tmp_path, size=4)
    assert out["x"].shape == (3, 4, 4, 3) and out["x"].dtype == np.uint8
    np.testing.assert_array_equal(out["y"], [0, 0, 1])
    assert out["x"][0].max() == 0 and out["x"][2].min() == 255  # a/1.png (0), b/1.png (255)
    with pytest.raises(hub.CorruptFileError, match="several sizes"):
        load_image_folder(tmp_path)
    (tmp_path / "b" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(hub.CorruptFileError, match="bad.png"):
        load_image_folder(tmp_path, size=4)


def test_frechet_distance_against_closed_forms():
    """Equal sets: 0; N(m1, I) vs N(m2, 4 I) in D dims (sampled): |m1 - m2|^2 + D (1 + 4 -
    2 * 2) = |m1 - m2|^2 + D; a constant set: |m - m_b|^2 + tr(C_b)."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 3))
    b = rng.normal(1, 2, (20000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(3 + 3, rel=0.03)
    const = np.zeros((10, 3))
    want = (b.mean(0) ** 2).sum() + np.trace(np.cov(b.T))
    assert frechet_distance(const, b) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="need two"):
        frechet_distance(a, b[:, :2])


def _features(x_BHW1):
    """8x8 average-pooled pixels in [-1, 1] of 16x16 images: 64 numbers an image."""
    x = np.asarray(x_BHW1, np.float64)[..., 0]
    return x.reshape(len(x), 8, 2, 8, 2).mean((2, 4)).reshape(len(x), 64)


@pytest.mark.slow
def test_dcgan_cpu_config_learns_fashion_mnist(fashion_mnist):
    """``dcgan:cpu`` (the book's nets and Adam 0.005 / betas (0.5, 0.999), at 16x16, n 16) for
    150 steps (9600 real training images, one epoch): the Fréchet distance of its samples' 8x8
    pooled pixels to 2000 test images falls below half the untrained generator's and below
    that of the best constant image (the test mean: tr(C), the pixels' total variance), where
    two disjoint sets of 2000 test images are within 0.2 of each other."""
    cfg = apply_overrides(load_config("dcgan:cpu"), ["data.limit=9600", "epochs=1"])
    res = run(cfg, None, progress=False)
    assert res.history["epoch"] == [1]
    assert np.isfinite(res.history["train_loss_D"][0]) and np.isfinite(
        res.history["train_loss_G"][0]
    )
    test_x = fashion_mnist["test"]["x"]
    to_pixels = lambda x: 2 * np.asarray(image_transform(16)({"x": x})["x"]) - 1
    real = _features(to_pixels(test_x[:2000]))
    other = _features(to_pixels(test_x[5000:7000]))

    def sample(task, state):
        return _features(
            np.concatenate(
                [np.asarray(task.sample(state, jax.random.key(i), 500)) for i in range(4)]
            )
        )

    fresh = build(cfg)
    from d2ljax.experiment import _gan_task

    untrained_task = _gan_task(fresh, "float32")
    untrained = sample(untrained_task, untrained_task.init(jax.random.key(0)))
    trained = sample(res.task, res.state)
    fd = {
        "real": frechet_distance(other, real),
        "trained": frechet_distance(trained, real),
        "untrained": frechet_distance(untrained, real),
        "constant": float(np.trace(np.cov(real.T))),
    }
    print("Frechet distances (8x8 pooled pixels):", fd)
    assert fd["real"] < 0.2
    assert fd["trained"] < 0.5 * fd["untrained"]
    assert fd["trained"] < fd["constant"]
