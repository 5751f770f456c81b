"""Writing a file so that a reader never sees half of it: the one atomic-write helper.

The bytes go to a temporary file in the same folder, are flushed to disk (fsync), then the
temporary file is renamed over the target (`os.replace`, atomic on POSIX and Windows). A kill
at any moment leaves either the old file or the new one, never a torn one. This module imports
nothing of gankit, so every layer can use it.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically.

    For writers that take a file name (torch.save, PIL, matplotlib, numpy): write to the
    yielded path. `suffix` keeps an extension some writers look at (".png", ".npz").
    On an exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write text or bytes to `path` atomically (see the module docstring); returns `path`."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding=encoding)
        else:
            tmp.write_bytes(data)
    return Path(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
