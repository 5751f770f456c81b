"""Where dataset files come from: a user folder, the cache, public mirrors, an offline source.

Sources are tried in that order and each is named on screen as it is tried, so a user can see
why a fetch took the path it did. Everything that lands in the cache is written to a temporary
name and renamed, so an interrupted fetch never leaves a half-written file behind.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gankit.data.idx import DataError, atomic_write_bytes, read_bytes

MIRROR_TIMEOUT_S = 5.0


def log(msg: str) -> None:
    """Progress messages about data go to stderr, so stdout stays clean for tables and JSON."""
    print(f"[gankit data] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    """GANKIT_CACHE, else $XDG_CACHE_HOME/gankit, else ~/.cache/gankit."""
    if os.environ.get("GANKIT_CACHE"):
        return Path(os.environ["GANKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gankit"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FileSet:
    """A named set of files, each with the sha256 of its uncompressed bytes (None: unchecked).

    `mirrors` are base URLs where `<name>.gz` can be downloaded; `offline` is a function that
    writes the files into a folder with no network but the package registries.
    `extra_folders` are system folders (e.g. a Debian data package) tried after the user's.
    """
    name: str
    files: dict[str, str | None]
    mirrors: list[str] = field(default_factory=list)
    offline: Callable[[Path], None] | None = None
    extra_folders: list[Path] = field(default_factory=list)

    @property
    def cache_dir(self) -> Path:
        return cache_root() / self.name


def find_file(folder: Path, name: str) -> Path | None:
    """A file of the set in a folder: plain or .gz, directly or in a subfolder named like the set."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _folder_candidates(folder: Path, fs: FileSet) -> list[Path]:
    return [folder, folder / fs.name, folder / fs.name / "raw"]


def check_folder(folder: Path, fs: FileSet, verify: bool = True) -> dict[str, Path] | None:
    """Return the set's files in `folder` (or its subfolder named after the set), or None if
    any is missing. With `verify`, a file whose checksum differs is an error, not a miss."""
    for base in _folder_candidates(folder, fs):
        found = {name: find_file(base, name) for name in fs.files}
        if all(found.values()):
            if verify:
                for name, path in found.items():
                    expected = fs.files[name]
                    if expected and sha256_bytes(read_bytes(path)) != expected:
                        raise DataError(
                            f"{path}: sha256 does not match the official {fs.name} file {name} "
                            f"(expected {expected}); the file is corrupt or from another "
                            "dataset: replace it or delete it and run `gankit data fetch "
                            f"{fs.name}`")
            return found  # type: ignore[return-value]
    return None


def _store(fs: FileSet, name: str, data: bytes, origin: str) -> None:
    expected = fs.files[name]
    got = sha256_bytes(data)
    if expected and got != expected:
        raise DataError(f"{name} from {origin}: sha256 {got} does not match the official "
                        f"{expected}; nothing was written to the cache")
    atomic_write_bytes(fs.cache_dir / name, data)


def _from_mirrors(fs: FileSet) -> bool:
    for base in fs.mirrors:
        log(f"trying mirror {base} (timeout {MIRROR_TIMEOUT_S:.0f} s)")
        try:
            blobs = {}
            for name in fs.files:
                url = f"{base}{name}.gz"
                with urllib.request.urlopen(url, timeout=MIRROR_TIMEOUT_S) as r:
                    blobs[name] = gzip.decompress(r.read())
            for name, data in blobs.items():
                _store(fs, name, data, base)
            return True
        except (OSError, EOFError, DataError) as e:  # URLError and timeouts are OSErrors
            log(f"  mirror failed: {e}")
    return False


def ensure_files(fs: FileSet, data_dir: str | os.PathLike | None = None,
                 allow_download: bool = True) -> dict[str, Path]:
    """Return paths to the set's files, fetching them into the cache if needed.

    Order: `data_dir` (or $GANKIT_DATA), system folders, the cache, the mirrors, the offline
    source. Raises DataError naming every source tried when none works.
    """
    tried = []
    user = data_dir or os.environ.get("GANKIT_DATA")
    if user:
        folder = Path(user).expanduser()
        log(f"looking in the data folder {folder}")
        if not folder.is_dir():
            raise DataError(f"data folder {folder} does not exist: give an existing folder with "
                            f"--data-dir / GANKIT_DATA, or leave it unset to use the cache")
        found = check_folder(folder, fs)
        if found:
            return found
        tried.append(f"data folder {folder} (files {', '.join(fs.files)} not all there)")
    for folder in fs.extra_folders:
        if folder.is_dir():
            log(f"looking in {folder}")
            found = check_folder(folder, fs)
            if found:
                return found
            tried.append(f"{folder}")
    log(f"looking in the cache {fs.cache_dir}")
    found = check_folder(fs.cache_dir, fs, verify=False)
    if found:
        return found
    tried.append(f"cache {fs.cache_dir}")
    if not allow_download:
        raise DataError(f"{fs.name} is not in the cache; run `gankit data fetch {fs.name}`")
    if _from_mirrors(fs):
        return check_folder(fs.cache_dir, fs, verify=False)  # type: ignore[return-value]
    tried.append("mirrors " + ", ".join(fs.mirrors) if fs.mirrors else "no mirrors")
    if fs.offline is not None:
        log(f"trying the offline source for {fs.name}")
        try:
            fs.offline(fs.cache_dir)
            found = check_folder(fs.cache_dir, fs, verify=False)
            if found:
                return found
        except DataError as e:
            log(f"  offline source failed: {e}")
            tried.append(f"offline source ({e})")
    raise DataError(f"could not find {fs.name} anywhere. Tried: " + "; ".join(tried) +
                    f". Fix: put the files {', '.join(fs.files)} (plain or .gz) in a folder and "
                    "pass --data-dir DIR (or set GANKIT_DATA), or connect to the network and "
                    f"run `gankit data fetch {fs.name}`")


def store_verified(fs: FileSet, name: str, data: bytes, origin: str) -> None:
    """Check a file's sha256 against the set's and write it atomically to the cache."""
    _store(fs, name, data, origin)
