"""Image augmentation (book §14.1): every op against dm-pix or an explicit formula on fixed keys,
same key -> same image, per-example keys in a batch, config names and their errors."""

import chex
import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from d2ljax.data import augment as A


@pytest.fixture(scope="module")
def image():
    return jax.random.uniform(jax.random.key(7), (12, 10, 3))


KEYS = [jax.random.key(s) for s in range(6)]


@pytest.mark.parametrize("key", KEYS)
def test_flips_equal_dm_pix(key, image):
    for ours, theirs in [
        (A.random_flip_left_right, pix.random_flip_left_right),
        (A.random_flip_up_down, pix.random_flip_up_down),
    ]:
        np.testing.assert_array_equal(ours(key, image), theirs(key, image))
    np.testing.assert_array_equal(A.flip_left_right(image), np.asarray(image)[:, ::-1])
    np.testing.assert_array_equal(A.flip_up_down(image), np.asarray(image)[::-1])


def test_flip_probability_extremes(image):
    np.testing.assert_array_equal(A.random_flip_left_right(KEYS[0], image, 1.0), image[:, ::-1])
    np.testing.assert_array_equal(A.random_flip_left_right(KEYS[0], image, 0.0), image)
    flipped = [bool((A.random_flip_left_right(k, image) != image).any()) for k in KEYS]
    assert any(flipped) and not all(flipped)


@pytest.mark.parametrize("key", KEYS)
def test_colour_ops_equal_dm_pix_for_the_same_key(key, image):
    np.testing.assert_array_equal(
        A.random_brightness(key, image, 0.3), pix.random_brightness(key, image, 0.3)
    )
    chex.assert_trees_all_close(
        A.random_contrast(key, image, 0.5, 1.5), pix.random_contrast(key, image, 0.5, 1.5),
        atol=1e-6,
    )
    chex.assert_trees_all_close(
        A.random_saturation(key, image, 0.2, 1.8), pix.random_saturation(key, image, 0.2, 1.8),
        atol=2e-6,
    )
    chex.assert_trees_all_close(
        A.random_hue(key, image, 0.5), pix.random_hue(key, image, 0.5), atol=2e-6
    )


def test_hsv_written_out_equals_dm_pix(image):
    hsv = A.rgb_to_hsv(image)
    chex.assert_trees_all_close(hsv, pix.rgb_to_hsv(image), atol=1e-6)
    chex.assert_trees_all_close(A.hsv_to_rgb(hsv), pix.hsv_to_rgb(hsv), atol=1e-6)
    chex.assert_trees_all_close(A.hsv_to_rgb(hsv), image, atol=1e-6)
    grey = jnp.full((2, 2, 3), 0.4)
    np.testing.assert_array_equal(A.rgb_to_hsv(grey)[..., :2], 0.0)  # no hue, no saturation


@pytest.mark.parametrize("key", KEYS)
def test_random_crop_equals_dm_pix_and_slicing(key, image):
    ours = A.random_crop(key, image, (5, 4))
    np.testing.assert_array_equal(ours, pix.random_crop(key, image, (5, 4, 3)))
    # the window is a slice of the image
    x = np.asarray(image)
    hits = [
        (i, j) for i in range(12 - 5 + 1) for j in range(10 - 4 + 1)
        if np.array_equal(x[i : i + 5, j : j + 4], ours)
    ]
    assert len(hits) == 1


def test_random_crop_with_padding_sees_the_zero_border():
    img = jnp.ones((4, 4, 3))
    crops = [A.random_crop(k, img, 4, padding=2) for k in KEYS]
    assert all(c.shape == (4, 4, 3) for c in crops)
    assert any(float(c.min()) == 0.0 for c in crops)
    with pytest.raises(ValueError, match="larger than"):
        A.random_crop(KEYS[0], img, 5)


def test_crop_and_resize_is_slicing_at_scale_one_and_resize_on_the_whole_image(image):
    out = A.crop_and_resize(image, 3, 2, 5, 6, (5, 6))
    np.testing.assert_array_equal(out, np.asarray(image)[3:8, 2:8])
    out = jax.jit(A.crop_and_resize, static_argnums=5)(image, 0, 0, 12, 10, (6, 5))
    chex.assert_trees_all_close(out, jax.image.resize(image, (6, 5, 3), "linear"), atol=1e-6)
    out = A.crop_and_resize(image, 0, 0, 12, 10, (24, 20))
    chex.assert_trees_all_close(out, jax.image.resize(image, (24, 20, 3), "linear"), atol=1e-6)


@pytest.mark.slow
def test_resized_crop_box_follows_torchvision_ranges():
    boxes = jax.vmap(lambda k: jnp.stack(A.resized_crop_box(k, 32, 32, (0.64, 1.0), (1.0, 1.0))))(
        jax.random.split(jax.random.key(0), 500)
    )
    top, left, h, w = np.asarray(boxes).T
    np.testing.assert_array_equal(h, w)  # ratio 1: square boxes
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 32).all() and (left + w <= 32).all()
    area = h * w / 1024
    assert area.min() >= 0.60 and area.max() <= 1.0  # rounding of the side: 0.64 -> 25.6 px
    boxes = jax.vmap(lambda k: jnp.stack(A.resized_crop_box(k, 30, 40)))(
        jax.random.split(jax.random.key(1), 500)
    )
    _, _, h, w = np.asarray(boxes).T
    ratio = w / h
    assert ratio.min() >= 0.70 and ratio.max() <= 1.40 and len(set(h.tolist())) > 10
    # nothing can fit: torchvision's fallback, the central box with the ratio clamped
    fallback = [int(v) for v in A.resized_crop_box(KEYS[0], 20, 40, (2.0, 3.0), (1.0, 1.0))]
    assert fallback == [0, 10, 20, 20]


def test_random_resized_crop_shape_and_determinism(image):
    f = jax.jit(lambda k, x: A.random_resized_crop(k, x, 8, (0.3, 1.0)))
    out = f(KEYS[0], image)
    assert out.shape == (8, 8, 3)
    np.testing.assert_array_equal(out, f(KEYS[0], image))
    assert not np.array_equal(out, f(KEYS[1], image))


def _jitter_reference(key, x, b, c, s, h):
    """torchvision's ColorJitter, fixed order, with the factors drawn as color_jitter draws them."""
    _, kb, kc, ks, kh = jax.random.split(key, 5)
    fb = float(jax.random.uniform(kb, (), minval=max(0, 1 - b), maxval=1 + b))
    fc = float(jax.random.uniform(kc, (), minval=max(0, 1 - c), maxval=1 + c))
    fs = float(jax.random.uniform(ks, (), minval=max(0, 1 - s), maxval=1 + s))
    fh = float(jax.random.uniform(kh, (), minval=-h, maxval=h))
    x = np.asarray(x, np.float64)
    grey = lambda y: (y @ np.array([0.299, 0.587, 0.114]))[..., None]
    x = np.clip(fb * x, 0, 1)
    x = np.clip(fc * x + (1 - fc) * grey(x).mean(), 0, 1)
    x = np.clip(fs * x + (1 - fs) * grey(x), 0, 1)
    return np.asarray(pix.adjust_hue(jnp.asarray(x, jnp.float32), fh))


@pytest.mark.parametrize("key", KEYS[:3])
def test_color_jitter_is_torchvision_colour_jitter(key, image):
    ours = A.color_jitter(key, image, 0.5, 0.5, 0.5, 0.5, random_order=False)
    chex.assert_trees_all_close(ours, _jitter_reference(key, image, 0.5, 0.5, 0.5, 0.5), atol=1e-5)
    assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0


def test_color_jitter_amounts_and_order(image):
    np.testing.assert_array_equal(A.color_jitter(KEYS[0], image), image)  # nothing asked
    grey = jnp.broadcast_to(A.grayscale(image), image.shape)
    chex.assert_trees_all_close(A.color_jitter(KEYS[0], grey, saturation=0.9), grey, atol=1e-6)
    jit = jax.jit(lambda k, x: A.color_jitter(k, x, 0.4, 0.4, 0.4, 0.1))
    outs = [np.asarray(jit(k, image)) for k in KEYS]
    np.testing.assert_array_equal(outs[0], jit(KEYS[0], image))
    assert len({o.tobytes() for o in outs}) == len(outs)
    with pytest.raises(ValueError, match="hue"):
        A.ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="brightness"):
        A.ColorJitter(brightness=-1)


def test_batch_augment_uses_one_key_per_example():
    x = jax.random.uniform(jax.random.key(3), (6, 8, 8, 3))
    batch = {"x": x, "y": jnp.arange(6)}
    op = A.Compose((A.RandomFlipLeftRight(), A.RandomResizedCrop(8, (0.5, 1.0))))
    aug = A.BatchAugment(op)
    key = jax.random.key(11)
    out = jax.jit(aug)(key, batch)
    np.testing.assert_array_equal(out["y"], batch["y"])
    keys = jax.random.split(key, 6)
    one = jax.jit(op)
    for i in range(6):
        chex.assert_trees_all_close(out["x"][i], one(keys[i], x[i]), atol=1e-6)
    chex.assert_trees_all_close(aug(key, batch)["x"], out["x"], atol=1e-6)  # jit == no jit
    assert not np.array_equal(aug(jax.random.key(12), batch)["x"], out["x"])


def test_make_augment_names_values_and_errors():
    spec = [{"name": "flip_left_right"}, {"name": "random_resized_crop", "size": 32,
                                          "scale": [0.64, 1.0], "ratio": [1.0, 1.0]}]
    a, b = A.make_augment(spec), A.make_augment([dict(s) for s in spec])
    assert a == b and hash(a) == hash(b)  # equal configs share compiled steps
    assert a.op.ops[1] == A.RandomResizedCrop((32, 32), (0.64, 1.0), (1.0, 1.0))
    assert A.make_augment(None) is None and A.make_augment([]) is None
    with pytest.raises(ValueError, match="Did you mean flip_left_right"):
        A.make_augment([{"name": "flip_left_rigth"}])
    with pytest.raises(ValueError, match="'color_jitter'.*unexpected keyword"):
        A.make_augment([{"name": "color_jitter", "brightnes": 0.5}])
    with pytest.raises(ValueError, match="scale"):
        A.make_augment([{"name": "random_resized_crop", "size": 8, "scale": [1.0, 0.5]}])
    with pytest.raises(ValueError, match="must be a dict"):
        A.make_augment([3])


def test_the_book_figures_on_cat1(shared_data):
    """The book's §14.1 figures: cat1.jpg flipped, cropped and jittered (shapes and ranges)."""
    from PIL import Image

    with Image.open(shared_data / "img" / "cat1.jpg") as im:
        cat = jnp.asarray(np.asarray(im.convert("RGB")), jnp.float32) / 255.0
    cat = jax.image.resize(cat, (cat.shape[0] // 4, cat.shape[1] // 4, 3), "linear")
    keys = jax.random.split(jax.random.key(0), 4)
    flips = jax.vmap(lambda k: A.random_flip_left_right(k, cat))(keys)
    assert all(
        np.array_equal(f, cat) or np.array_equal(f, cat[:, ::-1]) for f in np.asarray(flips)
    )
    crops = jax.vmap(lambda k: A.random_resized_crop(k, cat, 50, (0.1, 1.0), (0.5, 2.0)))(keys)
    jitter = jax.vmap(lambda k: A.color_jitter(k, cat, 0.5, 0.5, 0.5, 0.5))(keys)
    assert crops.shape == (4, 50, 50, 3) and jitter.shape == (4, *cat.shape)
    assert float(jitter.min()) >= 0 and float(jitter.max()) <= 1
