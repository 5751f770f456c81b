"""The windows of a channels-last map, one row per output pixel (im2col), in C
(`csrc/im2col.c`): models/kernels.py's weight gradient of a strided convolution as one GEMM.

torch copies such a window view (a 6-D strided view of the padded map, after `F.pad` copied
it once) at 1.3-3.5 ms for `default`'s D layer in the step (batch 64 and 128, bf16); the
kernel copies each window row's C contiguous values (or zeros in the padding) straight from
the map.

native/build.py builds it on first use; where it cannot (`why_not()`), the copy is torch's.
"""
from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F

from gankit.native import build

NAME = "im2col"
_P, _I = ctypes.c_void_p, ctypes.c_int64
KERNEL = build.Kernel(NAME, (("gankit_im2col", None, (_I,) * 13 + (_P, _P)),), avx512=False)
kernel, why_not = KERNEL.load, KERNEL.why_not

# says once why the kernel is not used here
report_unavailable = build.reporter("convolution windows copied by torch", lambda: why_not())


def windows(x: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int],
            padding: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
    """The windows (N P Q, KH KW C) of the channels-last map x (N, C, H, W) that a
    convolution with this kernel, stride and zero padding reads for its (P, Q) output pixels:
    row (n, p, q) holds x's values at (stride p + a - padding, stride q + b - padding) for
    a < KH, b < KW (zeros outside x), channels innermost."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (p, q) = kernel_size, stride, padding, out_size
    if not x.is_contiguous(memory_format=torch.channels_last):
        raise ValueError("windows takes a channels-last map")
    lib = kernel() if x.device.type == "cpu" else None
    if lib is None:
        if x.device.type == "cpu":
            report_unavailable()
        hp, wp = max(h + 2 * ph, sh * (p - 1) + kh), max(w + 2 * pw, sw * (q - 1) + kw)
        xp = F.pad(x, (pw, wp - w - pw, ph, hp - h - ph)).permute(0, 2, 3, 1).contiguous()
        st = xp.stride()
        view = xp.as_strided((n, p, q, kh, kw, c),
                             (st[0], sh * st[1], sw * st[2], st[1], st[2], 1))
        return view.reshape(n * p * q, kh * kw * c)
    out = torch.empty(n * p * q, kh * kw * c, dtype=x.dtype)
    lib.gankit_im2col(n, h, w, c, p, q, kh, kw, sh, sw, ph, pw, x.element_size(),
                      x.data_ptr(), out.data_ptr())
    return out
