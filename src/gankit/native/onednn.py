"""Small GEMMs through oneDNN's C API: each shape's matmul primitive made once, then executed
(`csrc/onednn_matmul.c`); the fused MLP step's GEMMs on CPU, in fp32 and bf16.

Report 000's MLP at batch 64 is some twenty GEMMs a step of 1-50 MFLOP each. torch reaches
oneDNN through ideep, which builds the primitive's descriptors and looks it up in its cache at
every call: a 64x128 -> 256 bf16 linear layer took 40-50 us through
`torch.ops.mkldnn._linear_pointwise` and 8-13 us as a kept primitive (the Intel Xeon with
AMX, 2026-12-06, docs/speed.md). No torch API keeps a primitive for a weight that changes
every step, and libtorch exports no oneDNN symbol, so the kernel links oneDNN's own library,
pip's `onednn-cpu-gomp` (a dependency of gankit on Linux x86-64): built with GNU OpenMP, it
runs on the threads of the libgomp torch has loaded. Where it is missing or cannot be built,
`why_not()` says why and the step calls torch.
"""
from __future__ import annotations

import ctypes
import functools
import sys
from importlib import metadata
from pathlib import Path

import torch

from gankit.native import build, program

NAME = "onednn_matmul"
_P, _I, _F, _C = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
# The oneDNN release whose library and headers gankit builds against (pyproject.toml).
PACKAGES = ("onednn-cpu-gomp", "onednn-devel-cpu-gomp")


def _package_file(package: str, suffix: str) -> Path | None:
    """The installed file of `package` whose path ends in `suffix`, or None."""
    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith(suffix):  # e.g. "../../libdnnl.so": data files outside site-packages
            return Path(f.locate()).resolve()
    return None


@functools.lru_cache(maxsize=1)
def _flags() -> tuple[tuple[str, ...], str | None]:
    """The include path and library to build with, or why they are not installed."""
    lib = _package_file(PACKAGES[0], "/libdnnl.so")
    header = _package_file(PACKAGES[1], "/oneapi/dnnl/dnnl.h")
    if lib is None or header is None:
        return (), (f"oneDNN's library is not installed (pip install {' '.join(PACKAGES)}; "
                    "gankit installs them on Linux x86-64)")
    include, libdir = header.parents[2], lib.parent
    return (f"-I{include}", f"-L{libdir}", "-ldnnl", f"-Wl,-rpath,{libdir}"), None


KERNEL = build.Kernel(NAME, (
    ("gankit_mm_make", _P, (_I, _I, _I, _I, _P, _P, _P, _C, _C, _C, _C, _C, _C, _F)),
    ("gankit_mm_run", _C, (_P, _P, _P, _P, _P)),
    ("gankit_mm_run2", _C, (_P, _P, _P, _P, _P, _P, _P, _P, _P, _P)),
    ("gankit_mm_impl", ctypes.c_char_p, (_P,)),
    ("gankit_mm_error", ctypes.c_char_p, ())), extra=_flags, avx512=False)
kernel, why_not = KERNEL.load, KERNEL.why_not

_TYPES = {torch.float32: 0, torch.bfloat16: 1}
# the activations a matmul applies to its result (oneDNN eltwise post-ops), with their codes
ACTS = {None: 0, "relu": 1, "lrelu": 2, "tanh": 3}
LRELU_SLOPE = 0.2
_ACT_FN = {None: lambda t: t, "relu": torch.relu_,
           "lrelu": lambda t: torch.nn.functional.leaky_relu_(t, LRELU_SLOPE), "tanh": torch.tanh_}


# says once why the GEMMs go through torch here
report_unavailable = build.reporter("the fused step's GEMMs through torch", lambda: why_not())


@functools.lru_cache(maxsize=None)
def report_fallback(why: str) -> None:
    """Say once per reason, on stderr, that oneDNN made no primitive for some GEMMs (they then
    go through torch)."""
    print(f"gankit: {why}: those GEMMs through torch", file=sys.stderr)


class Matmuls:
    """act(a @ b + bias) for 2-D CPU tensors of fp32 or bf16 (or 3-D: a batch of products,
    the fused ensemble step's members), each distinct (shapes, strides,
    types, activation, thread count) a oneDNN primitive made on first use and kept: the
    caller's buffers are read and written in place, as strided views (a weight's transpose
    `w.mT`, a column slice) without copies."""

    def __init__(self) -> None:
        self.lib = kernel()
        if self.lib is None:
            raise RuntimeError(f"oneDNN's matmul is not available: {why_not()}")
        self._plans: dict[tuple, int] = {}

    def plan(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor,
             bias: torch.Tensor | None, act: str | None, lane: int | None = None) -> int:
        """The primitive for these operands (made on first use); with `lane` (0 or 1), one
        made for one thread, for that side of `pair`."""
        threads = torch.get_num_threads()
        key = (a.shape, a.stride(), b.shape, b.stride(), out.stride(), a.dtype, b.dtype,
               out.dtype, None if bias is None else bias.dtype, act, threads, lane)
        plan = self._plans.get(key)
        if plan is None:
            # oneDNN fits a primitive to the threads it sees: a pair's side is made for one
            with build.on_threads(threads if lane is None else 1):
                plan = self._plans[key] = self._make(a, b, out, bias, act)
        return plan

    def _make(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor,
              bias: torch.Tensor | None, act: str | None) -> int:
        nd = a.ndim
        # a batched bias: written into out's rows by the plan, the product added (csrc)
        batched_bias = bias is not None and nd == 3
        if nd not in (2, 3) or b.ndim != nd or out.ndim != nd:
            raise ValueError("oneDNN matmul takes 2-D tensors, or 3-D ones (a batch of them)")
        *lead, m, k = a.shape
        n = b.shape[-1]
        if (b.shape != (*lead, k, n) or out.shape != (*lead, m, n) or act not in ACTS
                or any(t.dtype not in _TYPES or t.device.type != "cpu" for t in (a, b, out))
                or (bias is not None and (bias.shape != (*lead, n) or not bias.is_contiguous()))
                or (batched_bias and (bias.dtype != out.dtype or out.stride(-1) != 1))):
            raise ValueError("oneDNN matmul takes fp32/bf16 CPU tensors a ([batch,] m, k), b "
                             "([batch,] k, n), out ([batch,] m, n), a contiguous bias "
                             "([batch,] n; batched: out's type, out's rows contiguous)")
        strides = [(ctypes.c_int64 * nd)(*t.stride()) for t in (a, b, out)]
        plan = self.lib.gankit_mm_make(
            lead[0] if lead else 0, m, k, n, *strides, _TYPES[a.dtype], _TYPES[b.dtype],
            _TYPES[out.dtype], -1 if bias is None else _TYPES[bias.dtype], int(batched_bias),
            ACTS[act], LRELU_SLOPE)
        if not plan:  # e.g. no bf16 matmul in oneDNN 3.2 for a CPU without AVX-512
            report_fallback(f"oneDNN made no {str(a.dtype).removeprefix('torch.')} matmul "
                            f"here ({self.lib.gankit_mm_error().decode()})")
        return plan or 0

    def __call__(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None,
                 bias: torch.Tensor | None = None, act: str | None = None) -> torch.Tensor:
        """act(a @ b + bias) into `out` (a new contiguous tensor of a's type when None);
        returns it. act: None, 'relu', 'lrelu' (slope 0.2) or 'tanh'."""
        if out is None:
            out = torch.empty(*a.shape[:-1], b.shape[-1], dtype=a.dtype)
        plan = self.plan(a, b, out, bias, act)
        prog = program.active()
        if prog is not None:
            return self._record(prog, plan, a, b, out, bias)
        if not plan:
            r = torch.matmul(a, b)
            if bias is not None:
                r += bias.unsqueeze(-2)
            return out.copy_(_ACT_FN[act](r))
        if self.lib.gankit_mm_run(plan, a.data_ptr(), b.data_ptr(),
                                  None if bias is None else bias.data_ptr(), out.data_ptr()):
            raise RuntimeError(self.lib.gankit_mm_error().decode())
        return out

    def pair(self, first: tuple, second: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent products, each given as a call's arguments (a, b[, out[, bias[,
        act]]]): side by side, one per thread, where there are two threads or more (each
        primitive made for one thread; gankit_mm_run2 in csrc/onednn_matmul.c), else one after
        the other. Neither may read what the other writes. Returns both results."""
        if torch.get_num_threads() < 2:
            return self(*first), self(*second)
        calls = []
        for lane, args in enumerate((first, second)):
            a, b, out, bias, act = (*args, None, None, None)[:5]
            if out is None:
                out = torch.empty(*a.shape[:-1], b.shape[-1], dtype=a.dtype)
            calls.append((a, b, out, bias, act, self.plan(a, b, out, bias, act, lane)))
        if not (calls[0][5] and calls[1][5]):  # torch's fallback, one after the other
            return self(*calls[0][:5]), self(*calls[1][:5])
        words = [w for a, b, out, bias, _, plan in calls
                 for w in (plan, a.data_ptr(), b.data_ptr(), build.ptr(bias), out.data_ptr())]
        prog = program.active()
        if prog is not None:
            prog.keep += [calls[0][2], calls[1][2]]
            prog.add(program.MM2, program.address(self.lib.gankit_mm_run2), *words)
        elif self.lib.gankit_mm_run2(*words):
            raise RuntimeError(self.lib.gankit_mm_error().decode())
        return calls[0][2], calls[1][2]

    def _record(self, prog: program.Program, plan: int, a: torch.Tensor, b: torch.Tensor,
                out: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Append this product to the program being recorded (native/program.py); `out` kept
        by it. torch's fallback has no recorded form."""
        if not plan:
            raise program.NotRecordable("this product runs through torch operations")
        prog.keep.append(out)
        prog.add(program.MM, program.address(self.lib.gankit_mm_run), plan, a.data_ptr(),
                 b.data_ptr(), None if bias is None else bias.data_ptr(), out.data_ptr())
        return out

    def impl(self, a: torch.Tensor, b: torch.Tensor, act: str | None = None) -> str:
        """The implementation oneDNN chose for a @ b (e.g. 'brg:avx512_core_amx')."""
        out = torch.empty(*a.shape[:-1], b.shape[-1], dtype=a.dtype)
        plan = self.plan(a, b, out, None, act)
        return self.lib.gankit_mm_impl(plan).decode() if plan else "torch (no oneDNN primitive)"
