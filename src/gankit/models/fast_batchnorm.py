"""BatchNorm and the activation after it as one C kernel: part of `kernels: fast`.

`fuse(modules, True)` turns every `nn.BatchNorm2d` into a `FastBatchNorm2d` (the class only:
the same parameters, buffers and state_dict keys) and, where an `nn.ReLU` or `nn.LeakyReLU`
follows it in an `nn.Sequential` or in a pair a module names in its `bn_act_pairs` (blocks that
call their layers in code, as the ResNet's), gives the BatchNorm that activation
(`fused_slope`) and turns the activation into a pass-through (`FusedReLU`, `FusedLeakyReLU`):
the layers compute what they computed before, the BatchNorm's output being the activated one.
In training mode, on a bf16 channels-last CPU map (a bf16 run's convolution outputs), the
BatchNorm and its activation run as native/batchnorm.py's C kernel, forward and backward;
anywhere else (eval mode, fp32, another device, no kernel here) torch's BatchNorm and then the
activation. `fuse(modules, False)` turns them all back.

A second derivative through the layer (R1, WGAN-GP) is taken by torch's own operations,
recomputed from the saved input: the kernel's backward is not differentiable.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from gankit.native import batchnorm as native_bn


def _activate(y: torch.Tensor, slope: float | None) -> torch.Tensor:
    """y through the activation of `slope` (None: none; 0: ReLU), in place."""
    if slope is None:
        return y
    return F.relu_(y) if slope == 0 else F.leaky_relu_(y, slope)


class _BatchNormAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, slope):
        ctx.k = 1.0 if slope is None else slope   # the kernel's slope: 1 is no activation
        y, mean, invstd = native_bn.forward(x, weight, bias, ctx.k, eps, momentum, running_mean,
                                            running_var)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        ctx.slope, ctx.eps = slope, eps
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias, mean, invstd = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        rest = (None,) * 5
        if torch.is_grad_enabled():   # create_graph: differentiable operations
            wanted = [t for t, need in ((x, need_x), (weight, need_w), (bias, need_b)) if need]
            with torch.enable_grad():
                y = _activate(F.batch_norm(x, None, None, weight, bias, True, 0.0, ctx.eps),
                              ctx.slope)
                got = iter(torch.autograd.grad(y, wanted, dy, create_graph=True))
            return (next(got) if need_x else None, next(got) if need_w else None,
                    next(got) if need_b else None, *rest)
        dx, dw, db = native_bn.backward(x, dy, weight, bias, mean, invstd, ctx.k, need_x,
                                        (need_w or need_b) and weight is not None)
        return dx, dw if need_w else None, db if need_b else None, *rest


class FastBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d followed by its fused activation (`fused_slope`: None for none, 0 for
    ReLU, else LeakyReLU's slope), by the C kernel where it applies (module doc)."""

    fused_slope: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and native_bn.takes(x) and x.numel() > x.shape[1]
                and (self.weight is None or self.weight.dtype == torch.float32)):
            return _activate(super().forward(x), self.fused_slope)
        if native_bn.kernel() is None:
            native_bn.report_unavailable()
            return _activate(super().forward(x), self.fused_slope)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:   # a cumulative average, as nn.BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
        keep = self.track_running_stats
        return _BatchNormAct.apply(x, self.weight, self.bias,
                                   self.running_mean if keep else None,
                                   self.running_var if keep else None, momentum, self.eps,
                                   self.fused_slope)


class FusedReLU(nn.ReLU):
    """An nn.ReLU whose work the FastBatchNorm2d before it does: passes its input through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class FusedLeakyReLU(nn.LeakyReLU):
    """An nn.LeakyReLU whose work the FastBatchNorm2d before it does: passes its input
    through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


_FUSED = {nn.ReLU: FusedReLU, nn.LeakyReLU: FusedLeakyReLU}
_PLAIN = {v: k for k, v in _FUSED.items()}


def fuse(modules: Iterable[nn.Module], on: bool) -> None:
    """Turn BatchNorm layers (and the activations that follow them) into their fused classes
    (`on`) or back, in place (module doc)."""
    for m in modules:
        for layer in m.modules():
            if type(layer) in (nn.BatchNorm2d, FastBatchNorm2d):
                layer.__class__ = FastBatchNorm2d if on else nn.BatchNorm2d
                layer.__dict__.pop("fused_slope", None)
        for bn, act in _pairs(m):
            if type(act) in _PLAIN:
                act.__class__ = _PLAIN[type(act)]
            if on and type(bn) is FastBatchNorm2d and type(act) in _FUSED:
                bn.fused_slope = 0.0 if type(act) is nn.ReLU else act.negative_slope
                act.__class__ = _FUSED[type(act)]


def _pairs(m: nn.Module) -> Iterator[tuple[nn.Module, nn.Module]]:
    """Every (layer, the layer applied to its output) of `m`: neighbours in an nn.Sequential,
    and the pairs of child names a module lists in `bn_act_pairs`."""
    for mod in m.modules():
        if isinstance(mod, nn.Sequential):
            children = list(mod)
            yield from zip(children, children[1:])
        for first, then in getattr(mod, "bn_act_pairs", ()):
            yield getattr(mod, first), getattr(mod, then)
