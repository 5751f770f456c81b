"""A bf16 -> bf16 elementwise function through a table of its 65,536 results, in C
(`csrc/table_bf16.c`): the fused MLP ensemble's tanh where no kept oneDNN primitive
(native/onednn.py) applies it as a post-op.

torch's tanh is slow on the AMD EPYC (500-640 us for a 4-member G output of 200,704 values on
one thread, 5.7% of that step; docs/speed.md, fifteenth session). A bf16 input has 65,536
values, so the function is a table, filled once by torch's own function (the results are
torch's bit for bit) and read by a vector gather.
"""
from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

import torch

from gankit.native import build

NAME = "table_bf16"
_P, _I = ctypes.c_void_p, ctypes.c_int64
KERNEL = build.Kernel(NAME, (("gankit_table_bf16", None, (_I, _P, _P, _P)),))
kernel, why_not = KERNEL.load, KERNEL.why_not


def every_bf16() -> torch.Tensor:
    """All 65,536 bf16 values, in the order of their bits."""
    return torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)


class Table:
    """fn (a bf16 -> bf16 elementwise torch function) of every bf16 value; `apply(x)` maps a
    contiguous bf16 CPU tensor through it in place."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        out = fn(every_bf16())
        if out.dtype != torch.bfloat16 or out.shape != (65536,):
            raise ValueError("a table takes an elementwise function from bf16 to bf16")
        # one spare entry: the kernel reads 4 bytes at the last value's 2
        self.values = torch.cat([out.view(torch.int16), torch.zeros(1, dtype=torch.int16)])

    def apply(self, x: torch.Tensor) -> None:
        """x[i] = fn(x[i]) for every element of x (bf16, contiguous, on the CPU)."""
        if x.dtype != torch.bfloat16 or not x.is_contiguous() or x.device.type != "cpu":
            raise ValueError("a table maps contiguous bf16 CPU tensors")
        kernel().gankit_table_bf16(x.numel(), x.data_ptr(), x.data_ptr(),
                                   self.values.data_ptr())


@functools.lru_cache(maxsize=1)
def tanh_bf16() -> Table:
    """torch's bf16 tanh as a table (the fp32 tanh of each value, rounded: the same bits)."""
    return Table(lambda v: torch.tanh(v.float()).bfloat16())
