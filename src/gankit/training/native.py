"""The fused MLP step's bf16 Adam pass in C (`csrc/adam_bf16.c`), built on first use.

In the bf16 fused step each net's update was four passes over its parameters in torch: the
bf16 gradients copied to fp32 (torch's fused Adam takes fp32 gradients only), their norm,
torch's fused Adam, and the bf16 weight copy cast for the next GEMMs. `csrc/adam_bf16.c` does
all four in one pass with torch's Adam arithmetic, bit for bit with torch's one-thread kernel
whatever the number of threads (it runs on torch's OpenMP threads). In the step (this Intel
Xeon, 2026-12-06, alternated in one process; docs/speed.md): a 4-member ensemble on one
thread 0.77-0.80x the step with torch's passes, one run on two threads 0.90x. torch offers
no such kernel (`_fused_adam_` takes fp32 gradients; a compiled Python version lost in the
step to dynamo's guards, docs/speed.md's twelfth and thirteenth sessions).

The file is compiled once per source and compiler with the system C compiler (`$CC`, else
`cc`) into the gankit cache (`$GANKIT_CACHE/native`), and loaded with ctypes: no torch headers,
so it builds in about a second. It needs Linux on x86-64 with AVX-512 and AVX512-BF16, the
CPUs where `precision: auto` picks bf16. Elsewhere, or without a compiler, `kernel()` is None
and `why_not()` says why; the step then runs torch's passes (`kernels: plain` chooses them).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from gankit.data.sources import cache_root
from gankit.training.cpu import cpu_flags

SOURCE = Path(__file__).with_name("csrc") / "adam_bf16.c"
FLAGS = ["-O2", "-mavx512f", "-mavx512bf16", "-ffp-contract=off", "-fno-math-errno",
         "-fopenmp", "-shared", "-fPIC"]


def _compile(cc: str, lib_path: Path) -> str | None:
    """Build the library at lib_path; None, or why it could not be built."""
    tmp = None
    try:
        lib_path.parent.mkdir(parents=True, exist_ok=True)
        # built beside its final name and renamed: processes starting together (`--seeds`,
        # pytest-xdist) each build their own and one of them wins
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib_path.parent)
        os.close(fd)
        done = subprocess.run([cc, *FLAGS, "-o", tmp, str(SOURCE), "-lm"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"{cc} could not build {SOURCE.name}: {last}"
        os.replace(tmp, lib_path)
        return None
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not build {SOURCE.name} into {lib_path.parent}: {e}"
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def library_path(cc: str) -> Path:
    """Where the library built from this source by compiler `cc` is kept."""
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([cc, *FLAGS]).encode()).hexdigest()
    return cache_root() / "native" / f"adam_bf16-{key[:16]}.so"


@functools.lru_cache(maxsize=1)
def _build() -> tuple[ctypes.CDLL | None, str | None]:
    """(library, None) or (None, why not)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None, f"{platform.system()} on {platform.machine()} (it needs Linux on x86-64)"
    missing = {"avx512f", "avx512_bf16"} - cpu_flags()
    if missing:
        return None, f"this CPU has no {', '.join(sorted(missing))}"
    capability = torch.backends.cpu.get_cpu_capability()
    if not (capability.startswith("AVX512") or capability == "AMX"):
        # its numbers are those of torch's AVX-512 Adam kernel, not of the one torch runs
        return None, f"torch runs its {capability} kernels here (ATEN_CPU_CAPABILITY)"
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return None, f"no C compiler ({cc}) on the PATH"
    lib_path = library_path(cc)
    for attempt in range(2):
        if not lib_path.exists():
            error = _compile(cc, lib_path)
            if error:
                return None, error
        try:
            lib = ctypes.CDLL(str(lib_path))
            break
        except OSError as e:
            if attempt:
                return None, f"could not load {lib_path}: {e}"
            lib_path.unlink(missing_ok=True)  # a damaged file: built again, once
    fn = lib.gankit_adam_bf16
    fn.restype = None
    fn.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                   ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_double,
                   ctypes.c_void_p]
    return lib, None


@functools.lru_cache(maxsize=1)
def report_unavailable() -> None:
    """Say once per process, on stderr, that the kernel is not used here, and why."""
    print(f"gankit: bf16 Adam through torch's separate passes (slower): {why_not()}",
          file=sys.stderr)


def kernel() -> ctypes.CDLL | None:
    """The loaded library, or None where it cannot be built or run here (`why_not`)."""
    return _build()[0]


def why_not() -> str | None:
    """Why the kernel is not available here (None when it is)."""
    return _build()[1]


class AdamBF16:
    """One net's Adam update through the C kernel: T stacked tensors of k members (k = 1 for
    one run), each member's slice its own tensor to the kernel as to torch's fused Adam.

    `step`'s rows hold, per tensor: its weight, exp_avg and exp_avg_sq (fp32), its gradient in
    bf16 (or None: then the fp32 one is read), in fp32, its bf16 weight copy (written) and its
    step count (a float32 scalar, already advanced); all on the CPU, contiguous, the members
    first. The tensors are checked and their addresses packed when the rows hold other tensor
    objects than at the last call (a loaded checkpoint replaces the moments; a rebound net its
    weights), and kept referenced until then: checking them every call took ~40 us of a
    ~2.5-ms step."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.sums: torch.Tensor | None = None
        self._held: list[torch.Tensor | None] = []
        self._packed: tuple[ctypes.Array, ctypes.Array] | None = None

    def step(self, rows: list[tuple[torch.Tensor, ...]], lr: float, betas: tuple[float, float],
             eps: float) -> torch.Tensor:
        """Update every tensor in place; returns the squared gradient sums, (T, k) fp32."""
        lib = kernel()
        if lib is None:
            raise RuntimeError(f"the native Adam kernel is not available: {why_not()}")
        held = [t for row in rows for t in row]
        if (self._packed is None or len(held) != len(self._held)
                or any(a is not b for a, b in zip(held, self._held))):
            self._packed = self._pack(rows)
            self._held = held
        arr, n = self._packed
        T = len(rows)
        if self.sums is None or self.sums.shape != (T, self.k):
            self.sums = torch.empty(T, self.k)
        lib.gankit_adam_bf16(T, self.k, arr, n, float(lr), float(betas[0]), float(betas[1]),
                             float(eps), self.sums.data_ptr())
        return self.sums

    def _pack(self, rows: list[tuple[torch.Tensor, ...]]) -> tuple[ctypes.Array, ctypes.Array]:
        """The rows' addresses and sizes as the C function reads them, after checking them."""
        f32, b16 = torch.float32, torch.bfloat16
        ptrs, sizes = [], []
        for p, m, v, gl, gf, w, st in rows:
            for t, dtype in ((p, f32), (m, f32), (v, f32), (gf, f32), (w, b16), (gl, b16)):
                if t is not None and (not t.is_contiguous() or t.dtype != dtype
                                      or t.device.type != "cpu" or t.numel() != p.numel()):
                    raise ValueError("the native Adam kernel takes contiguous CPU tensors "
                                     "shaped as the weight: fp32 weights, moments and "
                                     "gradients, bf16 gradients and weight copies")
            if st.dtype != f32 or st.numel() != 1 or st.device.type != "cpu":
                raise ValueError("the native Adam kernel takes float32 step counts")
            ptrs += [p.data_ptr(), m.data_ptr(), v.data_ptr(),
                     gl.data_ptr() if gl is not None else 0,
                     0 if gl is not None else gf.data_ptr(), w.data_ptr(), st.data_ptr()]
            sizes.append(p.numel() // self.k)
        return (ctypes.c_int64 * len(ptrs))(*ptrs), (ctypes.c_int64 * len(sizes))(*sizes)
