"""The batch and channel axes of a channels-last map swapped, in C (`csrc/swap_axes.c`):
models/kernels.py's swapped weight gradients (a convolution's weight gradient as one
convolution of x and the output gradient with their batch and channel axes swapped).

A channels-last map (N, C, H, W) is the array (N, H W, C) in memory, and the channels-last
copy of its transpose (C, N, H, W) the array (C, H W, N): the outer and inner axes swap.
torch's strided copy does that element by element, at a few GB/s (a bf16 (128, 64, 14, 14)
map: 4.3 ms against 0.17 for a plain copy, on the Intel Xeon); the kernel moves blocks with
AVX-512 gathers (0.38 ms).

native/build.py builds it on first use; where it cannot (`why_not()`), the copy is torch's.
"""
from __future__ import annotations

import ctypes

import torch

from gankit.native import build

NAME = "swap_axes"
_P, _I = ctypes.c_void_p, ctypes.c_int64
KERNEL = build.Kernel(NAME, (("gankit_swap_axes", ctypes.c_int, (_I, _I, _I, _I, _P, _P)),))
kernel, why_not = KERNEL.load, KERNEL.why_not

# says once why the kernel is not used here
report_unavailable = build.reporter("batch and channel axes swapped by torch's copy",
                                    lambda: why_not())


def swap_batch_channels(x: torch.Tensor) -> torch.Tensor:
    """x.transpose(0, 1) as a channels-last tensor (C, N, H, W) of the map x (N, C, H, W): by
    the kernel when x is a channels-last CPU map of 2- or 4-byte elements, else torch's copy."""
    cl = torch.channels_last
    if (x.dim() != 4 or x.device.type != "cpu" or x.element_size() not in (2, 4)
            or not x.is_contiguous(memory_format=cl)):
        return x.transpose(0, 1).contiguous(memory_format=cl)
    lib = kernel()
    if lib is None:
        report_unavailable()
        return x.transpose(0, 1).contiguous(memory_format=cl)
    n, c, h, w = x.shape
    out = torch.empty((c, n, h, w), dtype=x.dtype, memory_format=cl)
    lib.gankit_swap_axes(n, h * w, c, x.element_size(), x.data_ptr(), out.data_ptr())
    return out
