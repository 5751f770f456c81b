"""Build a kernel of `csrc/` with the system C compiler on first use, and load it.

Each file is compiled once per source and compiler (`$CC`, else `cc`) into the gankit cache
(`$GANKIT_CACHE/native/<name>-<hash>.so`) and loaded with ctypes: no torch headers, so a
build takes about a second. The kernels need Linux on x86-64 with AVX-512 (F, BW, VL) and
AVX512-BF16, the CPUs where `precision: auto` picks bf16, and torch running its AVX-512
kernels (the Adam kernel repeats their numbers); one without vector code of its own (the
oneDNN GEMMs: oneDNN picks its code for the CPU it runs on) needs Linux on x86-64 only.
Elsewhere, or without a compiler, `load` gives None and `why_not` says why; callers then run
torch's own operations.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from gankit.data.sources import cache_root
from gankit.native.cpu import cpu_flags

CSRC = Path(__file__).with_name("csrc")
BASE_FLAGS = ["-O2", "-ffp-contract=off", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC"]
FLAGS = ["-O2", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", *BASE_FLAGS[1:]]
NEEDED_FLAGS = {"avx512f", "avx512bw", "avx512vl", "avx512_bf16"}


def flags(avx512: bool) -> list[str]:
    """The compiler flags of a kernel written with AVX-512 intrinsics, or of one without."""
    return FLAGS if avx512 else BASE_FLAGS


def source(name: str) -> Path:
    """The C file of kernel `name`."""
    return CSRC / f"{name}.c"


def _compile(src: Path, cc: str, lib_path: Path, extra: tuple[str, ...] = (),
             avx512: bool = True) -> str | None:
    """Build src into lib_path (extra: flags after the source, e.g. a library to link); None,
    or why it could not be built."""
    tmp = None
    try:
        lib_path.parent.mkdir(parents=True, exist_ok=True)
        # built beside its final name and renamed: processes starting together (`--seeds`,
        # pytest-xdist) each build their own and one of them wins
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib_path.parent)
        os.close(fd)
        done = subprocess.run([cc, *flags(avx512), "-o", tmp, str(src), *extra, "-lm"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"{cc} could not build {src.name}: {last}"
        os.replace(tmp, lib_path)
        return None
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not build {src.name} into {lib_path.parent}: {e}"
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def library_path(name: str, cc: str, extra: tuple[str, ...] = (), avx512: bool = True) -> Path:
    """Where the library built from kernel `name`'s source (and the headers beside it, which
    it may include) by compiler `cc` is kept."""
    headers = b"".join(h.read_bytes() for h in sorted(CSRC.glob("*.h")))
    key = hashlib.sha256(source(name).read_bytes() + headers
                         + " ".join([cc, *flags(avx512), *extra]).encode())
    return cache_root() / "native" / f"{name}-{key.hexdigest()[:16]}.so"


def _unsupported(avx512: bool = True) -> str | None:
    """Why no kernel (or, avx512 False, no kernel without AVX-512 code) can run here, or None."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"{platform.system()} on {platform.machine()} (it needs Linux on x86-64)"
    if not avx512:
        return None
    missing = NEEDED_FLAGS - cpu_flags()
    if missing:
        return f"this CPU has no {', '.join(sorted(missing))}"
    capability = torch.backends.cpu.get_cpu_capability()
    if not (capability.startswith("AVX512") or capability == "AMX"):
        # the Adam kernel's numbers are those of torch's AVX-512 kernel, not of the one torch runs
        return f"torch runs its {capability} kernels here (ATEN_CPU_CAPABILITY)"
    return None


@contextlib.contextmanager
def on_threads(n: int) -> Iterator[None]:
    """torch (and the native kernels, on its OpenMP threads) on n threads inside; the count
    before restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ptr(t: torch.Tensor | None) -> int | None:
    """A tensor's address for a C call, or None (a null pointer) for no tensor."""
    return None if t is None else t.data_ptr()


def reporter(what: str, why: Callable[[], str | None]) -> Callable[[], None]:
    """A function that says once per process, on stderr, that `what` runs slower here and why
    (`why()`, asked when it speaks); its `cache_clear` lets it speak again."""
    @functools.lru_cache(maxsize=1)
    def report_unavailable() -> None:
        print(f"gankit: {what} (slower): {why()}", file=sys.stderr)
    return report_unavailable


# A kernel's C functions: (name, return type, argument types) each, as ctypes declares them.
Signatures = tuple[tuple[str, Any, tuple[Any, ...]], ...]

# A kernel's extra build flags (after its source: include paths, libraries to link), or why
# they cannot be had here (the library it links is not installed).
Extra = Callable[[], tuple[tuple[str, ...], str | None]]


@functools.lru_cache(maxsize=None)
def _build(kernel: Kernel) -> tuple[ctypes.CDLL | None, str | None]:
    """(library with its functions declared, None) or (None, why not). Cached per Kernel
    object (hashed by identity: the step asks at every kernel call, and hashing the
    signatures took longer than the call)."""
    name, signatures, extra, avx512 = kernel.name, kernel.signatures, kernel.extra, kernel.avx512
    why = _unsupported(avx512)  # first: no library to install where it cannot run anyway
    if why:
        return None, why
    flags, why = extra() if extra else ((), None)
    if why:
        return None, why
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return None, f"no C compiler ({cc}) on the PATH"
    lib_path = library_path(name, cc, flags, avx512)
    for attempt in range(2):
        if not lib_path.exists():
            error = _compile(source(name), cc, lib_path, flags, avx512)
            if error:
                return None, error
        try:
            lib = ctypes.CDLL(str(lib_path))
            break
        except OSError as e:
            if attempt:
                return None, f"could not load {lib_path}: {e}"
            lib_path.unlink(missing_ok=True)  # a damaged file: built again, once
    for fn, restype, argtypes in signatures:
        getattr(lib, fn).restype = restype
        getattr(lib, fn).argtypes = list(argtypes)
    return lib, None


class Kernel:
    """One file of csrc/ and the C functions a module calls in it (`extra`: its extra build
    flags, when it links a library; `avx512` False: a file without AVX-512 code, built and
    run on any Linux x86-64 CPU)."""

    def __init__(self, name: str, signatures: Signatures, extra: Extra | None = None,
                 avx512: bool = True) -> None:
        self.name, self.signatures, self.extra, self.avx512 = name, signatures, extra, avx512

    def load(self) -> ctypes.CDLL | None:
        """The library with its functions declared, or None where it cannot be built or run
        here (`why_not`)."""
        return _build(self)[0]

    def why_not(self) -> str | None:
        """Why the kernel is not available here (None when it is)."""
        return _build(self)[1]
