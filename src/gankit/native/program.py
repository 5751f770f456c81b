"""A recorded run of the native kernels' calls, replayed by one C call (`gankit_run` in
`csrc/mlp_parts.c`).

The fused MLP step calls some 30 kernels a step (kept GEMMs, native/mlp_parts.py's parts)
on buffers it allocated once; only the batch's and the labels' addresses change from step to
step. Inside `recording()`, native/onednn.py's `Matmuls` and native/mlp_parts.py append
their calls here instead of making them; native/mlp_parts.py's `run` then makes them all
with one ctypes call, the batch's and labels' addresses written into the places they were
recorded at. What a call costs in Python (argument checks, plan lookup, ctypes marshalling:
5-10 us a call) is then paid once per region of the step instead of once per call.

Only the kernels record. A torch operation made while recording would run once and never be
replayed, so the callers record only code that makes none (training/mlp_step.py says which),
or pass such an operation to `call`, which records it as a Python call the replay makes at
its place (the program's C calls then run in pieces around it); a kernel call that cannot be
recorded raises `NotRecordable` and the caller runs eagerly.
"""
from __future__ import annotations

import contextlib
import ctypes
import struct
from collections.abc import Callable, Iterator
from typing import Any

import torch

# operation codes, as gankit_run in csrc/mlp_parts.c reads them
MM, HEAD_D, HEAD_G, ACT_BWD, EMBED_GRAD, G_INPUT, D_INPUT, MM2 = range(1, 9)
# gankit_run's return codes
FAILED_GEMM, BAD_LABELS = 1, 3


class NotRecordable(Exception):
    """A kernel call that has no recorded form here (the caller then runs eagerly)."""


class Program:
    """The recorded calls: per call its operation code, its number of arguments and the
    arguments as 64-bit words (addresses and integers as they are, floats as their float32
    bits); the tensors the calls read or write that nothing else holds (`keep`); the Python
    calls (`calls`: made after the words before their index)."""

    def __init__(self, dynamic: dict[str, torch.Tensor | None]) -> None:
        self._dynamic = {name: t.data_ptr() for name, t in dynamic.items() if t is not None}
        self.words: list[int] = []
        self.keep: list[torch.Tensor] = []
        self.calls: list[tuple[int, Callable[[], Any]]] = []
        self.slots: dict[str, list[int]] = {}
        self._array: ctypes.Array | None = None

    def add(self, op: int, *args: int | float | None) -> None:
        """Append one call (None: a null address)."""
        self.words += [op, len(args)]
        for a in args:
            if a is None:
                a = 0
            elif isinstance(a, float):
                a = struct.unpack("<I", struct.pack("<f", a))[0]
            for name, ptr in self._dynamic.items():
                if a == ptr:
                    self.slots.setdefault(name, []).append(len(self.words))
            self.words.append(int(a))

    def array(self, dynamic: dict[str, torch.Tensor | None]) -> ctypes.Array:
        """The words with the dynamic tensors' addresses of this step written in."""
        if self._array is None:
            self._array = (ctypes.c_int64 * len(self.words))(*self.words)
        arr = self._array
        for name, where in self.slots.items():
            ptr = dynamic[name].data_ptr()
            for i in where:
                arr[i] = ptr
        return arr


_recording: list[Program] = []


def active() -> Program | None:
    """The program being recorded, or None (then kernels run their calls)."""
    return _recording[-1] if _recording else None


@contextlib.contextmanager
def recording(dynamic: dict[str, torch.Tensor | None]) -> Iterator[Program]:
    """Record the kernel calls made inside into a new Program. `dynamic`: the tensors whose
    addresses change from run to run (the batch, the labels), passed again to each run
    (native/mlp_parts.py's `run`)."""
    prog = Program(dynamic)
    _recording.append(prog)
    try:
        yield prog
    finally:
        _recording.pop()


def call(fn: Callable[..., Any], *args: Any) -> None:
    """fn(*args) now, or, while a program is recorded, at this place of each of its runs (the
    arguments then tensors the program's calls write and read in place, not the batch)."""
    prog = active()
    if prog is None:
        fn(*args)
    else:
        prog.calls.append((len(prog.words), lambda: fn(*args)))


def address(fn: ctypes._CFuncPtr) -> int:
    """A C function's address, for a recorded call to make through it."""
    return ctypes.cast(fn, ctypes.c_void_p).value
