"""kernels=fast (models/kernels.py): the same transposed convolutions, convolutions of few
channels, mean pools and convolutions of label planes by faster routes."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from gankit.config import ConfigError
from gankit.models import kernels
from gankit.models.conditioning import PlanesConv2d
from gankit.models.kernels import (FastConvTranspose2d, FastGlobalMeanPool, FastPlanesConv2d,
                                   _MeanPool)
from gankit.models.pooling import GlobalMeanPool
from gankit.training.checkpoint import load_checkpoint
from gankit.training.loop import Trainer, resume
from gankit.training.runs import read_config
from tests.conftest import tiny

# (Cin, Cout, kernel, stride, padding, input size): a DCGAN G's first layer (the 1x1 route),
# report 004's 4x4 stride-1 layer on 3x3 and 3x3 stride-2 layer on 6x6 (the GEMM weight
# gradient), a 4x4 stride-2 layer on 7x7 and a 5x5 one to 4 channels (plain forward, and the
# bias route in bf16), and two layers to one channel (the phase route: a DCGAN G's last
# layer, k4 and k3)
LAYERS = [(12, 16, 7, 1, 0, 1), (16, 8, 4, 1, 0, 3), (16, 8, 3, 2, 0, 6), (16, 8, 4, 2, 1, 7),
          (8, 4, 5, 2, 1, 4), (16, 1, 4, 2, 1, 7), (16, 1, 3, 2, 0, 6)]


def _pair(cin: int, cout: int, k: int, s: int, p: int, bias: bool = True
          ) -> tuple[nn.ConvTranspose2d, nn.ConvTranspose2d]:
    torch.manual_seed(0)
    plain = nn.ConvTranspose2d(cin, cout, k, s, p, bias=bias).to(memory_format=torch.channels_last)
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    return plain, fast


def _run(layer: nn.Module, x: torch.Tensor, bf16: bool) -> list[torch.Tensor]:
    """Output, input gradient and parameter gradients of a weighted sum of the output."""
    layer.zero_grad()
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = layer(x)
    (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return [y.detach().float(), x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("shape", LAYERS)
@pytest.mark.parametrize("bias", [True, False])
def test_fast_routes_compute_the_plain_layer_in_fp32(shape: tuple, bias: bool) -> None:
    """In fp32 the 1x1 route and a small input's (`_GemmTransposed`) are GEMMs instead of a
    convolution: the same sums in another order (measured 1.1e-6 relative); the others run
    the plain forward itself (exact)."""
    *layer, size = shape
    plain, fast = _pair(*layer, bias=bias)
    x = torch.randn(5, layer[0], size, size)
    for a, b in zip(_run(plain, x, False), _run(fast, x, False)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert float((a - b).abs().max()) <= 1e-5 * float(a.abs().max())


@pytest.mark.parametrize("shape", LAYERS)
def test_fast_routes_compute_the_plain_layer_in_bf16(shape: tuple) -> None:
    """Under bf16 autocast: the bias added after a bf16 output rounds twice (at most 2 ulps of
    bf16, 2^-7 of the largest output; measured 0.016 on 2.2); gradients agree as closely."""
    *layer, size = shape
    plain, fast = _pair(*layer)
    x = torch.randn(5, layer[0], size, size)
    ya, *ga = _run(plain, x, True)
    yb, *gb = _run(fast, x, True)
    assert float((ya - yb).abs().max()) <= 2 ** -6 * float(ya.abs().max())
    for a, b in zip(ga, gb):
        assert float((a - b).abs().max()) <= 2 ** -6 * float(a.abs().max())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast(x)
    assert out.dtype == torch.bfloat16  # as the plain layer's under autocast
    if size == 1:
        assert out.is_contiguous(memory_format=torch.channels_last)


def test_the_1x1_route_is_exact_on_a_tiny_input() -> None:
    """z (1, 2) times W (2, 1, 2, 2) plus a bias: each output pixel is w0 z0 + w1 z1 + b."""
    layer = nn.ConvTranspose2d(2, 1, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[[1., 2.], [3., 4.]]], [[[10., 20.], [30., 40.]]]]))
        layer.bias.fill_(0.5)
    kernels.use([layer], "fast")
    out = layer(torch.tensor([[1., -1.]]).view(1, 2, 1, 1))
    assert out.tolist() == [[[[-8.5, -17.5], [-26.5, -35.5]]]]


def test_use_swaps_the_class_only_and_back() -> None:
    G = nn.Sequential(nn.ConvTranspose2d(4, 3, 4), nn.ReLU(), nn.ConvTranspose2d(3, 1, 4, 2, 1))
    params, keys = list(G.parameters()), list(G.state_dict())
    kernels.use([G], "fast")
    assert [type(m) for m in G[::2]] == [FastConvTranspose2d] * 2
    assert list(G.parameters()) == params and list(G.state_dict()) == keys
    assert type(copy.deepcopy(G)[0]) is FastConvTranspose2d  # an EMA copy keeps the route
    kernels.use([G], "plain")
    assert [type(m) for m in G[::2]] == [nn.ConvTranspose2d] * 2
    sn = nn.utils.parametrizations.spectral_norm(nn.ConvTranspose2d(2, 2, 3))
    kernels.use([sn], "fast")  # a parametrized layer (a subclass) is left as it is
    assert type(sn).__name__ == "ParametrizedConvTranspose2d"
    with pytest.raises(ConfigError, match="kernels must be one of fast, plain, got 'quick'"):
        kernels.use([G], "quick")


def _conv_ts(t: Trainer) -> set[type]:
    return {type(m) for net in (t.G, t.ema.shadow) for m in net.modules()
            if isinstance(m, nn.ConvTranspose2d)}


def test_the_trainer_uses_the_configured_kernels(tmp_path: Path) -> None:
    fast = Trainer(tiny("default"), tmp_path / "fast", progress=False)
    plain = Trainer(tiny("default", kernels="plain"), tmp_path / "plain", progress=False)
    assert _conv_ts(fast) == {FastConvTranspose2d}
    assert _conv_ts(plain) == {nn.ConvTranspose2d}
    assert type(fast.D.pool) is FastGlobalMeanPool and type(plain.D.pool) is GlobalMeanPool
    assert type(fast.D.head) is kernels.FastConv2d and type(plain.D.head) is nn.Conv2d


@pytest.mark.parametrize("bf16", [False, True])
def test_the_mean_pool_route_is_the_mean_bit_for_bit(bf16: bool) -> None:
    """Its forward is `mean`'s; its input gradient holds the same values, as a broadcast view
    (no (B, C, H, W) tensor written), and adds into a channels-last gradient as `mean`'s does."""
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    head = nn.Conv2d(6, 1, 5).to(memory_format=torch.channels_last)
    w = torch.randn(6)
    outs = []
    for pool in (GlobalMeanPool(), FastGlobalMeanPool()):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            h = torch.nn.functional.leaky_relu(xi, 0.2)
            f = pool(h)
            loss = head(h).float().sum() + (f.float() * w).sum()
        loss.backward()
        outs.append((f.detach(), xi.grad))
    (fa, ga), (fb, gb) = outs
    assert torch.equal(fa, fb) and torch.equal(ga, gb)
    grad = _MeanPool.backward(type("ctx", (), {"shape": x.shape})(), torch.ones(4, 6))
    assert grad.stride()[2:] == (0, 0) and torch.equal(grad, torch.full(x.shape, 1 / 25))
    x64 = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(FastGlobalMeanPool(), (x64,))


def test_a_run_saved_before_the_setting_reads_plain_and_may_switch(tmp_path: Path) -> None:
    """kernels is resumable (the same function to rounding); a run whose config predates it
    (no `kernels` key) reads as plain kernels, as it trained, and may continue fast."""
    over = {"data__limit": 128, "precision": "fp32", "kernels": "plain", "epochs": 1}
    Trainer(tiny("default", **over), tmp_path / "run", progress=False).run()
    path = tmp_path / "run" / "config.yaml"
    saved = yaml.safe_load(path.read_text())
    assert saved.pop("kernels") == "plain"
    path.write_text(yaml.safe_dump(saved))
    cfg = read_config(tmp_path / "run")
    assert cfg.kernels == "plain"
    cfg.kernels, cfg.epochs = "fast", 2
    resume(tmp_path / "run", progress=False, cfg=cfg)
    assert yaml.safe_load(path.read_text())["kernels"] == "fast"
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["epoch"] == 2


@pytest.mark.parametrize("k,s,p,op", [(4, 2, 1, 0), (4, 2, 0, 0), (3, 2, 0, 0), (3, 2, 1, 1),
                                      (5, 2, 2, 1), (4, 3, 1, 2), (2, 2, 0, 0), (6, 3, 0, 0),
                                      (4, 2, 0, 1)])  # the last: plain forward
def test_the_phase_route_is_the_transposed_convolution(k: int, s: int, p: int, op: int) -> None:
    """One output channel, every kernel/stride/padding/output-padding mix: in float64 the
    output equals the plain layer's to rounding, and gradcheck passes (backward and forward
    agree), whether the phase route or (where the output would leave the phases) the plain
    forward runs."""
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(3, 1, k, s, p, op).double()
    fast = copy.deepcopy(layer)
    kernels.use([fast], "fast")
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(fast(x), layer(x), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x, w, b: kernels._PhaseForward.apply(x, w, b, s, p, op)
                                    if k + op - p <= -(-k // s) * s else fast(x),
                                    (x, fast.weight, fast.bias))


@pytest.mark.parametrize("k,s,p,op", [(4, 1, 0, 0), (3, 2, 0, 0), (4, 2, 1, 0), (5, 3, 1, 2),
                                      ((3, 4), (2, 1), (1, 0), (1, 0))])
@pytest.mark.parametrize("bias", [True, False])
def test_the_transposed_weight_gradients_are_the_transposed_convolutions(k, s, p, op,
                                                                           bias: bool) -> None:
    """More than a few output channels: for a small input the weight gradient is one GEMM
    over a strided view of the padded output gradient, for a larger one (strided layers only)
    the swapped convolution. In float64 every output and gradient equals the plain layer's to
    rounding for square and non-square kernels and strides, output padding past the padding
    (rows no tap reaches) and stride 1; gradcheck passes."""
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(5, 7, k, s, p, op, bias=bias).double()
    fast = copy.deepcopy(layer)
    kernels.use([fast], "fast")
    name = "_TransposedWeightGradBackward"
    x = torch.randn(3, 5, 4, 5, dtype=torch.float64)
    big = torch.randn(2, 5, 7, 8, dtype=torch.float64)  # 56 pixels > 36
    for inp in (x, big):
        ya, *ga = _run(layer, inp, False)
        yb, *gb = _run(fast, inp, False)
        for a, b in zip([ya, *ga], [yb, *gb]):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    xg, bigg = x.clone().requires_grad_(), big.clone().requires_grad_()
    assert type(fast(xg).grad_fn).__name__ == name  # the route ran
    assert torch.autograd.gradcheck(fast, (xg,))
    assert (type(fast(bigg).grad_fn).__name__ == name) == (min(fast.stride) > 1)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), layer(x), rtol=0, atol=0)  # no gradient: plain


@pytest.mark.parametrize("k,s,p,op", [(4, 1, 0, 0), (3, 2, 0, 0), (4, 2, 1, 0), (5, 3, 1, 2),
                                      ((3, 4), (2, 1), (1, 0), (1, 0))])
@pytest.mark.parametrize("bf16", [False, True])
def test_a_small_inputs_transposed_convolution_is_its_gemms(k, s, p, op, bf16: bool) -> None:
    """At most 36 input pixels, more than a few output channels, fp32 or bf16 on the CPU:
    the forward (GEMM and native/col2im.py's scatter) and all three gradients (GEMMs of the
    output gradient's windows) agree with the plain layer to the sums' order in fp32 and to
    bf16 rounding under autocast, for square and non-square kernels and strides, output
    padding past the padding (rows no tap reaches) and stride 1, with a gradient or without."""
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(5, 7, k, s, p, op).to(memory_format=torch.channels_last)
    fast = copy.deepcopy(layer)
    kernels.use([fast], "fast")
    x = torch.randn(3, 5, 4, 5)
    tol = 2 ** -6 if bf16 else 1e-5
    for a, b in zip(_run(layer, x, bf16), _run(fast, x, bf16)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert float((a - b).abs().max()) <= tol * float(a.abs().max())
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = fast(x.clone().requires_grad_())
        assert type(out.grad_fn).__name__ == "_GemmTransposedBackward"  # the route ran
        assert out.is_contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            assert torch.equal(fast(x), out.detach())


def _planes_pair(bias: bool, last: bool, dtype: torch.dtype = torch.float32
                 ) -> tuple[PlanesConv2d, PlanesConv2d]:
    torch.manual_seed(0)
    plain = PlanesConv2d(1, 10, 8, 4, 2, 1, bias=bias).to(dtype)
    if last:
        plain = plain.to(memory_format=torch.channels_last)
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    assert type(fast) is FastPlanesConv2d
    return plain, fast


def _planes_run(layer: nn.Module, x: torch.Tensor, v: torch.Tensor, bf16: bool
                ) -> list[torch.Tensor]:
    layer.zero_grad()
    x, v = x.clone().requires_grad_(), v.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = layer(x, v)
    (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return [y.detach().float(), x.grad, v.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("last", [True, False])
def test_the_planes_route_is_the_convolution_of_the_joined_input(bias: bool, last: bool) -> None:
    """D's first layer, conv(cat(x, label planes)): the image's convolution plus v @ (the
    planes' map per unit vector). In float64 the same values and gradients to rounding, for
    one-hot and learnt (embedding) label vectors; in fp32 within 1e-5 of the largest value;
    the output in the plain layer's layout."""
    plain, fast = _planes_pair(bias, last, torch.float64)
    x = torch.randn(5, 1, 12, 12, dtype=torch.float64)
    for v in (torch.eye(10, dtype=torch.float64)[torch.tensor([3, 0, 9, 3, 1])],
              torch.randn(5, 10, dtype=torch.float64)):
        for a, b in zip(_planes_run(plain, x, v, False), _planes_run(fast, x, v, False)):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    plain, fast = _planes_pair(bias, last)
    x, v = torch.randn(5, 1, 12, 12), torch.randn(5, 10)
    if last:
        x = x.contiguous(memory_format=torch.channels_last)
    for a, b in zip(_planes_run(plain, x, v, False), _planes_run(fast, x, v, False)):
        assert float((a - b).abs().max()) <= 1e-5 * float(a.abs().max())
    fmt = torch.channels_last if last else torch.contiguous_format
    assert plain(x, v).is_contiguous(memory_format=fmt)
    assert fast(x, v).is_contiguous(memory_format=fmt)


def test_the_planes_route_in_bf16() -> None:
    """Under bf16 autocast the image's part and the label's part round to bf16 before their
    sum: within 2^-6 of the largest value of the plain layer's output and gradients
    (measured 0.0075)."""
    plain, fast = _planes_pair(True, True)
    x = torch.randn(6, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    v = torch.eye(10)[torch.arange(6)]
    ya, *ga = _planes_run(plain, x, v, True)
    yb, *gb = _planes_run(fast, x, v, True)
    assert float((ya - yb).abs().max()) <= 2 ** -6 * float(ya.abs().max())
    for a, b in zip(ga, gb):
        assert float((a - b).abs().max()) <= 2 ** -6 * float(a.abs().max())


@pytest.mark.slow
def test_the_planes_route_differentiates_twice() -> None:
    """R1 differentiates D's gradient with respect to its input again: gradcheck and
    gradgradcheck pass through the route (float64)."""
    _, fast = _planes_pair(True, False, torch.float64)
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 10, dtype=torch.float64, requires_grad=True)
    f = lambda x, v, w, b: torch.func.functional_call(fast, {"weight": w, "bias": b}, (x, v))
    args = (x, v, fast.weight, fast.bias)
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


def test_the_planes_layer_keeps_the_joined_convolutions_parameters(tmp_path: Path) -> None:
    """A conditional DCGAN D's first layer holds one weight over image and label channels,
    as the nn.Conv2d of the joined input it replaces did: the same keys and shapes, so runs
    saved before it load; the trainer computes it by the configured route."""
    fast = Trainer(tiny("default"), tmp_path / "fast", progress=False)
    plain = Trainer(tiny("default", kernels="plain"), tmp_path / "plain", progress=False)
    assert type(fast.D.body[0]) is FastPlanesConv2d and type(plain.D.body[0]) is PlanesConv2d
    sd = plain.D.state_dict()
    assert sd["body.0.weight"].shape == (64, 1 + 10, 4, 4) and "body.0.bias" in sd
    old = nn.Conv2d(11, 64, 4, 2, 1)
    old.load_state_dict({"weight": sd["body.0.weight"], "bias": sd["body.0.bias"]})
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([2, 7, 7])
    v = torch.eye(10)[y]
    joined = torch.cat([x, v[:, :, None, None].expand(-1, -1, 28, 28)], dim=1)
    torch.testing.assert_close(plain.D.body[0](x, v), old(joined), rtol=0, atol=0)


# (Cin, Cout, kernel, stride, padding, input size): a DCGAN D's first layer (k4 s2 p1), report
# 004's (k3 s2 p0, an odd size), a 5x5 one, RGB at stride 3, and two the route leaves to
# F.conv2d: stride 1 (no phases), more than FEW_CHANNELS inputs
FEW = [(1, 8, 4, 2, 1, 12), (1, 8, 3, 2, 0, 13), (3, 4, 5, 2, 2, 11), (3, 4, 4, 3, 1, 10),
       (1, 4, 3, 1, 1, 8), (6, 4, 4, 2, 1, 8)]


@pytest.mark.parametrize("shape", FEW)
def test_the_few_channel_route_is_the_convolution(shape: tuple) -> None:
    """A convolution of an input with few channels: its input gradient, a transposed
    convolution to those few channels, by the phase route. In float64 the output and every
    gradient equal the plain layer's to rounding; gradcheck and gradgradcheck pass (R1
    differentiates D's input gradient again); without an input gradient F.conv2d runs."""
    *layer, size = shape
    torch.manual_seed(0)
    plain = nn.Conv2d(*layer).double()
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    assert type(fast) is kernels.FastConv2d
    x = torch.randn(3, layer[0], size, size, dtype=torch.float64)
    for a, b in zip(_run(plain, x, False), _run(fast, x, False)):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    routed = layer[0] <= kernels.FEW_CHANNELS and layer[3] > 1
    xg = x.clone().requires_grad_()
    assert ("_FewChannelConv" in type(fast(xg).grad_fn).__name__) == routed
    assert "_FewChannelConv" not in type(fast(x).grad_fn).__name__
    f = lambda x, w, b: torch.func.functional_call(fast, {"weight": w, "bias": b}, (x,))
    args = (x[:2, :, :7, :7].clone().requires_grad_(), fast.weight, fast.bias)
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


def test_the_few_channel_route_in_bf16() -> None:
    """Under bf16 autocast: output and gradients within 2^-6 of the largest of the plain
    layer's (the input gradient rounds once, as oneDNN's does, in another order)."""
    torch.manual_seed(0)
    _assert_bf16_close(nn.Conv2d(1, 16, 4, 2, 1), (8, 1, 28, 28))


def _assert_bf16_close(plain: nn.Module, shape: tuple) -> nn.Module:
    """The fast copy of a channels-last `plain` layer under bf16 autocast: output and every
    gradient within 2^-6 of the largest of the plain layer's, in the same dtypes; returns it."""
    plain = plain.to(memory_format=torch.channels_last)
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
    ya, *ga = _run(plain, x, True)
    yb, *gb = _run(fast, x, True)
    assert float((ya - yb).abs().max()) <= 2 ** -6 * float(ya.abs().max())
    for a, b in zip(ga, gb):
        assert a.dtype == b.dtype and float((a - b).abs().max()) <= 2 ** -6 * float(a.abs().max())
    return fast


@pytest.mark.parametrize("kw", [{"padding_mode": "reflect"}, {"dilation": 2},
                                {"groups": 2}, {"padding": "same"}])
def test_other_few_channel_convolutions_run_as_the_plain_layer(kw: dict) -> None:
    """Padding modes, dilation, groups and string paddings are left to the layer's own
    forward: the same values bit for bit, the same gradients."""
    torch.manual_seed(0)
    plain = nn.Conv2d(2, 4, 3, stride=1 if "padding" in kw else 2,
                      **({"padding": 1} | kw))
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    x = torch.randn(3, 2, 9, 9)
    for a, b in zip(_run(plain, x, False), _run(fast, x, False)):
        assert torch.equal(a, b)


# (Cin, Cout, kernel, stride, input size): report 004's D's last convolution (5x5 -> 1x1), a
# kernel covering only the top-left of its input (6x6 at stride 2), a DCGAN D's head (one
# output channel), a non-square kernel and input
ONE_PIXEL = [(6, 5, 5, 2, (5, 5)), (6, 5, 5, 2, (6, 6)), (8, 1, 7, 1, (7, 7)),
             (4, 3, (3, 4), 1, (3, 4))]


@pytest.mark.parametrize("shape", ONE_PIXEL)
@pytest.mark.parametrize("bias", [True, False])
def test_a_convolution_to_one_pixel_is_one_gemm(shape: tuple, bias: bool) -> None:
    """Without padding and with a 1 x 1 output the convolution is one GEMM: in float64 the
    output and every gradient equal the plain layer's to rounding, gradcheck and
    gradgradcheck pass (R1 runs through D's head), and a padded layer is not this route."""
    *layer, size = shape
    torch.manual_seed(0)
    plain = nn.Conv2d(*layer, bias=bias).double()
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    x = torch.randn(3, layer[0], *size, dtype=torch.float64)
    for a, b in zip(_run(plain, x, False), _run(fast, x, False)):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    assert type(fast(x.clone().requires_grad_()).grad_fn).__name__ == "ViewBackward0"  # GEMM
    f = lambda x, w, b: torch.func.functional_call(fast, {"weight": w, "bias": b}, (x,))
    args = (x.clone().requires_grad_(), fast.weight, fast.bias)
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)
    padded = nn.Conv2d(*layer, padding=1).double()
    kernels.use([padded], "fast")
    assert type(padded(x).grad_fn).__name__ != "ViewBackward0"


def test_a_convolution_to_one_pixel_in_bf16() -> None:
    """Under bf16 autocast (report 004's 32 -> 64 layer, channels-last): a bf16 output like
    the plain layer's, within 2^-6 of it, and gradients as close."""
    torch.manual_seed(0)
    fast = _assert_bf16_close(nn.Conv2d(32, 64, 5, 2), (16, 32, 5, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast(torch.randn(2, 32, 5, 5)).dtype == torch.bfloat16


# (Cin, Cout, kernel, stride, padding, input size): `default`'s D 64 -> 128 layer shrunk
# (k4 s2 p1), a stride that does not divide the input (the swapped convolution's rows past
# the kernel), no padding, a non-square kernel and stride
SWAPPED = [(6, 5, 4, 2, 1, (9, 9)), (5, 7, 3, 2, 0, (10, 10)), (8, 3, 3, 3, 2, (11, 11)),
           (5, 4, (3, 4), (2, 3), (1, 0), (9, 13))]
# the fast tier checks the first shape; gradgradcheck takes 3-5 s a shape
SWAPPED_TIERS = [SWAPPED[0]] + [pytest.param(s, marks=pytest.mark.slow) for s in SWAPPED[1:]]


def _penalised(layer: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """As R1 takes them: the input gradient with create_graph (weights not asked for), then
    the gradients of a loss plus its squared norm for x and every parameter."""
    layer.zero_grad()
    x = x.clone().requires_grad_()
    y = layer(x)
    out = (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum()
    (gx,) = torch.autograd.grad(out, x, create_graph=True)
    (out + gx.square().sum()).backward()
    return [y.detach(), gx.detach(), x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("shape", SWAPPED_TIERS)
@pytest.mark.parametrize("bias", [True, False])
def test_the_swapped_weight_gradient_is_the_convolutions(shape: tuple, bias: bool) -> None:
    """A strided convolution whose weight needs a gradient takes its weight gradient as one
    convolution with batch and channels swapped: in float64 the output and every gradient
    equal the plain layer's to rounding, once and through R1's double backward; gradcheck and
    gradgradcheck pass."""
    *layer, size = shape
    torch.manual_seed(0)
    plain = nn.Conv2d(*layer, bias=bias).double()
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    x = torch.randn(3, layer[0], *size, dtype=torch.float64)
    for a, b in zip(_run(plain, x, False) + _penalised(plain, x),
                    _run(fast, x, False) + _penalised(fast, x)):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    assert type(fast(x).grad_fn).__name__ == "_StridedConvBackward"
    f = lambda x, w, b: torch.func.functional_call(fast, {"weight": w, "bias": b}, (x,))
    args = (x.clone().requires_grad_(), fast.weight, fast.bias)
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


class _WeightGrads(TorchDispatchMode):
    """Counts the weight gradients computed while it is on: convolution_backward calls whose
    output mask asks for one, and convolutions of 4-D gradients (the swapped route's)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default and args[-1][1]:
            self.count += 1
        if func is torch.ops.aten.convolution.default and args[1].shape[0] == 5:  # O filters
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_the_swapped_route_computes_only_the_gradients_wanted() -> None:
    """While R1 takes the gradient of the input alone (create_graph), no weight gradient is
    computed, by the swapped convolution or otherwise; a loss's backward computes it once; a
    frozen weight (D in G's step) or stride 1 or few input channels keep the plain layer."""
    torch.manual_seed(0)
    fast = nn.Conv2d(6, 5, 4, 2, 1)
    kernels.use([fast], "fast")
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    y = fast(x)
    with _WeightGrads() as r1_pass:
        torch.autograd.grad(y.sum(), x, create_graph=True)
    assert r1_pass.count == 0
    y = fast(x)
    with _WeightGrads() as loss_pass:
        y.sum().backward()
    assert loss_pass.count == 1
    fast.requires_grad_(False)
    assert type(fast(x).grad_fn).__name__ == "ConvolutionBackward0"
    for layer, cin in ((nn.Conv2d(6, 5, 3, 1, 1), 6), (nn.Conv2d(4, 5, 4, 2, 1), 4)):
        kernels.use([layer], "fast")
        assert type(layer(torch.randn(2, cin, 8, 8)).grad_fn).__name__ == "ConvolutionBackward0"


@pytest.mark.parametrize("shape", SWAPPED)
def test_the_gemm_weight_gradient_is_the_convolutions(shape: tuple) -> None:
    """bf16 channels-last maps take the weight gradient as one GEMM over x's windows: exact
    in float64 (the same function on any type; the route itself is chosen for bf16), and
    the weight's channels-last layout."""
    cin, cout, k, s, p, size = shape
    k, s, p = ((v, v) if isinstance(v, int) else v for v in (k, s, p))
    cl = torch.channels_last
    torch.manual_seed(0)
    x = torch.randn(3, cin, *size, dtype=torch.float64).contiguous(memory_format=cl)
    out = F.conv2d(x, torch.zeros(cout, cin, *k, dtype=torch.float64), None, s, p)
    g = torch.randn_like(out).contiguous(memory_format=cl)
    want = torch.ops.aten.convolution_backward(g, x, torch.zeros(cout, cin, *k,
                                               dtype=torch.float64), None, s, p, [1, 1],
                                               False, [0, 0], 1, [False, True, False])[1]
    got = kernels._gemm_weight_grad(x, g, k, s, p)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert got.is_contiguous(memory_format=cl)
    xb, gb = x.bfloat16(), g.bfloat16()
    assert torch.equal(kernels._weight_grad(xb, gb, k, s, p),
                       kernels._gemm_weight_grad(xb, gb, k, s, p))
    assert torch.equal(kernels._weight_grad(x, g, k, s, p),  # float64: the swapped route
                       kernels._swapped_weight_grad(x, g, k, s, p))


def test_windows_over_the_bound_take_the_swapped_route(monkeypatch) -> None:
    """A bf16 weight gradient whose windows would exceed WINDOWS_BYTES (large maps or
    batches) is the swapped convolution's, which copies no windows."""
    cl = torch.channels_last
    x = torch.randn(4, 6, 9, 9).bfloat16().contiguous(memory_format=cl)
    g = torch.randn(4, 5, 4, 4).bfloat16().contiguous(memory_format=cl)  # k4 s2 p1: 9 -> 4
    routes: list[str] = []
    monkeypatch.setattr(kernels, "_gemm_weight_grad", lambda *a: routes.append("gemm"))
    monkeypatch.setattr(kernels, "_swapped_weight_grad", lambda *a: routes.append("swapped"))
    windows_bytes = 4 * 4 * 4 * 16 * 6 * 2  # rows N P Q, kh kw C bf16 values each
    for bound in (windows_bytes, windows_bytes - 1):
        monkeypatch.setattr(kernels, "WINDOWS_BYTES", bound)
        kernels._weight_grad(x, g, (4, 4), (2, 2), (1, 1))
    assert routes == ["gemm", "swapped"]


def test_the_swapped_route_in_bf16() -> None:
    """Under bf16 autocast (`default`'s D 64 -> 128 layer, channels-last, batch 16): a bf16
    output like the plain layer's, within 2^-6 of it, and gradients as close."""
    torch.manual_seed(0)
    fast = _assert_bf16_close(nn.Conv2d(64, 128, 4, 2, 1), (16, 64, 14, 14))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast(torch.randn(2, 64, 14, 14)).dtype == torch.bfloat16


class _Spy:
    """Wraps a function of models/kernels.py, counting its calls."""

    def __init__(self, monkeypatch, name: str) -> None:
        self.calls, self._f = 0, getattr(kernels, name)
        monkeypatch.setattr(kernels, name, self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._f(*args, **kwargs)


@pytest.mark.parametrize("shape", SWAPPED)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bf16", [False, True])
def test_a_large_convolution_is_gemms_throughout(monkeypatch, shape: tuple, bias: bool,
                                                 bf16: bool) -> None:
    """A strided convolution of a large weight (LARGE_WEIGHT lowered to take these small
    layers) computes its forward, input and weight gradients as GEMMs over windows: equal to
    the plain layer to the sums' order in fp32 (1e-5 of the largest value) and to bf16
    rounding under autocast (2^-6), for odd sizes, strides that do not divide the input, no
    padding, non-square kernels and strides; R1's double backward too (fp32); without a
    gradient the same output."""
    monkeypatch.setattr(kernels, "LARGE_WEIGHT", 0)
    monkeypatch.setattr(kernels, "LARGE_WEIGHT_FP32", 0)
    forward, input_grad = (_Spy(monkeypatch, n) for n in ("_gemm_conv", "_gemm_conv_input_grad"))
    *layer, size = shape
    torch.manual_seed(0)
    plain = nn.Conv2d(*layer, bias=bias).to(memory_format=torch.channels_last)
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    x = torch.randn(3, layer[0], *size)
    tol = 2 ** -6 if bf16 else 1e-5
    for a, b in zip(_run(plain, x, bf16), _run(fast, x, bf16)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert float((a - b).abs().max()) <= tol * float(a.abs().max())
    assert forward.calls == 1 and input_grad.calls == 1
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        torch.testing.assert_close(fast(x), plain(x), rtol=tol, atol=tol * 10)
    assert forward.calls == 2
    if not bf16:
        for a, b in zip(_penalised(plain, x), _penalised(fast, x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_the_large_routes_take_large_layers_only(monkeypatch) -> None:
    """The bounds: 2^20 weights in bf16, 2^23 in fp32, windows of at most GEMM_WINDOWS_BYTES
    (2 bytes a value in bf16, 4 in fp32). At the real bf16 bound (under autocast, as a bf16
    run computes): a 256 -> 256 k4 s2 convolution takes the GEMMs, a 255 -> 256 one, a
    stride-1 one and one whose windows would exceed GEMM_WINDOWS_BYTES do not; a transposed
    convolution of a 7 x 7 input (past the small-input route) takes its GEMM route when large
    (2000 -> 1000 in report 001's 1000-wide G; here 256 -> 256) and matches the plain
    layer."""
    meta = lambda *shape: torch.empty(*shape, device="meta")
    assert kernels._large(meta(256, 256, 4, 4), 1, True)
    assert not kernels._large(meta(255, 256, 4, 4), 1, True)
    assert not kernels._large(meta(256, 256, 4, 4), 1, False)
    assert kernels._large(meta(1024, 512, 4, 4), 1, False)
    assert not kernels._large(meta(1023, 512, 4, 4), 1, False)
    bound = kernels.GEMM_WINDOWS_BYTES
    assert kernels._large(meta(256, 256, 4, 4), bound // 2, True)
    assert not kernels._large(meta(256, 256, 4, 4), bound // 2 + 1, True)
    assert not kernels._large(meta(1024, 512, 4, 4), bound // 4 + 1, False)
    forward = _Spy(monkeypatch, "_gemm_conv")
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    for cin, stride, taken in ((256, 2, 1), (255, 2, 0), (256, 1, 0)):
        layer = nn.Conv2d(cin, 256, 4, stride, 1)
        kernels.use([layer], "fast")
        before = forward.calls
        with torch.no_grad(), bf16:
            layer(torch.randn(2, cin, 8, 8).contiguous(memory_format=torch.channels_last))
        assert forward.calls - before == taken, (cin, stride)
    torch.manual_seed(0)
    plain = nn.ConvTranspose2d(256, 256, 4, 2, 1).to(memory_format=torch.channels_last)
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    x = torch.randn(2, 256, 7, 7)
    for a, b in zip(_run(plain, x, True), _run(fast, x, True)):
        assert float((a - b).abs().max()) <= 2 ** -6 * float(a.abs().max())
    with bf16:
        assert type(fast(x).grad_fn).__name__ == "_GemmTransposedBackward"
    assert type(fast(x).grad_fn).__name__ == "_TransposedWeightGradBackward"  # fp32: small
    # one byte short of the windows (rows N P Q, kh kw C bf16 values each)
    monkeypatch.setattr(kernels, "GEMM_WINDOWS_BYTES", 2 * 4 * 4 * 16 * 256 * 2 - 1)
    layer = nn.Conv2d(256, 256, 4, 2, 1)
    kernels.use([layer], "fast")
    with bf16:
        with torch.no_grad():
            layer(torch.randn(2, 256, 8, 8))
        assert type(fast(x).grad_fn).__name__ == "_TransposedWeightGradBackward"
    assert forward.calls == 1
