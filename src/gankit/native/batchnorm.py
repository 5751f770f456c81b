"""BatchNorm in training mode with the activation after it, over channels-last bf16 maps, in C
(`csrc/batchnorm_bf16.c`): the forward and backward passes of models/fast_batchnorm.py.

torch's CPU BatchNorm over bf16 channels-last maps, and the ReLU or LeakyReLU after it, are
four separate passes of slow kernels (report 004's DCGAN, bf16, profiled in the step on the
AMD EPYC: BatchNorm's backward 8% of the step, the ReLU's backward 3%, its forward 3%). The C
kernel takes the statistics, normalises, applies the affine and the activation in one
function and the backward (the activation's mask recomputed from the input) in another;
report 004's six maps alone, forward and backward on 2 threads: 17-415 against 76-1272 us
(its step 0.955x). The per-channel sums are taken over fixed pieces of rows and added in
double, so the numbers do not depend on the number of threads; they are as close to the exact
values as torch's (the bf16 output rounding dominates both;
tests/models/test_fast_batchnorm.py).
"""
from __future__ import annotations

import ctypes

import torch

from gankit.native import build

NAME = "batchnorm_bf16"
_P, _I, _F, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_double
KERNEL = build.Kernel(NAME, (
    ("gankit_bn_forward", ctypes.c_int, (_I, _I, _P, _P, _P, _F, _D, _D, _P, _P, _P, _P, _P)),
    ("gankit_bn_backward", ctypes.c_int, (_I, _I, _P, _P, _P, _P, _P, _P, _F, _P, _P, _P))))
kernel, why_not = KERNEL.load, KERNEL.why_not


# says once why the kernel is not used here
report_unavailable = build.reporter("bf16 BatchNorm through torch's kernels", lambda: why_not())


def takes(x: torch.Tensor) -> bool:
    """Whether the kernel computes BatchNorm of x: a 4-D bf16 CPU map laid out channels-last."""
    return (x.dim() == 4 and x.dtype == torch.bfloat16 and x.device.type == "cpu"
            and x.is_contiguous(memory_format=torch.channels_last))


def _check_vectors(c: int, *vectors: torch.Tensor | None) -> None:
    for v in vectors:
        if v is not None and (v.dtype != torch.float32 or v.device.type != "cpu"
                              or not v.is_contiguous() or v.numel() != c):
            raise ValueError("the BatchNorm kernel takes contiguous fp32 CPU vectors of one "
                             "value per channel")


def forward(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
            slope: float, eps: float, momentum: float, running_mean: torch.Tensor | None,
            running_var: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """act(batch_norm(x)) in bf16, act(z) = z if z > 0 else slope * z (slope 1: none), and
    the batch's mean and 1/sqrt(var + eps); the running statistics, when given, are updated
    in place with `momentum` (unbiased variance, as torch)."""
    if not takes(x):
        raise ValueError("the BatchNorm kernel takes 4-D bf16 CPU maps laid out channels-last")
    n, c, h, w = x.shape
    _check_vectors(c, weight, bias, running_mean, running_var)
    y = torch.empty_like(x, memory_format=torch.channels_last)
    mean, invstd = torch.empty(c), torch.empty(c)
    if kernel().gankit_bn_forward(n * h * w, c, x.data_ptr(), build.ptr(weight),
                                  build.ptr(bias), slope, eps, momentum,
                                  build.ptr(running_mean), build.ptr(running_var),
                                  y.data_ptr(), mean.data_ptr(), invstd.data_ptr()):
        raise MemoryError("the BatchNorm kernel could not allocate its sums")
    return y, mean, invstd


def backward(x: torch.Tensor, dy: torch.Tensor, weight: torch.Tensor | None,
             bias: torch.Tensor | None, mean: torch.Tensor, invstd: torch.Tensor, slope: float,
             input_grad: bool, affine_grads: bool
             ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """The gradients of `forward`'s output (dy) for x (bf16, channels-last), the weight and
    the bias (fp32); None for those not asked for."""
    dy = dy.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    if not (takes(x) and dy.shape == x.shape):
        raise ValueError("the BatchNorm kernel takes 4-D bf16 CPU maps laid out channels-last")
    n, c, h, w = x.shape
    _check_vectors(c, weight, bias, mean, invstd)
    dx = torch.empty_like(x, memory_format=torch.channels_last) if input_grad else None
    dw = torch.empty(c) if affine_grads else None
    db = torch.empty(c) if affine_grads else None
    if kernel().gankit_bn_backward(n * h * w, c, x.data_ptr(), dy.data_ptr(),
                                   build.ptr(weight), build.ptr(bias), mean.data_ptr(),
                                   invstd.data_ptr(), slope,
                                   build.ptr(dx), build.ptr(dw), build.ptr(db)):
        raise MemoryError("the BatchNorm kernel could not allocate its sums")
    return dx, dw, db
