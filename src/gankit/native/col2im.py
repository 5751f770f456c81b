"""The scatter half of a transposed convolution computed as a GEMM, in C (`csrc/col2im.c`):
models/kernels.py's route for transposed convolutions of small inputs.

oneDNN's bf16 transposed convolution of a small input runs far below its GEMM rate (report
004's G, batch 128, the Intel Xeon with AMX: 256 -> 128 channels, 3x3 -> 6x6, 2.2 ms in the
step, where the same arithmetic as one GEMM takes 0.7). As a GEMM, each input pixel's row of
x @ w is the window of outputs its kernel reaches; `col2im` adds those windows up into the
output map (channels-last), from the bias, in fp32, rounded once. torch's `F.fold` does the
same on NCHW maps at 10-15 ms here, and its per-tap strided additions at ~1 ms.

native/build.py builds it on first use; where it cannot (`why_not()`), the layer keeps
oneDNN's transposed convolution.
"""
from __future__ import annotations

import ctypes

import torch

from gankit.native import build

NAME = "col2im"
_P, _I = ctypes.c_void_p, ctypes.c_int64
KERNEL = build.Kernel(NAME, (
    ("gankit_col2im", ctypes.c_int, (_I, _I, _I, _I, _I, _I, _I, _I, _I, _I, _I, _I, _P, _P, _P,
                                     ctypes.c_int)),))
kernel, why_not = KERNEL.load, KERNEL.why_not


# says once why the kernel is not used here
report_unavailable = build.reporter("transposed convolutions of small inputs through oneDNN",
                                    lambda: why_not())


def col2im(cols: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int],
           padding: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
    """The output map (N, C, HO, WO), channels-last, in cols' type, of the windows cols
    (N, H, W, KH, KW, C; fp32 or bf16, contiguous): each output pixel the bias (fp32, (C,),
    or None) plus every window row that reaches it, input pixel (i, j)'s tap (a, b) reaching
    output pixel (stride i + a - padding, stride j + b - padding)."""
    if (cols.ndim != 6 or cols.dtype not in (torch.float32, torch.bfloat16)
            or cols.device.type != "cpu" or not cols.is_contiguous()):
        raise ValueError("col2im takes contiguous fp32 or bf16 CPU windows (N, H, W, KH, KW, C)")
    n, h, w, kh, kw, c = cols.shape
    if bias is not None and (bias.dtype != torch.float32 or not bias.is_contiguous()
                             or bias.numel() != c):
        raise ValueError("col2im takes a contiguous fp32 bias of one value per channel")
    ho, wo = out_size
    out = torch.empty(n, ho, wo, c, dtype=cols.dtype)
    if kernel().gankit_col2im(n, h, w, kh, kw, *stride, *padding, c, ho, wo, cols.data_ptr(),
                              None if bias is None else bias.data_ptr(), out.data_ptr(),
                              int(cols.dtype == torch.bfloat16)):
        raise MemoryError("col2im could not allocate its sums")
    return out.permute(0, 3, 1, 2)
