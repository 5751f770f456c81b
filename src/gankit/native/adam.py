"""The fused MLP step's bf16 Adam pass in C (`csrc/adam_bf16.c`).

In the bf16 fused step each net's update was four passes over its parameters in torch: the
bf16 gradients copied to fp32 (torch's fused Adam takes fp32 gradients only), their norm,
torch's fused Adam, and the bf16 weight copy cast for the next GEMMs. `csrc/adam_bf16.c` does
all four in one pass with torch's Adam arithmetic, bit for bit with torch's one-thread kernel
whatever the number of threads (it runs on torch's OpenMP threads). In the step (the Intel
Xeon, 2026-12-06, alternated in one process; docs/speed.md): a 4-member ensemble on one
thread 0.77-0.80x the step with torch's passes, one run on two threads 0.90x. torch offers
no such kernel (`_fused_adam_` takes fp32 gradients; a compiled Python version lost in the
step to dynamo's guards, docs/speed.md's twelfth and thirteenth sessions).

native/build.py builds it on first use; where it cannot (`why_not()`), the step runs torch's
passes (`kernels: plain` chooses them).
"""
from __future__ import annotations

import ctypes

import torch

from gankit.native import build

NAME = "adam_bf16"
_P, _I, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
KERNEL = build.Kernel(NAME, (("gankit_adam_bf16", None,
                               (_I, _I, _P, _P, _D, _D, _D, _D, _P, _P, _I)),))
kernel, why_not = KERNEL.load, KERNEL.why_not


# says once why the kernel is not used here
report_unavailable = build.reporter("bf16 Adam through torch's separate passes",
                                    lambda: why_not())


class AdamBF16:
    """One net's Adam update through the C kernel: T stacked tensors of k members (k = 1 for
    one run), each member's slice its own tensor to the kernel as to torch's fused Adam.

    `step`'s rows hold, per tensor: its weight, exp_avg and exp_avg_sq (fp32), its gradient in
    bf16 (or None: then the fp32 one is read), in fp32, its bf16 weight copy (written) and its
    step count (a float32 scalar, advanced by one first; rows may share it); all on the CPU,
    contiguous, the members first. The tensors are checked and their addresses packed when
    `rows` is another list object than at the last call, and kept referenced until then: the
    caller passes the same list, unchanged, while its tensors stay the same, and a new one
    when they change (a loaded checkpoint replaces the moments; a rebound net its weights).
    Checking the tensors every call took ~40 us of a ~2.5-ms step, comparing them ~20 us of
    a 1.45-ms one."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.sums: torch.Tensor | None = None
        self._rows: list[tuple[torch.Tensor, ...]] | None = None
        self._packed: tuple[ctypes.Array, ctypes.Array] | None = None

    def step(self, rows: list[tuple[torch.Tensor, ...]], lr: float, betas: tuple[float, float],
             eps: float, norms: torch.Tensor) -> torch.Tensor:
        """Advance the step counts and update every tensor in place; each member's gradient
        norm into `norms` (k fp32 values, at a stride: e.g. a column of the step's statistics);
        returns the squared gradient sums, (T, k) fp32."""
        if (norms.dtype != torch.float32 or norms.device.type != "cpu"
                or norms.numel() != self.k):
            raise ValueError("the native Adam kernel writes k fp32 CPU gradient norms")
        lib = kernel()
        if lib is None:
            raise RuntimeError(f"the native Adam kernel is not available: {why_not()}")
        if self._packed is None or rows is not self._rows:
            self._packed = self._pack(rows)
            self._rows = rows
        arr, n = self._packed
        T = len(rows)
        if self.sums is None or self.sums.shape != (T, self.k):
            self.sums = torch.empty(T, self.k)
        lib.gankit_adam_bf16(T, self.k, arr, n, float(lr), float(betas[0]), float(betas[1]),
                             float(eps), self.sums.data_ptr(), norms.data_ptr(),
                             norms.stride(-1) if norms.ndim else 1)
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
