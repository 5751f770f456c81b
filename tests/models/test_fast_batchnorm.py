"""BatchNorm and its activation as one C kernel (models/fast_batchnorm.py, native/batchnorm.py):
the same function and gradients as torch's BatchNorm then ReLU/LeakyReLU, as close to exact
as torch's bf16 kernels, the same numbers on any number of threads, the running statistics
kept, second derivatives, the layers swapped and back, and torch's path where no kernel runs."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.models import fast_batchnorm, kernels
from gankit.models.fast_batchnorm import FastBatchNorm2d, FusedLeakyReLU, FusedReLU
from gankit.native import batchnorm as native_bn
from gankit.training.loop import Trainer
from tests.conftest import tiny

needs_kernel = pytest.mark.skipif(native_bn.kernel() is None,
                                  reason=f"native BatchNorm kernel: {native_bn.why_not()}")

# (N, C, H, W): report 004's G and D maps (scaled down), a C that is not a multiple of 16, a
# map of one pixel (D's last BatchNorm), rows that do not fill the kernel's pieces
SHAPES = [(16, 64, 13, 13), (8, 32, 5, 5), (32, 64, 1, 1), (5, 19, 7, 3), (3, 40, 9, 11)]
ACTS = {None: nn.Identity, 0.0: nn.ReLU, 0.2: lambda: nn.LeakyReLU(0.2)}


def _pair(c: int, slope: float | None, affine: bool = True, momentum: float | None = 0.1):
    """(plain, fast): BatchNorm2d + activation as a model builds it, and its fused copy."""
    torch.manual_seed(0)
    plain = nn.Sequential(nn.BatchNorm2d(c, affine=affine, momentum=momentum), ACTS[slope]())
    if affine:
        with torch.no_grad():
            plain[0].weight.uniform_(0.5, 1.5)
            plain[0].bias.normal_(0, 0.3)
    fast = copy.deepcopy(plain)
    fast_batchnorm.fuse([fast], True)
    return plain, fast


def _input(shape: tuple, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * 2 + 0.7
    return x.bfloat16().contiguous(memory_format=torch.channels_last)


def _exact(x: torch.Tensor, bn: nn.BatchNorm2d, slope: float | None, dy: torch.Tensor):
    """The layer in float64 from the same bf16 input: output and gradients."""
    xd = x.double().requires_grad_()
    w = bn.weight.detach().double().requires_grad_() if bn.affine else None
    b = bn.bias.detach().double().requires_grad_() if bn.affine else None
    y = F.batch_norm(xd, None, None, w, b, True, 0.0, bn.eps)
    y = y if slope is None else F.leaky_relu(y, slope)
    y.backward(dy.double())
    return y, xd.grad, (w.grad if w is not None else None), (b.grad if b is not None else None)


def _err(a: torch.Tensor, exact: torch.Tensor) -> float:
    return ((a.double() - exact).abs().max() / exact.abs().max()).item()


@needs_kernel
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("slope", [None, 0.0, 0.2])
def test_the_kernel_is_batchnorm_and_activation_as_close_as_torchs(shape, slope) -> None:
    plain, fast = _pair(shape[1], slope)
    x = _input(shape)
    dy = _input(shape, seed=2)
    out, grads = {}, {}
    for name, m in (("plain", plain), ("fast", fast)):
        xi = x.clone().requires_grad_()
        y = m(xi)
        y.backward(dy)
        out[name] = y
        grads[name] = (xi.grad, m[0].weight.grad, m[0].bias.grad)
    assert type(out["fast"].grad_fn).__name__ == "_BatchNormActBackward"   # the kernel ran
    assert out["fast"].dtype == torch.bfloat16
    assert out["fast"].is_contiguous(memory_format=torch.channels_last)
    y, dx, dw, db = _exact(x, plain[0], slope, dy)
    # the output and input gradient are bf16: within a few of its rounding steps of the exact
    # values, as torch's; the affine gradients (fp32) at least as close as torch's
    for ours, theirs, exact, tol in ((out["fast"], out["plain"], y, 8e-3),
                                     (grads["fast"][0], grads["plain"][0], dx, 8e-3),
                                     (grads["fast"][1], grads["plain"][1], dw, 1e-5),
                                     (grads["fast"][2], grads["plain"][2], db, 1e-5)):
        assert _err(ours, exact) <= max(tol, 1.5 * _err(theirs, exact))
    for buf in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(fast[0], buf), getattr(plain[0], buf),
                                   rtol=1e-5, atol=1e-6)
    assert fast[0].num_batches_tracked.item() == 1


@needs_kernel
def test_without_affine_and_with_a_cumulative_average() -> None:
    plain, fast = _pair(24, None, affine=False, momentum=None)
    for step in range(3):
        x = _input((6, 24, 5, 5), seed=step)
        torch.testing.assert_close(fast(x).float(), plain(x).float(), rtol=0, atol=4e-2)
    torch.testing.assert_close(fast[0].running_mean, plain[0].running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast[0].running_var, plain[0].running_var, rtol=1e-5, atol=1e-6)


@needs_kernel
def test_the_numbers_do_not_depend_on_the_number_of_threads() -> None:
    threads = torch.get_num_threads()
    x = _input((64, 32, 13, 13))     # 10,816 rows: 43 pieces of the kernel's 256
    dy = _input((64, 32, 13, 13), seed=2)
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            _, fast = _pair(32, 0.2)
            xi = x.clone().requires_grad_()
            y = fast(xi)
            y.backward(dy)
            results.append((y, xi.grad, fast[0].weight.grad, fast[0].running_var))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


@needs_kernel
@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_second_derivatives_are_torchs(slope: float, monkeypatch) -> None:
    """An R1 penalty differentiates the input gradient again: through torch's operations."""
    calls = []
    kernel_forward = native_bn.forward
    monkeypatch.setattr(native_bn, "forward", lambda *a: calls.append(1) or kernel_forward(*a))
    plain, fast = _pair(16, slope)
    conv = nn.Conv2d(3, 16, 3).to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 9, 9).contiguous(memory_format=torch.channels_last)
    grads = []
    for m in (plain, fast):
        conv.zero_grad()
        m.zero_grad()
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", torch.bfloat16):
            out = m(conv(xi)).float().square().sum()
        g, = torch.autograd.grad(out, xi, create_graph=True)
        g.square().sum().backward()
        grads.append([conv.weight.grad.clone(), m[0].weight.grad.clone()])
    assert calls == [1]     # the fused layer's forward ran in the kernel
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.05 * b.abs().max().item())


def test_fuse_swaps_classes_only_and_back() -> None:
    net = nn.Sequential(nn.ConvTranspose2d(4, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.LeakyReLU(0.2),
                        nn.BatchNorm2d(8), nn.Tanh())
    params, keys = list(net.parameters()), list(net.state_dict())
    kernels.use([net], "fast")
    assert [type(m) for m in net[1:]] == [FastBatchNorm2d, FusedReLU, kernels.FastConv2d,
                                          FastBatchNorm2d, FusedLeakyReLU, FastBatchNorm2d,
                                          nn.Tanh]
    assert (net[1].fused_slope, net[4].fused_slope, net[6].fused_slope) == (0.0, 0.2, None)
    assert list(net.parameters()) == params and list(net.state_dict()) == keys
    assert copy.deepcopy(net)[4].fused_slope == 0.2     # an EMA copy keeps it
    kernels.use([net], "plain")
    assert [type(m) for m in net[1:]] == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d,
                                          nn.LeakyReLU, nn.BatchNorm2d, nn.Tanh]
    assert not any(hasattr(m, "__dict__") and "fused_slope" in m.__dict__ for m in net)


@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_outside_the_kernels_reach_it_is_torchs_layer_bit_for_bit(slope: float) -> None:
    """Eval mode, fp32 and contiguous maps run torch's BatchNorm and the activation."""
    plain, fast = _pair(16, slope)
    x32 = torch.randn(4, 16, 6, 6)
    for x in (x32, x32.contiguous(memory_format=torch.channels_last), x32.bfloat16()):
        assert torch.equal(fast(x), plain(x))
    plain.eval()
    fast.eval()
    x = x32.bfloat16().contiguous(memory_format=torch.channels_last)
    assert torch.equal(fast(x), plain(x))


def test_without_the_kernel_one_line_and_torchs_layer(monkeypatch, capsys) -> None:
    monkeypatch.setattr(native_bn, "kernel", lambda: None)
    monkeypatch.setattr(native_bn, "why_not", lambda: "no C compiler (cc) on the PATH")
    native_bn.report_unavailable.cache_clear()
    try:
        plain, fast = _pair(16, 0.0)
        x = _input((4, 16, 6, 6))
        assert torch.equal(fast(x), plain(x))
        assert torch.equal(fast(x), plain(x))
        err = capsys.readouterr().err
        assert err.count("gankit: bf16 BatchNorm through torch's kernels (slower): "
                         "no C compiler (cc) on the PATH") == 1, err
    finally:
        native_bn.report_unavailable.cache_clear()


def test_the_trainer_fuses_with_fast_kernels_only(tmp_path: Path) -> None:
    for name, want in (("fast", FastBatchNorm2d), ("plain", nn.BatchNorm2d)):
        tr = Trainer(tiny("dcgan-r004", kernels=name), tmp_path / name, progress=False)
        types = {type(m) for net in (tr.G, tr.D) for m in net.modules()
                 if isinstance(m, nn.BatchNorm2d)}
        assert types == {want}


@needs_kernel
def test_a_block_names_its_pairs_and_they_fuse(monkeypatch) -> None:
    """The ResNet's blocks call BatchNorm and ReLU in code (no nn.Sequential): their
    `bn_act_pairs` fuse them, with the same state_dict keys and the same outputs and
    gradients as torch's layers (bf16, channels-last, training mode: the kernel's case)."""
    from gankit.models.resnet import DownBlock
    slopes = []
    kernel_forward = native_bn.forward
    monkeypatch.setattr(native_bn, "forward",
                        lambda *a: slopes.append(a[3]) or kernel_forward(*a))
    torch.manual_seed(0)
    plain = DownBlock(16, 32, bn=True, down=True).to(memory_format=torch.channels_last)
    fast = copy.deepcopy(plain)
    keys = list(fast.state_dict())
    kernels.use([fast], "fast")
    assert (type(fast.act1), type(fast.act2)) == (FusedReLU, FusedReLU)
    assert fast.bn1.fused_slope == fast.bn2.fused_slope == 0.0
    assert list(fast.state_dict()) == keys
    x = _input((8, 16, 10, 10))
    outs, grads = [], []
    for m in (plain, fast):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", torch.bfloat16):
            out = m(xi)
        out.float().square().sum().backward()
        outs.append(out.float())
        grads.append([xi.grad, m.conv1.weight.grad, m.bn1.weight.grad, m.bn2.bias.grad])
    assert slopes == [0.0, 0.0]     # both BatchNorms ran in the kernel, each with its ReLU
    torch.testing.assert_close(outs[1], outs[0], rtol=0.02, atol=0.02)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.05 * b.abs().max().item())
    kernels.use([fast], "plain")
    assert (type(fast.act1), type(fast.act2)) == (nn.ReLU, nn.ReLU)
