"""Image augmentation on the device (book §14.1): pure, jittable, one key per example.

Every op works on one image ``[H, W, C]`` of floats in [0, 1] (what :func:`image_transform`
makes of uint8 pixels) and is a function of ``(key, image)`` only, so it runs inside the compiled
training step and the same key always gives the same image. :class:`BatchAugment` splits a step's
key into one key per example and ``vmap`` s an op over the batch; the experiment layer draws that
key from ``fold_in(state.rng, step)`` (:class:`d2ljax.tasks.AugmentedTask`), so a resumed run sees
exactly the augmented images an uninterrupted one sees, and evaluation sees none.

The ops, written out as the book teaches them:

* flips: :func:`random_flip_left_right`, :func:`random_flip_up_down` (``RandomHorizontalFlip``,
  ``RandomVerticalFlip``);
* crops: :func:`random_crop` (``RandomCrop(size, padding)``) and :func:`random_resized_crop`
  (``RandomResizedCrop(size, scale, ratio)``: torchvision's sampling of the box, ten tries then a
  central crop, and a bilinear, antialiased resize by :func:`jax.image.scale_and_translate`);
* colour: :func:`adjust_brightness`, :func:`adjust_contrast`, :func:`adjust_saturation`,
  :func:`adjust_hue` and their ``random_*`` forms, with dm-pix's (TensorFlow's) meanings and
  key use: the same key gives the same image as ``dm_pix.random_*`` (tested);
  :func:`color_jitter` is the book's ``ColorJitter(brightness, contrast, saturation, hue)`` with
  torchvision's meanings (multiplicative brightness, blends with the grey image, the four in a
  random order).

Ops compose with :class:`Compose`; a config names them as a list of ``{"name": ..., **kwargs}``
(:func:`make_augment`, :data:`AUGMENTATIONS`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from d2ljax.registry import suggest

__all__ = [
    "AUGMENTATIONS",
    "BatchAugment",
    "ColorJitter",
    "Compose",
    "RandomCrop",
    "RandomFlipLeftRight",
    "RandomFlipUpDown",
    "RandomResizedCrop",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "color_jitter",
    "crop_and_resize",
    "flip_left_right",
    "flip_up_down",
    "grayscale",
    "hsv_to_rgb",
    "make_augment",
    "random_brightness",
    "random_contrast",
    "random_crop",
    "random_flip_left_right",
    "random_flip_up_down",
    "random_hue",
    "random_resized_crop",
    "random_saturation",
    "resized_crop_box",
    "rgb_to_hsv",
]

# ----------------------------------------------------------------------------------------------
# Flips


def flip_left_right(image_HWC: jax.Array) -> jax.Array:
    """The image mirrored left to right (its width axis reversed)."""
    return image_HWC[:, ::-1, :]


def flip_up_down(image_HWC: jax.Array) -> jax.Array:
    """The image mirrored top to bottom (its height axis reversed)."""
    return image_HWC[::-1, :, :]


def random_flip_left_right(key, image_HWC, probability: float = 0.5) -> jax.Array:
    """:func:`flip_left_right` with ``probability`` (``bernoulli(key, probability)``)."""
    flip = jax.random.bernoulli(key, probability)
    return jnp.where(flip, flip_left_right(image_HWC), image_HWC)


def random_flip_up_down(key, image_HWC, probability: float = 0.5) -> jax.Array:
    """:func:`flip_up_down` with ``probability`` (``bernoulli(key, probability)``)."""
    flip = jax.random.bernoulli(key, probability)
    return jnp.where(flip, flip_up_down(image_HWC), image_HWC)


# ----------------------------------------------------------------------------------------------
# Crops


def random_crop(key, image_HWC, size: int | Sequence[int], padding: int = 0) -> jax.Array:
    """A ``size`` (``h`` or ``(h, w)``) window at a uniformly random place, after zero-padding
    every side by ``padding`` pixels (torchvision's ``RandomCrop(size, padding)``). The offsets
    are drawn as ``dm_pix.random_crop`` draws them (one key per axis, channels included), so with
    no padding the same key crops the same window."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if padding:
        p = int(padding)
        image_HWC = jnp.pad(image_HWC, ((p, p), (p, p), (0, 0)))
    H, W, C = image_HWC.shape
    if h > H or w > W:
        raise ValueError(f"crop size {(h, w)} is larger than the (padded) image {(H, W)}")
    keys = jax.random.split(key, 3)
    starts = [
        jax.random.randint(k, (), 0, n - s + 1)
        for k, n, s in zip(keys, (H, W, C), (h, w, C), strict=True)
    ]
    return jax.lax.dynamic_slice(image_HWC, starts, (h, w, C))


def resized_crop_box(
    key,
    height: int,
    width: int,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The box ``(top, left, h, w)`` of ``RandomResizedCrop`` as torchvision samples it: up to
    ``attempts`` tries of an area ``uniform(scale) * height * width`` and an aspect ratio
    ``exp(uniform(log ratio))``, the first that fits placed uniformly at random; if none fits, the
    largest central box whose aspect ratio lies in ``ratio``. Traceable (all tries are drawn at
    once)."""
    k_area, k_ratio, k_top, k_left = jax.random.split(key, 4)
    area = height * width
    target = area * jax.random.uniform(k_area, (attempts,), minval=scale[0], maxval=scale[1])
    log_r = jax.random.uniform(
        k_ratio, (attempts,), minval=math.log(ratio[0]), maxval=math.log(ratio[1])
    )
    aspect = jnp.exp(log_r)
    ws = jnp.round(jnp.sqrt(target * aspect)).astype(jnp.int32)
    hs = jnp.round(jnp.sqrt(target / aspect)).astype(jnp.int32)
    fits = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
    first = jnp.argmax(fits)
    any_fits = fits[first]
    # the central fallback (static: it depends only on the image's shape)
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fh, fw = height, int(round(height * max(ratio)))
    else:
        fw, fh = width, height
    h = jnp.where(any_fits, hs[first], fh)
    w = jnp.where(any_fits, ws[first], fw)
    top_r = jax.random.randint(k_top, (), 0, jnp.maximum(height - h + 1, 1))
    left_r = jax.random.randint(k_left, (), 0, jnp.maximum(width - w + 1, 1))
    top = jnp.where(any_fits, top_r, (height - fh) // 2)
    left = jnp.where(any_fits, left_r, (width - fw) // 2)
    return top, left, h, w


def crop_and_resize(image_HWC, top, left, h, w, size: int | Sequence[int]) -> jax.Array:
    """The box ``image[top:top+h, left:left+w]`` resized to ``size`` (bilinear, half-pixel
    centres, antialiased when shrinking); the box may be traced values. A box of the output's
    own size is exactly the slice."""
    oh, ow = (size, size) if isinstance(size, int) else tuple(size)
    C = image_HWC.shape[-1]
    sy = oh / jnp.asarray(h, jnp.float32)
    sx = ow / jnp.asarray(w, jnp.float32)
    scale = jnp.stack([sy, sx])
    top, left = jnp.asarray(top, jnp.float32), jnp.asarray(left, jnp.float32)
    translation = -jnp.stack([top * sy, left * sx])
    out = jax.image.scale_and_translate(
        image_HWC, (oh, ow, C), (0, 1), scale, translation, method="linear", antialias=True
    )
    return out.astype(image_HWC.dtype)


def random_resized_crop(
    key,
    image_HWC,
    size: int | Sequence[int],
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
) -> jax.Array:
    """The book's ``RandomResizedCrop(size, scale, ratio)``: a random box
    (:func:`resized_crop_box`) resized to ``size`` (:func:`crop_and_resize`)."""
    H, W, _ = image_HWC.shape
    top, left, h, w = resized_crop_box(key, H, W, scale, ratio)
    return crop_and_resize(image_HWC, top, left, h, w, size)


# ----------------------------------------------------------------------------------------------
# Colour: RGB <-> HSV written out, then the TensorFlow / dm-pix adjustments


def rgb_to_hsv(image_HWC: jax.Array) -> jax.Array:
    """RGB in [0, 1] -> HSV, each in [0, 1] (hue as a fraction of the colour circle)."""
    r, g, b = image_HWC[..., 0], image_HWC[..., 1], image_HWC[..., 2]
    v = jnp.maximum(jnp.maximum(r, g), b)
    c = v - jnp.minimum(jnp.minimum(r, g), b)
    s = jnp.where(v > 0, c / jnp.where(v > 0, v, 1.0), 0.0)
    safe_c = jnp.where(c > 0, c, 1.0)
    h_b = (r - g) / safe_c + 4.0  # blue is the largest
    h_g = (b - r) / safe_c + 2.0  # green is the largest
    h_r = (g - b) / safe_c  # red is the largest (may be negative: wrapped below)
    h6 = jnp.where(v == r, h_r, jnp.where(v == g, h_g, h_b))
    h = jnp.where(c > 0, h6 / 6.0, 0.0)
    h = h + (h < 0)
    return jnp.stack([h, s, v], axis=-1)


def hsv_to_rgb(image_HWC: jax.Array) -> jax.Array:
    """HSV in [0, 1] -> RGB: ``v * (1 - s * clip(min(k, 4 - k), 0, 1))`` with
    ``k = (n + 6 h) mod 6`` and ``n`` = 5, 3, 1 for red, green, blue."""
    h, s, v = image_HWC[..., 0], image_HWC[..., 1], image_HWC[..., 2]

    def channel(n):
        k = jnp.mod(n + 6.0 * h, 6.0)
        return v * (1.0 - s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0))

    return jnp.stack([channel(5.0), channel(3.0), channel(1.0)], axis=-1)


def adjust_brightness(image_HWC, delta) -> jax.Array:
    """``image + delta`` (TensorFlow's and dm-pix's brightness; not clipped)."""
    return image_HWC + jnp.asarray(delta, image_HWC.dtype)


def adjust_contrast(image_HWC, factor) -> jax.Array:
    """Each channel scaled by ``factor`` about its mean over the image (TensorFlow, dm-pix)."""
    mean = jnp.mean(image_HWC, axis=(-3, -2), keepdims=True)
    return jnp.asarray(factor, image_HWC.dtype) * (image_HWC - mean) + mean


def adjust_saturation(image_HWC, factor) -> jax.Array:
    """The HSV saturation times ``factor``, clipped to [0, 1] (TensorFlow, dm-pix)."""
    hsv = rgb_to_hsv(image_HWC)
    s = jnp.clip(hsv[..., 1] * jnp.asarray(factor, image_HWC.dtype), 0.0, 1.0)
    return hsv_to_rgb(hsv.at[..., 1].set(s))


def adjust_hue(image_HWC, delta) -> jax.Array:
    """The hue turned by ``delta`` (a fraction of the colour circle), modulo 1."""
    hsv = rgb_to_hsv(image_HWC)
    return hsv_to_rgb(hsv.at[..., 0].set(jnp.mod(hsv[..., 0] + delta, 1.0)))


def random_brightness(key, image_HWC, max_delta) -> jax.Array:
    """:func:`adjust_brightness` by ``uniform(key, -max_delta, max_delta)``."""
    delta = jax.random.uniform(key, (), minval=-max_delta, maxval=max_delta)
    return adjust_brightness(image_HWC, delta)


def random_contrast(key, image_HWC, lower, upper) -> jax.Array:
    """:func:`adjust_contrast` by ``uniform(key, lower, upper)``."""
    return adjust_contrast(image_HWC, jax.random.uniform(key, (), minval=lower, maxval=upper))


def random_saturation(key, image_HWC, lower, upper) -> jax.Array:
    """:func:`adjust_saturation` by ``uniform(key, lower, upper)``."""
    return adjust_saturation(image_HWC, jax.random.uniform(key, (), minval=lower, maxval=upper))


def random_hue(key, image_HWC, max_delta) -> jax.Array:
    """:func:`adjust_hue` by ``uniform(key, -max_delta, max_delta)``."""
    return adjust_hue(image_HWC, jax.random.uniform(key, (), minval=-max_delta, maxval=max_delta))


# ----------------------------------------------------------------------------------------------
# The book's ColorJitter (torchvision's meanings)


def grayscale(image_HWC: jax.Array) -> jax.Array:
    """ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B``, ``[H, W, 1]``."""
    w = jnp.asarray([0.299, 0.587, 0.114], image_HWC.dtype)
    return jnp.sum(image_HWC * w, axis=-1, keepdims=True)


def _blend(image, other, factor):
    return jnp.clip(factor * image + (1.0 - factor) * other, 0.0, 1.0)


def _jitter_ops():
    return (
        lambda img, f: _blend(img, 0.0, f),  # brightness: towards black
        lambda img, f: _blend(img, jnp.mean(grayscale(img)), f),  # contrast: towards mean grey
        lambda img, f: _blend(img, grayscale(img), f),  # saturation: towards the grey image
        lambda img, f: adjust_hue(img, f),  # hue: turned by f
    )




def color_jitter(
    key, image_HWC, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, *, random_order=True
) -> jax.Array:
    """The book's ``ColorJitter(brightness, contrast, saturation, hue)``, as torchvision defines
    it: brightness, contrast and saturation factors drawn from ``[max(0, 1 - x), 1 + x]``
    (brightness scales the image, contrast blends it with its mean grey level, saturation with
    its grey image, each clipped to [0, 1]); a hue shift drawn from ``[-hue, hue]`` (``hue <=
    0.5``); the four applied in a random order (``random_order``) or as listed. An amount of 0
    leaves that property alone."""
    if not 0 <= hue <= 0.5:
        raise ValueError(f"hue must lie in [0, 0.5], got {hue}")
    for name, x in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if x < 0:
            raise ValueError(f"{name} must be >= 0, got {x}")
    k_order, k_b, k_c, k_s, k_h = jax.random.split(key, 5)

    def factor(k, x):
        return jax.random.uniform(k, (), minval=max(0.0, 1.0 - x), maxval=1.0 + x)

    factors = jnp.stack([
        factor(k_b, brightness),
        factor(k_c, contrast),
        factor(k_s, saturation),
        jax.random.uniform(k_h, (), minval=-hue, maxval=hue),
    ])
    used = [i for i, x in enumerate((brightness, contrast, saturation, hue)) if x]
    ops = _jitter_ops()
    if not used:
        return image_HWC
    if not random_order or len(used) == 1:
        for i in used:
            image_HWC = ops[i](image_HWC, factors[i])
        return image_HWC
    perms = jnp.asarray(
        [[i for i in p if i in used] for p in itertools.permutations(used)], jnp.int32
    )
    order = perms[jax.random.randint(k_order, (), 0, len(perms))]
    branches = [lambda img, f, i=i: ops[i](img, f) for i in range(4)]
    for position in range(len(used)):
        i = order[position]
        image_HWC = jax.lax.switch(i, branches, image_HWC, factors[i])
    return image_HWC


# ----------------------------------------------------------------------------------------------
# Ops as values: hashable (equal configs share compiled steps), composable, nameable


@dataclass(frozen=True)
class RandomFlipLeftRight:
    """``RandomHorizontalFlip(probability)``."""

    probability: float = 0.5

    def __call__(self, key, image_HWC):
        return random_flip_left_right(key, image_HWC, self.probability)


@dataclass(frozen=True)
class RandomFlipUpDown:
    """``RandomVerticalFlip(probability)``."""

    probability: float = 0.5

    def __call__(self, key, image_HWC):
        return random_flip_up_down(key, image_HWC, self.probability)


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    out = tuple(int(s) for s in size)
    if len(out) != 2:
        raise ValueError(f"size must be an int or (height, width), got {size!r}")
    return out


def _range(value, name: str, low: float = 0.0) -> tuple[float, float]:
    out = tuple(float(v) for v in value)
    if len(out) != 2 or out[0] > out[1] or out[0] < low:
        raise ValueError(f"{name} must be (low, high) with {low} <= low <= high, got {value!r}")
    return out


@dataclass(frozen=True)
class RandomCrop:
    """``RandomCrop(size, padding)``: see :func:`random_crop`."""

    size: int | tuple[int, int]
    padding: int = 0

    def __post_init__(self):
        object.__setattr__(self, "size", _pair(self.size))
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")

    def __call__(self, key, image_HWC):
        return random_crop(key, image_HWC, self.size, self.padding)


@dataclass(frozen=True)
class RandomResizedCrop:
    """``RandomResizedCrop(size, scale, ratio)``: see :func:`random_resized_crop`."""

    size: int | tuple[int, int]
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self):
        object.__setattr__(self, "size", _pair(self.size))
        object.__setattr__(self, "scale", _range(self.scale, "scale"))
        object.__setattr__(self, "ratio", _range(self.ratio, "ratio", low=1e-6))

    def __call__(self, key, image_HWC):
        return random_resized_crop(key, image_HWC, self.size, self.scale, self.ratio)


@dataclass(frozen=True)
class ColorJitter:
    """``ColorJitter(brightness, contrast, saturation, hue)``: see :func:`color_jitter`."""

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    random_order: bool = True

    def __post_init__(self):
        color_jitter(jax.random.key(0), jnp.zeros((1, 1, 3)), self.brightness, self.contrast,
                     self.saturation, self.hue, random_order=False)  # checks the amounts

    def __call__(self, key, image_HWC):
        return color_jitter(key, image_HWC, self.brightness, self.contrast, self.saturation,
                            self.hue, random_order=self.random_order)


@dataclass(frozen=True)
class Compose:
    """The ops one after the other, each with its own key (``split(key, len(ops))``)."""

    ops: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))

    def __call__(self, key, image_HWC):
        if not self.ops:
            return image_HWC
        for k, op in zip(jax.random.split(key, len(self.ops)), self.ops, strict=True):
            image_HWC = op(k, image_HWC)
        return image_HWC


@dataclass(frozen=True)
class BatchAugment:
    """``(key, batch) -> batch``: ``op`` applied to every image of ``batch[field]`` (``[B, H, W,
    C]``), example ``i`` with key ``split(key, B)[i]``; the other entries pass through."""

    op: Callable = field(default_factory=Compose)
    field: str = "x"

    def __call__(self, key, batch: Mapping) -> dict:
        x_BHWC = batch[self.field]
        keys = jax.random.split(key, x_BHWC.shape[0])
        return {**batch, self.field: jax.vmap(self.op)(keys, x_BHWC)}


#: Config names of the ops (``{"name": ..., **kwargs}`` in ``data.augment``).
AUGMENTATIONS: dict[str, type] = {
    "flip_left_right": RandomFlipLeftRight,
    "flip_up_down": RandomFlipUpDown,
    "random_crop": RandomCrop,
    "random_resized_crop": RandomResizedCrop,
    "color_jitter": ColorJitter,
}


def make_augment(specs: Sequence[Mapping] | None, *, field: str = "x") -> BatchAugment | None:
    """The batch augmentation a config's ``data.augment`` names: a list of ``{"name": op,
    **kwargs}`` (ops in :data:`AUGMENTATIONS`), applied in order; None or ``[]``: none. A bad
    name or argument is a ``ValueError`` that says what is valid."""
    if not specs:
        return None
    ops = []
    for i, spec in enumerate(specs):
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise ValueError(
                f"augmentation {i} must be a dict with a 'name' (one of "
                f"{', '.join(AUGMENTATIONS)}), got {spec!r}"
            )
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        name = spec["name"]
        if name not in AUGMENTATIONS:
            raise ValueError(
                f"unknown augmentation {name!r}.{suggest(name, AUGMENTATIONS)} Known "
                f"augmentations: {', '.join(AUGMENTATIONS)}"
            )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        try:
            ops.append(AUGMENTATIONS[name](**kwargs))
        except TypeError as e:
            raise ValueError(f"augmentation {name!r}: {e}") from None
    return BatchAugment(Compose(tuple(ops)), field)
