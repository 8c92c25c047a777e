"""The Pokémon sprites of the book's DCGAN (§20.2), and the image-folder reader they need.

``pokemon.zip`` (the d2l data hub, SHA-1 ``c065c0e2...``) holds one folder per Pokémon with its
sprites; the book reads it with ``torchvision.datasets.ImageFolder`` and ``Resize((64, 64))``,
``ToTensor()``, ``Normalize(0.5, 0.5)``. :func:`load_pokemon` gives the same images as uint8
NHWC at 64x64 (the scaling to [-1, 1] happens on the device: the GAN task's ``signed_pixels``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from d2ljax.data import hub

#: The file endings torchvision's ``ImageFolder`` reads.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def load_image_folder(root: str | os.PathLike, size: int | None = None) -> dict[str, np.ndarray]:
    """Every image under ``root/<class>/`` as ``ImageFolder`` orders them (classes sorted by
    folder name, files sorted within each): ``{"x": uint8 [N, H, W, 3], "y": int32 class index}``,
    RGB, resized to ``size x size`` with PIL's bilinear filter (torchvision's ``Resize``) when
    ``size`` is given (then images of any size may be mixed). A folder with no image, or an
    unreadable file, is a :class:`~d2ljax.data.hub.CorruptFileError` naming it."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    images, labels = [], []
    for index, folder in enumerate(classes):
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    if size is not None and im.size != (size, size):
                        im = im.resize((size, size), Image.BILINEAR)
                    images.append(np.asarray(im, dtype=np.uint8))
            except (OSError, UnidentifiedImageError) as e:
                raise hub.CorruptFileError(f"{path}: not a readable image ({e})") from None
            labels.append(index)
    if not images:
        raise hub.CorruptFileError(f"{root} holds no image in class folders ({classes[:3]}...)")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise hub.CorruptFileError(
            f"{root}: images of several sizes {sorted(shapes)[:3]}; give size"
        )
    return {"x": np.stack(images), "y": np.asarray(labels, np.int32)}


@functools.lru_cache(maxsize=2)
def _load_cached(folder: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    split = load_image_folder(folder, size)
    for a in split.values():
        a.flags.writeable = False
    return split["x"], split["y"]


def load_pokemon(
    *, data_dir: str | os.PathLike | None = None, size: int = 64
) -> dict[str, dict[str, np.ndarray]]:
    """The book's Pokémon dataset (§20.2): ``{"train": {"x": uint8 [N, size, size, 3], "y":
    int32 Pokémon index}}``, every sprite resized to ``size`` (the book: 64). Downloaded once
    through the hub (``pokemon``) and verified; a missing file is a
    :class:`~d2ljax.data.hub.DataNotFoundError` saying where it looked."""
    folder = hub.extract("pokemon", data_dir=data_dir)
    x, y = _load_cached(str(folder), int(size))
    return {"train": {"x": x, "y": y}}
