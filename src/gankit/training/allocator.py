"""How the host's C allocator hands memory to PyTorch on a CPU: `cpu_allocator` in the config.

PyTorch's CPU tensors come from malloc. With glibc's defaults, a training step's activations
(a few MB each) are returned to the kernel when freed (mmap'd blocks, or the top of the heap
trimmed) and asked for again in the next step, so every step pays thousands of page faults
and zeroed pages: about 4,000 per step of report 004's DCGAN at batch 128, measured here, and
that step took 1.22x the time it takes when freed memory is kept (34.1 against 28.0 ms,
2 threads, bf16, 2026-12-04; the `default` preset 1.19x). `keep` tells glibc to serve blocks up
to 32 MiB from the heap and never to trim it, so a step reuses the memory of the last one;
the process keeps its peak memory until it exits. The numbers a run computes do not change.

    keep     mallopt(M_MMAP_THRESHOLD, 32 MiB) and mallopt(M_TRIM_THRESHOLD, 2 GiB - 1)
    system   the C library's own behaviour

Only glibc (Linux) is tuned: elsewhere, and on CUDA, `keep` changes nothing. The setting is
process-wide and cannot be undone (glibc's adaptive thresholds stop once set), which is why
benchmarks/train_speed.py times each variant in a process of its own.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

CPU_ALLOCATORS = ("keep", "system")
# glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's ceiling for it on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2 ** 31 - 1  # mallopt takes a C int: 2 GiB of free heap top is kept


@functools.lru_cache(maxsize=1)
def _mallopt():
    """glibc's mallopt, or None where the C library is another one."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        fn = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: musl and macOS have no such symbol
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def keep_freed_memory() -> bool:
    """Apply `keep` to this process; True when glibc accepted both settings."""
    fn = _mallopt()
    if fn is None:
        return False
    return bool(fn(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(fn(M_TRIM_THRESHOLD,
                                                                  TRIM_THRESHOLD))


def apply(name: str) -> bool:
    """Apply `cpu_allocator` = `name`; True when it changed how this process allocates."""
    return keep_freed_memory() if name == "keep" else False
