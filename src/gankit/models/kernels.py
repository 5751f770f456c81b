"""Faster ways to compute the same layers: the `kernels: fast` setting of a training run.

The models build plain `nn.ConvTranspose2d`, `nn.Conv2d`, `GlobalMeanPool` and
`PlanesConv2d` layers. `use(modules, "fast")` turns each of them into a `FastConvTranspose2d`,
`FastConv2d`, `FastGlobalMeanPool` or `FastPlanesConv2d` in place (the class only: the same
Parameter objects, the same state_dict keys, so optimisers, the EMA copy and checkpoints do
not notice), whose forward computes the same function by a faster route where one is known;
`use(modules, "plain")` turns them back. Twelve routes, each measured on
this machine's 2-core AMD EPYC (AVX512-BF16) or, where said, its Intel Xeon with AMX, with
torch 2.13's oneDNN (benchmarks/train_speed.py,
`--variants bf16,bf16-plain`):

- A transposed convolution of a 1x1 input (the first layer of every DCGAN G: z as a 1x1 map
  to s0 x s0) is one matrix product, z (B, Cin) @ W (Cin, k*k*Cout). oneDNN runs it as a
  convolution at a small fraction of the GEMM rate (report 004's G, batch 128, profiled in
  the step: 3.8 ms forward as a convolution, 0.24 ms as the GEMM). The product is written
  channels-last, the layout the next BatchNorm and convolution prefer.
- In bf16, a transposed convolution with a bias whose kernel is not a multiple of its stride
  (report 004's 3x3 layer, stride 2, 6 -> 13) falls to a slow oneDNN path: 19.6 ms forward
  (batch 128), against 3.1 ms for the same layer without its bias and 2.5 ms with the bias
  added after it. So the bias is added after it.

- A transposed convolution to one output channel (every DCGAN G's last layer, to a grey
  image) runs at a few GFLOP/s in oneDNN's forward (report 004's 64 -> 1, 13 -> 28, batch 128,
  bf16: 2.5 ms for 44 MFLOP). Its forward is computed as one ordinary convolution with
  stride^2 output channels (one per output phase: which taps of the kernel reach an output
  pixel depends only on its position modulo the stride) and a pixel shuffle: 0.96 ms. Its
  backward stays oneDNN's own (0.6 ms; the phase route's backward was slower).

- D's pooled features (the mean over positions of its last feature map, for the projection
  and the classifier head): `mean`'s backward writes the gradient as a contiguous (NCHW)
  tensor, divided element by element, and autograd then adds it to the channels-last
  gradient from D's head convolution, an add across layouts that took 0.95 ms in bf16 for
  batch 128 at 128 x 7 x 7 (0.08 ms between equal layouts; `default`'s bf16 step, profiled:
  2.3 of 50 ms in the add, the division and the copies). `FastGlobalMeanPool`'s backward
  divides the (B, C) gradient and hands back a broadcast view of it: the same values.
- A conditional D's first layer convolves the image joined with its label vector as constant
  planes (`PlanesConv2d`: 1 + 10 channels for MNIST): `cat` writes the joined input, the
  convolution reads 11 planes per image, and its backward writes their gradient. The planes'
  part depends on the label vector alone, linearly: the fast layer convolves the image alone
  and adds v @ M, M holding the planes' convolution of each unit vector (E maps of
  O x H' x W', a batch-E convolution of the weight per call). Same values to rounding;
  differentiable twice (R1). `default`'s bf16 step, in one process, the layer's class
  alternated every 40 steps for 10 rounds: 0.913x the step with the plain layer.
- The input gradient of a convolution of few channels (a D's first layer, on the image) is a
  transposed convolution to those few channels, which oneDNN computes slowly, as it does G's
  last layer's forward: 4.0 ms in bf16 for `default`'s 1 -> 64 layer at batch 128 (k4 s2,
  28 -> 14). `FastConv2d` (and the image part of `FastPlanesConv2d`) computes it by the phase
  route: 0.98 ms. Only when the input needs a gradient (the G step, R1): with none, oneDNN's
  own backward is faster. `default`'s bf16 step 0.959x, in one process with the route
  switched every 40 steps (12 rounds); report 004's DCGAN 0.997x (its 1 -> 16 layer is small).
- A transposed convolution of a small input (at most 36 pixels) to more than a few channels
  is GEMMs throughout on the CPU in fp32 and bf16 (`_GemmTransposed`): the forward the
  input's pixels times the weight, whose rows (each the window of outputs a pixel reaches)
  native/col2im.py adds up with the bias; the backward the output gradient's windows times
  the weight's transpose and the input's pixels' transpose. oneDNN's bf16 layer ran far
  below its GEMM rate (report 004's 256 -> 128 layer forward 2.3 against 1.0 ms). Report
  004's bf16 step 0.887x (the Intel Xeon with AMX, 2026-12-06, in one process with the
  route switched every 20 steps, 10 rounds), report 001's DCGAN 0.989x. Where the C kernel
  is missing:
- The weight gradient of a transposed convolution of a small input (at most 6 x 6 pixels)
  to more than a few channels is one GEMM: the input's pixels against, for each of them, the
  window of the output gradient its kernel reached (a strided view, copied once). oneDNN's
  weight-gradient primitive took 7.4 ms for report 004's 256 -> 128 layer (3 -> 6, batch
  128, bf16), the GEMM route 3.8. Report 004's bf16 step 0.902x, in one process with the
  route switched every 30 steps (8 rounds); `default`'s 7 x 7 layer gained nothing (1.001x)
  and takes the swapped convolution below instead.
- The weight gradient of a strided convolution (every DCGAN D's downsampling layers, and,
  transposed, G's upsampling layers of a larger input) runs in oneDNN's weight-gradient
  primitive at about 60% of its forward's rate in bf16 (`default`'s D 64 -> 128 layer, k4
  s2, batch 128: 6.4 against 3.7 ms, and slower still in this host's slow hours). It is one
  ordinary convolution with the batch and channel axes swapped: the input's C channels as
  images of N channels, convolved with the output gradient's O channels as filters whose
  taps are dilated by the stride. With the two transposed copies it needs: 0.52x the
  primitive's time alone (batch 64 and 128). In the step, in one process with the route
  switched every 40 steps: `default` 0.915x (D's layer; its R1 steps differentiate the
  layer's input gradient again through `_ConvInputGrad`, whose weight gradient is the same
  swapped convolution) and 0.955-0.980x more for G's 7x7 -> 14x14 layer, report 001's DCGAN
  0.881x and 0.980x, report 004's 0.967x (D's 16 -> 32 layer; 1.008x in another run).
  Stride-1 layers keep oneDNN's (report 002's ResNet D: 1.10x slower with it, the swapped
  convolution's kernel being the whole feature map), as do inputs of few channels (the
  image: 0.89 against 0.42 ms). The copies are native/swap_axes.py's AVX-512 gathers:
  torch's strided copy took 4.3 ms for D's batch-128 input in bf16, the kernel 0.23
  (`default`'s step 0.901x in bf16 and in fp32, report 001's bf16 0.867x, switched every 20
  steps in one process, 10 rounds).
  In bf16 over channels-last maps the same weight gradient is one GEMM instead: the output
  gradient's pixels against the windows of x they saw (copied window by window by
  native/im2col.py, 4x the map's size for k4 s2), g^T @ windows, in the weight's
  channels-last layout. oneDNN's AMX kernel ran the swapped convolution (4 x 4 outputs per
  image) at half its forward's rate: 4.8 against 2.3 ms for `default`'s D layer at batch 64,
  10.9 against 4.4 at 128. The step 0.876x (`default`), 0.903x (report 001), 1.015x (report
  004, maps of 13 x 13 and 5 x 5: equal times alone), switched every 20 steps in one process
  with torch copying the windows; the C copy then made `default`'s step 0.920x and report
  001's 0.981x (0.64 against 1.38 ms for the windows of D's batch-128 input alone). In fp32
  the swapped convolution stays (the GEMM took 1.0-1.6x its time).
- A convolution without padding whose output is one pixel (report 004's D's 32 -> 64 layer,
  5 x 5 -> 1 x 1; a DCGAN D's head) is one GEMM of the pixels against the kernel: 0.44 ms
  forward and backward in bf16 at batch 128, against 0.99 ms as oneDNN's convolution. Report
  004's bf16 step 0.951x, `default`'s 0.992x (its head), in one process, alternated.

- A large strided layer (a weight of at least 2^20 values in bf16, 2^23 in fp32: report
  001's 1000-wide D's 1000 -> 2000 convolution and 1000-wide G's 2000 -> 1000 transposed
  one) is GEMMs throughout: a convolution's forward x's windows @ w^T, its input
  gradient the output gradient's pixels @ w scattered back by native/col2im.py, its weight
  gradient g^T @ windows (with g^T copied contiguous: 398 against 849 ms); a transposed
  convolution `_GemmTransposed` as for a small input. oneDNN's convolutions of such
  weights, which no longer fit the caches it blocks for, ran at a third of its GEMM rate or
  less (the constants LARGE_WEIGHT, LARGE_WEIGHT_FP32 and GEMM_WINDOWS_BYTES below;
  benchmarks/wide_layers.py). A training step of report 001's 1000-wide D (batch 128, one
  thread, bf16) 0.29x (4.49 against 15.66 s), of its 1000-wide G 0.28x (1.64 against 5.76);
  no preset's own layers are that large.

- BatchNorm in training mode over a bf16 channels-last map, with the ReLU or LeakyReLU after
  it, as one C kernel forward and one backward (models/fast_batchnorm.py,
  native/batchnorm.py): torch's bf16 channels-last BatchNorm and its activations were four
  slow passes (report 004's six maps alone, 2 threads: 17-415 against 76-1272 us forward and
  backward). Report 004's bf16 step 0.952x and 0.955x, `default`'s 0.994x, in one process,
  alternated.

Everything else runs the plain forward. Results equal the plain layer's up to float rounding
(tests/models/test_kernels.py).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import ConfigError
from gankit.models import fast_batchnorm
from gankit.models.conditioning import PlanesConv2d
from gankit.models.pooling import GlobalMeanPool
from gankit.native import col2im as native_col2im
from gankit.native.im2col import windows
from gankit.native.swap_axes import swap_batch_channels

KERNELS = ("fast", "plain")


class FastConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d, computed by the faster routes of the module doc where they apply."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or not _routable(self, x):
            return super().forward(x, output_size)
        if x.shape[-2:] == (1, 1) and self.padding == (0, 0) and self.output_padding == (0, 0):
            return _one_pixel(x, self.weight, self.bias)
        (k, k2), (st, s2), (p, p2), (op, op2) = (self.kernel_size, self.stride, self.padding,
                                                 self.output_padding)
        if self.out_channels == 1 and st == s2 and k == k2 and p == p2 and op == op2 \
                and _phases_fit(k, st, p, op):
            return _PhaseForward.apply(x, self.weight, self.bias, st, p, op)
        small = x.shape[-2] * x.shape[-1] <= SMALL_INPUT
        large = _large(self.weight, x.shape[0] * x.shape[-2] * x.shape[-1] * k * k2
                       * self.out_channels, _is_bf16(x))
        if self.out_channels > FEW_CHANNELS and (small or large) \
                and x.device.type == "cpu" and (_is_bf16(x) or x.dtype == torch.float32):
            if native_col2im.kernel() is not None:
                return _GemmTransposed.apply(x, self.weight, self.bias, self.stride,
                                             self.padding, self.output_padding, large)
            native_col2im.report_unavailable()
        if self.out_channels > FEW_CHANNELS and (small or min(st, s2) > 1) \
                and self.weight.requires_grad and torch.is_grad_enabled():
            return _TransposedWeightGrad.apply(x, self.weight, self.bias, self.stride,
                                               self.padding, self.output_padding, small)
        if self.bias is not None and _is_bf16(x) \
                and any(k % s for k, s in zip(self.kernel_size, self.stride)):
            return _plus_bias(F.conv_transpose2d(x, self.weight, None, self.stride,
                                                 self.padding, self.output_padding), self.bias)
        return super().forward(x)


def _routable(layer: nn.Module, x: torch.Tensor) -> bool:
    """Whether `layer` has the geometry every route here assumes: zero padding given as
    numbers, no groups, no dilation, and a 4-D input x. Anything else runs the plain forward."""
    return layer.groups == 1 and layer.dilation == (1, 1) and layer.padding_mode == "zeros" \
        and not isinstance(layer.padding, str) and x.ndim == 4


def _plus_bias(out: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """out (B, C, H, W) plus a per-channel bias b in out's dtype (out itself without one)."""
    return out if b is None else out + b.to(out.dtype).view(1, -1, 1, 1)


def _is_bf16(x: torch.Tensor) -> bool:
    """Whether the convolution would run in bf16: a bf16 input, or bf16 autocast."""
    if x.dtype == torch.bfloat16:
        return True
    dev = x.device.type
    return torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev) == torch.bfloat16


def _one_pixel(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """conv_transpose2d of a (B, Cin, 1, 1) input with stride 1 and no padding: a GEMM."""
    cin, cout, kh, kw = w.shape
    out = x.reshape(x.shape[0], cin) @ w.permute(0, 2, 3, 1).reshape(cin, kh * kw * cout)
    out = out.view(x.shape[0], kh, kw, cout).permute(0, 3, 1, 2)  # channels-last (B, C, H, W)
    return _plus_bias(out, b)


def _phases_fit(k: int, s: int, p: int, op: int) -> bool:
    """Whether the phase route computes conv_transpose2d with kernel k, stride s > 1, padding
    p and output padding op: the output must lie inside the phases' full output."""
    return s > 1 and k + op - p <= -(-k // s) * s


def _phase_transposed(x: torch.Tensor, w: torch.Tensor, s: int, p: int, op: int
                      ) -> torch.Tensor:
    """conv_transpose2d(x, w, None, s, p, op) for a square kernel (w: Cin, Cout, k, k) as one
    convolution with Cout s^2 channels, one per output phase, and a pixel shuffle (module
    doc). Differentiable operations only, in x's dtype."""
    cin, cout, k, _ = w.shape
    kk = -(-k // s)  # taps per phase
    # weight of phase (r, q), tap (t, u): w[:, :, r + s (kk-1-t), q + s (kk-1-u)]
    wp = F.pad(w, (0, kk * s - k, 0, kk * s - k)).view(cin, cout, kk, s, kk, s)
    v = wp.flip(2, 4).permute(1, 3, 5, 0, 2, 4).reshape(cout * s * s, cin, kk, kk)
    full = F.pixel_shuffle(F.conv2d(x, v, None, 1, kk - 1), s)
    h, w_ = ((n - 1) * s - 2 * p + k + op for n in x.shape[-2:])
    return full[:, :, p:p + h, p:p + w_]


class _PhaseForward(torch.autograd.Function):
    """conv_transpose2d(x, w, b, stride s, padding p, output_padding op), square kernel and
    stride: forward as a convolution per output phase plus a pixel shuffle (module doc),
    backward by oneDNN's transposed-convolution backward. Under autocast it computes in the
    autocast dtype, as the plain layer does; gradients come back in the inputs' dtypes."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, s: int,
                p: int, op: int) -> torch.Tensor:
        dtype = torch.bfloat16 if _is_bf16(x) else x.dtype
        with torch.autocast(x.device.type, enabled=False):
            xc, wc = x.to(dtype), w.to(dtype)
            out = _plus_bias(_phase_transposed(xc, wc, s, p, op), b)
            out = out.contiguous(memory_format=torch.channels_last)
        ctx.save_for_backward(xc, wc)
        ctx.conf = (s, p, op, None if b is None else b.dtype, x.dtype, w.dtype)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        xc, wc = ctx.saved_tensors
        s, p, op, b_dtype, x_dtype, w_dtype = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx, gw, gb = torch.ops.aten.convolution_backward(
            g.to(xc.dtype), xc, wc, None if b_dtype is None else [wc.shape[1]], [s, s],
            [p, p], [1, 1], True, [op, op], 1, [need_x, need_w, need_b])
        return (gx.to(x_dtype) if need_x else None, gw.to(w_dtype) if need_w else None,
                gb.to(b_dtype) if need_b else None, None, None, None)


def _windows(g: torch.Tensor, h: int, w: int, stride: tuple[int, int],
             padding: tuple[int, int], kernel: tuple[int, int]) -> torch.Tensor:
    """For each pixel of an h x w input of conv_transpose2d(stride, padding, kernel), the
    kh x kw window of the output gradient g its kernel reached: (N H W, kh kw Cout), from a
    strided view of g padded by the padding, copied once."""
    if g.device.type == "cpu" and g.is_contiguous(memory_format=torch.channels_last):
        return windows(g, kernel, stride, padding, (h, w))  # the same rows, copied in C
    n = g.shape[0]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    # g padded so that row s i + a holds output row s i + a - p for every input row i and tap
    # a (zeros where that row was cut by the padding; rows past every tap's reach dropped)
    gl = g.permute(0, 2, 3, 1)
    gp = F.pad(gl, (0, 0, pw, sw * (w - 1) + kw - pw - g.shape[3],
                    ph, sh * (h - 1) + kh - ph - g.shape[2])).contiguous()
    st = gp.stride()
    cols = gp.as_strided((n, h, w, kh, kw, gp.shape[3]),
                         (st[0], sh * st[1], sw * st[2], st[1], st[2], st[3]))
    return cols.reshape(n * h * w, kh * kw * gp.shape[3])


def _transposed_weight_grad(g: torch.Tensor, x: torch.Tensor, stride: tuple[int, int],
                            padding: tuple[int, int], kernel: tuple[int, int]) -> torch.Tensor:
    """The weight gradient (Cin, Cout, kh, kw) of conv_transpose2d(x, w, stride, padding) for
    the output gradient g, as one GEMM: x's pixels (N H W, Cin)^T times their windows of g
    (`_windows`). Channels-last tensors go in and come out without a copy."""
    n, cin, h, w = x.shape
    xm = x.permute(0, 2, 3, 1).reshape(n * h * w, cin)
    out = xm.t() @ _windows(g, h, w, stride, padding, kernel)
    return out.view(cin, *kernel, g.shape[1]).permute(0, 3, 1, 2)


def _scatter_product(xm: torch.Tensor, wm: torch.Tensor, pixels: tuple[int, int, int],
                     kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int], size: tuple[int, int],
                     bias: torch.Tensor | None = None) -> torch.Tensor:
    """A transposed convolution's output (N, C, *size), channels-last, from its input's pixels
    xm (N H W, Cin; `pixels` = (N, H, W)) and its weight wm (Cin, kh kw C): each row of
    xm @ wm is the window of outputs one pixel's kernel reaches, added up by native/col2im.py
    from the bias (fp32, or None), in fp32, rounded once."""
    cols = (xm @ wm).view(*pixels, *kernel, -1)
    return native_col2im.col2im(cols, bias, stride, padding, size)


def _conv_out(size: Iterable[int], kernel: Iterable[int], stride: Iterable[int],
              padding: Iterable[int]) -> tuple[int, ...]:
    """The output size of a convolution of an input of `size` pixels (each axis)."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding))


class _GemmTransposed(torch.autograd.Function):
    """conv_transpose2d(x, w, b, stride, padding, output_padding) of a small input or a large
    layer (`large`: `_large`, report 001's 1000-wide G's 2000 -> 1000 layer) as GEMMs:
    forward x's pixels (N H W, Cin) @ w (Cin, kh kw Cout), each row the window of outputs that
    pixel's kernel reaches, added up with the bias by native/col2im.py (in fp32, rounded once);
    backward from the output gradient's windows (`_windows`, made once): the input gradient
    windows @ w^T, the weight gradient x^T @ windows. oneDNN's bf16 layer runs far below its
    GEMM rate at these sizes (report 004's 256 -> 128 layer, 3x3 -> 6x6, batch 128, on the
    Intel Xeon with AMX: forward 2.3 against 1.0 ms, 128 -> 64 (6x6 -> 13x13) 2.1 against
    0.9; fp32 6.9 against 4.3 and 6.9 against 3.0), and for large layers (report 001's 2000 ->
    1000, 7x7 -> 14x14, batch 128, one thread, bf16: a step of its G 5.8 against 2.1 s with
    the 1000-wide D's routes). Under autocast it computes in the
    autocast dtype, as the plain layer does. Differentiable once (G's layers: no penalty
    differentiates through them)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                s: tuple[int, int], p: tuple[int, int], op: tuple[int, int],
                large: bool) -> torch.Tensor:
        dtype = torch.bfloat16 if _is_bf16(x) else x.dtype
        n, cin, h, w_ = x.shape
        _, cout, kh, kw = w.shape
        size = tuple((i - 1) * st - 2 * pad + k + o
                     for i, st, pad, k, o in zip((h, w_), s, p, (kh, kw), op))
        bias = None if b is None else b.detach().float().contiguous()
        with torch.autocast(x.device.type, enabled=False):
            xm = x.to(dtype).permute(0, 2, 3, 1).reshape(n * h * w_, cin)
            wm = w.to(dtype).permute(0, 2, 3, 1).reshape(cin, kh * kw * cout)
            out = _scatter_product(xm, wm, (n, h, w_), (kh, kw), s, p, size, bias)
        ctx.save_for_backward(xm, wm)
        ctx.conf = (s, p, (h, w_), (kh, kw), None if b is None else b.dtype, x.dtype, w.dtype,
                    large)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):
        xm, wm = ctx.saved_tensors
        s, p, (h, w), kernel, b_dtype, x_dtype, w_dtype, large = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        n, cout = g.shape[:2]
        cols = _windows(g.to(xm.dtype), h, w, s, p, kernel)
        gx = gw = gb = None
        if need_x:
            gx = (cols @ wm.t()).view(n, h, w, -1).permute(0, 3, 1, 2).to(x_dtype)
        if need_w:
            # x^T copied contiguous first for a large layer (`_gemm_weight_grad`'s copy_gt)
            xt = xm.t().contiguous() if large else xm.t()
            gw = (xt @ cols).view(-1, *kernel, cout).permute(0, 3, 1, 2).to(w_dtype)
        if need_b:
            gb = g.sum((0, 2, 3)).to(b_dtype)
        return gx, gw, gb, None, None, None, None


class _TransposedWeightGrad(torch.autograd.Function):
    """conv_transpose2d(x, w, b, stride, padding, output_padding) whose weight gradient is
    computed here where oneDNN's weight-gradient primitive runs slowly: for a small input
    (`small`) one GEMM (`_transposed_weight_grad`), else a strided convolution's weight
    gradient (`_weight_grad` with the output gradient as the input: the transposed layer's
    weight gradient is that of the convolution it transposes).
    Measured alone in bf16: report 004's 256 -> 128 layer (3 -> 6, batch 128) 7.4 ms by
    oneDNN, 3.2-3.8 by the GEMM, 3.4 swapped; its 128 -> 64 one (6 -> 13) 3.5, 2.2-2.3 and
    3.2; `default`'s 128 -> 64 (7 -> 14, batch 64) 3.2, 2.6 and 2.4. For one output channel
    the GEMM is slower (0.6 against 0.3 ms), so that layer keeps the phase route. Forward
    and input gradient are oneDNN's; the bias is added after the convolution (the bf16 slow
    path of the module doc). Under autocast it computes in the autocast dtype, as the plain
    layer does. Differentiable once (G's layers: no penalty differentiates through them)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                s: tuple[int, int], p: tuple[int, int], op: tuple[int, int],
                small: bool) -> torch.Tensor:
        dtype = torch.bfloat16 if _is_bf16(x) else x.dtype
        with torch.autocast(x.device.type, enabled=False):
            xc, wc = x.to(dtype), w.to(dtype)
            out = _plus_bias(F.conv_transpose2d(xc, wc, None, s, p, op), b)
        ctx.save_for_backward(xc, wc)
        ctx.conf = (s, p, op, None if b is None else b.dtype, x.dtype, w.dtype, small)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):
        xc, wc = ctx.saved_tensors
        s, p, op, b_dtype, x_dtype, w_dtype, small = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = g.to(xc.dtype)
        gx = gw = gb = None
        if need_x:
            gx = torch.ops.aten.convolution_backward(
                g, xc, wc, None, s, p, [1, 1], True, op, 1, [True, False, False])[0]
            gx = gx.to(x_dtype)
        if need_w:
            kernel = tuple(wc.shape[2:])
            gw = (_transposed_weight_grad(g, xc, s, p, kernel) if small
                  else _weight_grad(g, xc, kernel, s, p)).to(w_dtype)
        if need_b:
            gb = g.sum((0, 2, 3)).to(b_dtype)  # in g's dtype, as oneDNN's (an fp32 sum copied g)
        return gx, gw, gb, None, None, None, None


# A transposed convolution of an input of at most this many pixels takes the GEMM for its
# weight gradient (`_TransposedWeightGrad`): 0.90x report 004's bf16 step (3x3 and 6x6
# inputs); for `default`'s 7x7 -> 14x14 layer the GEMM gained nothing in its step (1.00x).
SMALL_INPUT = 36

# A layer whose weight has at least this many values takes the GEMM routes (`_large`) in
# bf16, and in fp32 LARGE_WEIGHT_FP32: oneDNN's convolutions of such layers run far below its
# GEMM rate here (benchmarks/wide_layers.py, k4 s2 14 -> 7, batch 128, one thread, the Intel
# Xeon with AMX; forward, input and weight gradient as GEMMs against oneDNN's: report 001's
# 1000-wide D's 1000 -> 2000 0.44x, 0.19x, 0.05x in bf16 and 0.47x, 0.37x, 0.59x in fp32;
# 256 -> 512 (2^21 values) 0.96x, 0.88x, 0.49x in bf16 but 1.23x, 1.21x, 1.05x in fp32;
# 512 -> 1024 (2^23) 1.00x, 0.78x, 0.76x in fp32; at 128 -> 256 (2^19) and `default`'s
# 64 -> 128 oneDNN's forward and input gradient were the faster in both).
LARGE_WEIGHT = 1 << 20
LARGE_WEIGHT_FP32 = 1 << 23
# ... when the windows it copies (rows x kh kw C values) take at most this many bytes (they
# are made and freed within a call: 200 MB for the 1000-wide D's layer at batch 128 in bf16;
# past the bound, as for a large batch or image, the layer keeps its other routes)
GEMM_WINDOWS_BYTES = 1 << 30


def _large(w: torch.Tensor, cols: int, bf16: bool) -> bool:
    """Whether a convolution with weight w whose windows hold `cols` values takes the GEMM
    routes in bf16 (or fp32): a large weight, windows within GEMM_WINDOWS_BYTES, and the C
    scatter (col2im) here."""
    return w.numel() >= (LARGE_WEIGHT if bf16 else LARGE_WEIGHT_FP32) \
        and cols * (2 if bf16 else 4) <= GEMM_WINDOWS_BYTES and native_col2im.kernel() is not None


# An input with at most this many channels (an image: grey, RGB, RGBA) takes the few-channel
# route; measured with 1 and 3 (and 8, where it still won).
FEW_CHANNELS = 4


class FastConv2d(nn.Conv2d):
    """nn.Conv2d, computed by the few-channel, the one-pixel or the swapped-weight-gradient
    route of the module doc where one applies."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _conv2d(self, x, self.weight, self.bias)


def _conv2d(layer: nn.Conv2d, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None
            ) -> torch.Tensor:
    """`layer`'s convolution of x with weight w and bias b: by the few-channel route when x has
    few channels, needs a gradient and the geometry allows it; by the one-pixel GEMM when the
    output is 1 x 1 without padding; as GEMMs throughout when the layer is strided and large
    (`_large`); with the swapped weight gradient when the layer is strided and its weight
    needs a gradient; else the layer's own."""
    if not _routable(layer, x):
        return layer._conv_forward(x, w, b)
    (k, k2), (s, s2), pad = layer.kernel_size, layer.stride, layer.padding
    # (without an input gradient oneDNN's own backward is faster)
    if w.shape[1] <= FEW_CHANNELS and x.requires_grad and torch.is_grad_enabled() \
            and k == k2 and s == s2 and pad[0] == pad[1]:
        p = pad[0]
        # the output padding that makes the transposed convolution give back x's size
        ops = {(n + 2 * p - k) % s for n in x.shape[-2:]}
        if len(ops) == 1 and _phases_fit(k, s, p, op := ops.pop()):
            return _FewChannelConv.apply(x, w, b, s, p, op)
    if pad == (0, 0) and all(kk <= n < kk + ss
                             for n, kk, ss in zip(x.shape[-2:], (k, k2), (s, s2))):
        return _one_pixel_conv(x, w, b)
    # (the weight's size first: every convolution of a run passes here)
    gemm = (w.numel() >= LARGE_WEIGHT and min(s, s2) > 1 and x.device.type == "cpu"
            and ((bf16 := _is_bf16(x)) or x.dtype == torch.float32)
            and _large(w, math.prod(_conv_out(x.shape[-2:], (k, k2), (s, s2), pad))
                       * x.shape[0] * k * k2 * w.shape[1], bf16))
    # (stride 1 is left to oneDNN: there the swapped convolution's kernel is the whole map)
    if gemm or (w.shape[1] > FEW_CHANNELS and min(s, s2) > 1 and w.requires_grad
                and torch.is_grad_enabled()):
        # views of the parameters: torch cannot tell whether a leaf's gradient is wanted
        # while autograd.grad runs (R1), a view's it can (`_needed`)
        return _StridedConv.apply(x, w.view_as(w), None if b is None else b.view_as(b),
                                  layer.stride, pad, gemm)
    return layer._conv_forward(x, w, b)


def _one_pixel_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """conv2d without padding whose output is 1 x 1 (the kernel covers x's top-left kh x kw
    pixels): one GEMM of the pixels against the kernel, both in channels-last order (a view of
    a channels-last x). Differentiable operations only (R1 differentiates it twice)."""
    o, c, kh, kw = w.shape
    xs = x[:, :, :kh, :kw].permute(0, 2, 3, 1).reshape(x.shape[0], kh * kw * c)
    wt = w.permute(0, 2, 3, 1).reshape(o, kh * kw * c).t()
    out = xs @ wt if b is None else torch.addmm(b, xs, wt)
    return out.view(x.shape[0], o, 1, 1)


# The GEMM weight gradient copies x's windows (4x x for k4 s2: 12.8 MB for `default`'s D
# layer at batch 128); larger copies (big images or batches) take the swapped convolution,
# which needs none.
WINDOWS_BYTES = 1 << 27


def _weight_grad(x: torch.Tensor, g: torch.Tensor, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
    """The weight gradient (O, C, kh, kw) of conv2d(x, w, stride, padding) for the output
    gradient g (N, O, P, Q): one GEMM over x's windows for bf16 channels-last maps (windows
    of at most WINDOWS_BYTES), else the swapped convolution (module doc)."""
    cl = torch.channels_last
    n, c = x.shape[:2]
    size = n * g.shape[2] * g.shape[3] * kernel[0] * kernel[1] * c * x.element_size()
    if (x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=cl)
            and g.is_contiguous(memory_format=cl) and size <= WINDOWS_BYTES):
        return _gemm_weight_grad(x, g, kernel, stride, padding)
    return _swapped_weight_grad(x, g, kernel, stride, padding)


def _gemm_weight_grad(x: torch.Tensor, g: torch.Tensor, kernel: tuple[int, int],
                      stride: tuple[int, int], padding: tuple[int, int],
                      copy_gt: bool = False) -> torch.Tensor:
    """`_weight_grad` as one GEMM: g's pixels (N P Q, O) against x's windows (N P Q, kh kw C;
    native/im2col.py), g^T @ windows = (O, kh kw C), the weight's channels-last layout
    (returned as that view). `copy_gt`: g^T copied contiguous first (the large layers' route:
    report 001's 1000-wide D, one thread, bf16: 398 against 849 ms; for `default`'s layer it
    gained 2% of a step and changes the rounding, so that route keeps the view)."""
    n, c = x.shape[:2]
    o, p, q = g.shape[1:]
    cols = windows(x, kernel, stride, padding, (p, q))
    gt = g.permute(0, 2, 3, 1).reshape(n * p * q, o).t()
    out = (gt.contiguous() if copy_gt else gt) @ cols
    return out.view(o, *kernel, c).permute(0, 3, 1, 2)


def _swapped_weight_grad(x: torch.Tensor, g: torch.Tensor, kernel: tuple[int, int],
                         stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
    """The weight gradient (O, C, kh, kw) of conv2d(x, w, stride, padding) for the output
    gradient g (N, O, P, Q), as one convolution with the batch and channel axes swapped:
    x^T (C images of N channels) convolved with g^T (O filters of N channels whose P x Q taps
    are dilated by the stride), both copied channels-last (native/swap_axes.py); its output
    is cut to the kernel's size (rows past it, when the stride does not divide the input, are
    taps no output reached)."""
    out = F.conv2d(swap_batch_channels(x), swap_batch_channels(g), None, 1, padding, stride)
    return out[:, :, :kernel[0], :kernel[1]].transpose(0, 1)


def _gemm_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
               stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
    """conv2d(x, w, b, stride, padding) of a channels-last x as one GEMM: x's windows
    (N P Q, kh kw C; native/im2col.py) @ w^T (kh kw C, O), plus the bias; the output
    channels-last."""
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    p, q = _conv_out(x.shape[2:], (kh, kw), stride, padding)
    wt = w.permute(0, 2, 3, 1).reshape(o, kh * kw * c).t()
    cols = windows(x, (kh, kw), stride, padding, (p, q))
    out = cols @ wt if b is None else torch.addmm(b, cols, wt)
    return out.view(n, p, q, o).permute(0, 3, 1, 2)


def _gemm_conv_input_grad(g: torch.Tensor, w: torch.Tensor, stride: tuple[int, int],
                          padding: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """The input gradient (N, C, *size), channels-last, of conv2d(x, w, stride, padding) for
    the output gradient g (N, O, P, Q): g's pixels (N P Q, O) @ w (O, kh kw C), each row the
    gradient of the window that output pixel read, added up into the map: the transposed
    convolution of g (`_scatter_product`)."""
    n, o, p, q = g.shape
    return _scatter_product(g.permute(0, 2, 3, 1).reshape(n * p * q, o),
                            w.permute(0, 2, 3, 1).reshape(o, -1), (n, p, q),
                            tuple(w.shape[2:]), stride, padding, size)


def _conv_input_grad(g: torch.Tensor, x: torch.Tensor, w: torch.Tensor, s: tuple[int, int],
                     p: tuple[int, int]) -> torch.Tensor:
    """The input gradient of conv2d(x, w, stride s, padding p) for the output gradient g, by
    oneDNN (x gives its shape and layout only)."""
    return torch.ops.aten.convolution_backward(g, x, w, None, s, p, [1, 1], False, [0, 0], 1,
                                               [True, False, False])[0]


def _needed(ctx, i: int) -> bool:
    """Whether the backward pass running now wants the gradient of input i of ctx's function:
    it requires one, and the engine will run the node it goes to (not so for D's weights
    while R1 takes the gradient of the images alone)."""
    if not ctx.needs_input_grad[i]:
        return False
    node = ctx.next_functions[i][0]
    try:
        return node is not None and torch._C._will_engine_execute_node(node)
    except RuntimeError:  # a leaf while autograd.grad runs: torch cannot tell, so compute it
        return True


class _StridedConv(torch.autograd.Function):
    """A strided conv2d(x, w, b, stride, padding) whose weight gradient is `_weight_grad` (one
    GEMM over x's windows in bf16, else one convolution with batch and channels swapped),
    where oneDNN's weight-gradient primitive runs well below its forward's rate (module doc).
    The input gradient is oneDNN's. With `gemm` (a large layer, `_large`) the forward, input
    and weight gradients are GEMMs over windows (`_gemm_conv`, `_gemm_conv_input_grad`,
    `_gemm_weight_grad`), in fp32 as in bf16. Either way, when a penalty differentiates the
    input gradient again (create_graph: R1, WGAN-GP) it is `_ConvInputGrad`, whose weight
    gradient is `_weight_grad` too, and a weight gradient wanted in such a pass is oneDNN's
    differentiable one. Under autocast it computes in the autocast dtype, as the plain layer
    does."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                s: tuple[int, int], p: tuple[int, int], gemm: bool) -> torch.Tensor:
        dtype = torch.bfloat16 if _is_bf16(x) else x.dtype
        with torch.autocast(x.device.type, enabled=False):
            xc, bc = x.to(dtype), None if b is None else b.to(dtype)
            if gemm:
                xc = xc.contiguous(memory_format=torch.channels_last)
                out = _gemm_conv(xc, w.to(dtype), bc, s, p)
            else:
                out = F.conv2d(xc, w.to(dtype), bc, s, p)
        ctx.save_for_backward(xc, w)
        ctx.conf = (s, p, None if b is None else b.dtype, x.dtype, gemm)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        xc, w = ctx.saved_tensors
        s, p, b_dtype, x_dtype, gemm = ctx.conf
        need_x, need_w, need_b = (_needed(ctx, i) for i in range(3))
        gx = gw = gb = None
        with torch.autocast(xc.device.type, enabled=False):
            g, wc = g.to(xc.dtype), w.to(xc.dtype)
            if torch.is_grad_enabled():  # create_graph: a penalty differentiates this again
                if need_x:
                    gx = _ConvInputGrad.apply(g, wc, xc.detach(), s, p)
                if need_w or need_b:
                    _, gw, gb = torch.ops.aten.convolution_backward(
                        g, xc, wc, None if b_dtype is None else [wc.shape[0]], s, p, [1, 1],
                        False, [0, 0], 1, [False, need_w, need_b])
            else:
                kernel, size = tuple(wc.shape[2:]), tuple(xc.shape[2:])
                if need_x:
                    gx = (_gemm_conv_input_grad(g, wc, s, p, size) if gemm
                          else _conv_input_grad(g, xc, wc, s, p))
                if need_w:
                    gw = (_gemm_weight_grad(xc, g, kernel, s, p, copy_gt=True) if gemm
                          else _weight_grad(xc, g, kernel, s, p))
                if need_b:
                    gb = g.sum((0, 2, 3))
        return (gx.to(x_dtype) if need_x else None, gw.to(w.dtype) if need_w else None,
                gb.to(b_dtype) if need_b else None, None, None, None)


class _ConvInputGrad(torch.autograd.Function):
    """The input gradient of conv2d(x, w, stride s, padding p) for the output gradient g, as a
    function of g and w (x gives its shape only): differentiated, conv2d of the incoming
    gradient with w for g, and the swapped weight gradient of that gradient and g for w."""

    @staticmethod
    def forward(ctx, g: torch.Tensor, w: torch.Tensor, x: torch.Tensor,
                s: tuple[int, int], p: tuple[int, int]) -> torch.Tensor:
        ctx.save_for_backward(g, w)
        ctx.conf = (s, p)
        return _conv_input_grad(g, x, w, s, p)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gg: torch.Tensor):
        g, w = ctx.saved_tensors
        s, p = ctx.conf
        gg = gg.to(g.dtype)
        dg = F.conv2d(gg, w, None, s, p) if ctx.needs_input_grad[0] else None
        dw = (_weight_grad(gg, g, tuple(w.shape[2:]), s, p)
              if ctx.needs_input_grad[1] else None)
        return dg, dw, None, None, None


class _FewChannelConv(torch.autograd.Function):
    """conv2d(x, w, b, stride s, padding p) of an input with few channels (a D's first layer):
    forward and weight gradient by oneDNN; the input gradient, a transposed convolution to
    those few channels that oneDNN computes at about 13 GFLOP/s (module doc), by the phase
    route (`op`: the output padding that gives back x's size). The backward recomputes from the
    saved inputs with differentiable operations, so R1 can differentiate it again. Under
    autocast it computes in the autocast dtype, as the plain layer does."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, s: int,
                p: int, op: int) -> torch.Tensor:
        dtype = torch.bfloat16 if _is_bf16(x) else x.dtype
        ctx.save_for_backward(x, w, b)
        ctx.conf = (s, p, op, dtype)
        with torch.autocast(x.device.type, enabled=False):
            return F.conv2d(x.to(dtype), w.to(dtype), None if b is None else b.to(dtype), s, p)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, w, b = ctx.saved_tensors
        s, p, op, dtype = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        with torch.autocast(x.device.type, enabled=False):
            g, wc = g.to(dtype), w.to(dtype)
            if need_x:
                gx = _phase_transposed(g, wc, s, p, op).to(x.dtype)
            if need_w or need_b:
                _, gw, gb = torch.ops.aten.convolution_backward(
                    g, x.to(dtype), wc, None if b is None else [b.shape[0]], [s, s], [p, p],
                    [1, 1], False, [0, 0], 1, [False, need_w, need_b])
                gw = gw.to(w.dtype) if need_w else None
                gb = gb.to(b.dtype) if need_b else None
        return gx, gw, gb, None, None, None


class FastGlobalMeanPool(GlobalMeanPool):
    """GlobalMeanPool whose backward is a broadcast view (module doc)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return _MeanPool.apply(h) if h.ndim == 4 else super().forward(h)


class _MeanPool(torch.autograd.Function):
    """h.mean(dim=(2, 3)), whose gradient g (B, C) goes back as (g / (H W)) broadcast over
    the positions: the values `mean`'s backward computes, without writing them out. The
    forward is adaptive average pooling to 1 x 1, the same values (tested bit for bit): in
    bf16 `mean` first copies the whole map to fp32 (0.24 against 0.09 ms, batch 128 at
    128 x 7 x 7, channels-last)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        ctx.shape = h.shape
        return F.adaptive_avg_pool2d(h, 1).flatten(1)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = ctx.shape
        return (g / (hh * ww)).view(b, c, 1, 1).expand(b, c, hh, ww)


class FastPlanesConv2d(PlanesConv2d):
    """PlanesConv2d whose label planes are convolved once per unit vector (module doc)."""

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not _routable(self, x) or v.ndim != 2:
            return super().forward(x, v)
        c, e = self.in_channels - self.label_dim, self.label_dim
        w = self.weight
        # both parts in the layout of the weight (channels-last in a channels-last run), so
        # that their sum is not an add across layouts
        last = w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
        fmt = torch.channels_last if last else torch.contiguous_format
        out = _conv2d(self, x, w[:, :c].contiguous(memory_format=fmt), self.bias)
        eye = torch.eye(e, dtype=x.dtype, device=x.device)[:, :, None, None]
        maps = F.conv2d(eye.expand(e, e, *x.shape[2:]), w[:, c:], None, self.stride,
                        self.padding)  # (E, O, H', W'): the map of each unit label vector
        b, (o, h, w_) = x.shape[0], maps.shape[1:]
        if last:
            maps = maps.permute(0, 2, 3, 1).reshape(e, h * w_ * o)
            label = (v.to(maps.dtype) @ maps).view(b, h, w_, o).permute(0, 3, 1, 2)
        else:
            label = (v.to(maps.dtype) @ maps.reshape(e, o * h * w_)).view(b, o, h, w_)
        # the label's part first: the sum takes its layout (channels-last), where an image part
        # of one channel may come out NCHW (its layout is ambiguous to oneDNN); the next
        # layer and its gradients then stay in one layout
        return label + out


_PAIRS = ((nn.ConvTranspose2d, FastConvTranspose2d), (nn.Conv2d, FastConv2d),
          (GlobalMeanPool, FastGlobalMeanPool), (PlanesConv2d, FastPlanesConv2d))


def use(modules: Iterable[nn.Module], name: str) -> None:
    """Make every layer of `modules` that has a faster route (`_PAIRS`: transposed and plain
    convolutions, the planes convolution, the mean pool; BatchNorm with the activation after
    it, models/fast_batchnorm.py) compute by `name`'s: `fast` (the Fast* classes) or `plain`
    (the models' own classes), in place."""
    if name not in KERNELS:
        raise ConfigError(f"kernels must be one of {', '.join(KERNELS)}, got {name!r}")
    modules = list(modules)
    fast_batchnorm.fuse(modules, name == "fast")
    for m in modules:
        for layer in m.modules():
            for plain, fast in _PAIRS:  # exact types: a parametrized layer is a subclass
                if type(layer) in (plain, fast):
                    layer.__class__ = fast if name == "fast" else plain
