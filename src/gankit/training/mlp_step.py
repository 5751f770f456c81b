"""A hand-written training step for the MLP family (`step: fused`, training/fast.py).

Report 000's MLP cGAN at batch 64 is a handful of small GEMMs per step (~0.37 GFLOP, ~0.4 ms
in bf16 here), so eager PyTorch spends most of its step on per-op overhead: autograd's graph,
module calls, casts, optimiser bookkeeping. This step computes the same training step with
the forward and backward passes written out: preallocated buffers and `out=` GEMMs
(`torch.addmm`/`torch.mm`), in-place activations and their backward kernels, D run once on
[real; fake] (the Trainer's `joint_d`), one fused Adam call per net on the Trainer's own
optimiser state (in bf16 on CPU one pass of native/adam.py's C kernel, which also makes
the net's gradient norm and bf16 weight copies), the loss gradient in closed form, the
statistics accumulated as tensors and no host sync in the step (non-finite losses are caught
once per epoch, from the sums).

What it computes is the autograd step of `Trainer.train_step` (loop.py) for what it covers:
- G: [z ‖ one-hot or embedded label] -> Linear + ReLU (or LeakyReLU(0.2) + Dropout) ... ->
  Linear -> tanh; D: [image ‖ one-hot/embedded label, or none] -> Linear + LeakyReLU(0.2)
  (+ Dropout) ... -> Linear -> logit; unconditional nets too.
- losses minimax / nonsaturating (BCE), with label smoothing and `d_average`.
- precision fp32 (same ops as autograd: equal up to float rounding order) and bf16 (GEMMs in
  bf16 from bf16 copies of the fp32 master weights, cast once per update, as autocast does;
  activations in bf16, logits and losses in fp32, gradients and Adam in fp32). Where the
  rounding differs from autograd's bf16 step (so it is equal to it within bf16 rounding, not
  bit for bit): on CPU each hidden Linear runs as oneDNN's inner product with its bias and
  activation fused (`_linear`), and D's one-logit head runs in fp32 (`_head`).
- on CPU with `kernels: fast`, every GEMM of the layers as a oneDNN primitive made once and
  kept (native/onednn.py): torch rebuilds its primitive at every call, 25-40 us of a small
  GEMM's 30-50 (one run's step 0.83x in bf16, 0.92x in fp32; docs/speed.md); and the work
  between the GEMMs (the inputs, D's head with the loss, its statistics and gradients, each
  activation's backward with its bias gradient, the embedding gradients) as a few C calls
  (native/mlp_parts.py), where it was some 40 torch operations (one run's bf16 step 0.80x);
  and each half step's kernel calls recorded once and replayed by one C call
  (native/program.py, `_region`: 0.81-0.83x again; a 4-member ensemble's 0.91x, its wide
  weight gradient a torch call inside), where no dropout mask is drawn; on two threads or
  more each layer's weight and input gradients side by side, one product per thread
  (`Matmuls.pair`: two threads on one of these small products were barely faster than one;
  one run's bf16 step 0.945x, the same bits here).
- dropout masks drawn from the process RNG in the order and dtype autograd draws them.
- d_steps (the Trainer's `do_g`), EMA, learning-rate schedules (the optimisers' groups),
  checkpoints (the Trainer's own modules and optimisers hold every state).
Anything else falls back to the autograd step with a one-line reason (`why_not`,
`why_not_modules`; fast.setup adds DDP where the Trainer has a distributed world).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gankit.config import TrainConfig
from gankit.models.conditioning import projects
from gankit.native import adam as native
from gankit.native import mlp_parts, onednn, program, table
from gankit.training import adam

LOSSES = ("minimax", "nonsaturating")

# oneDNN's inner product with the bias and the activation as post-ops (the op inductor lowers
# an nn.Linear to on CPU): one call where addmm and an in-place activation took two, and
# faster than addmm's matmul primitive at these sizes (profiled, bf16, batch 64: 5-25% per
# layer; tanh fused saves its own pass over G's 64x784 output).
_ONEDNN_ACT: dict[str | None, tuple[str, list[float]]] = {
    None: ("none", []), "relu": ("relu", []), "lrelu": ("leaky_relu", [0.2]),
    "tanh": ("tanh", [])}


def onednn_linear_available(device: torch.device, dtype: torch.dtype = torch.float32) -> bool:
    """Whether `_linear` can use oneDNN's fused inner product on `device` in `dtype` (in bf16
    only where torch's oneDNN has one: without AVX-512 `_linear_pointwise` fails in bf16)."""
    return (device.type == "cpu" and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_linear_pointwise")
            and (dtype != torch.bfloat16 or torch.ops.mkldnn._is_mkldnn_bf16_supported()))


def why_not(cfg: TrainConfig) -> str | None:
    """Why the fused step cannot train `cfg` (None when it can), from the config alone."""
    m = cfg.model
    if m.arch != "mlp":
        return f"model.arch={m.arch}: the fused step covers the MLP family only"
    if m.spectral_norm:
        return "model.spectral_norm: spectral norm runs inside the modules' forward"
    if m.conditional and m.aux_classifier:
        return "model.aux_classifier: the fused step has no classifier-head losses"
    if m.conditional and projects(m.d_cond):
        return f"model.d_cond={m.d_cond}: the projection is not covered by the fused step"
    if cfg.loss.name not in LOSSES:
        return f"loss.name={cfg.loss.name}: the fused step covers {', '.join(LOSSES)}"
    if cfg.loss.r1_gamma > 0:
        return "loss.r1_gamma: R1 needs the gradient with respect to the input"
    if cfg.augment != "none":
        return f"augment={cfg.augment}: the fused step does not augment what D sees"
    if cfg.grad_clip:
        return "grad_clip is not covered by the fused step"
    if cfg.compile == "on":
        return "compile=on compiles the modules, which the fused step does not call"
    if cfg.precision not in ("fp32", "bf16"):
        return f"precision={cfg.precision} is not resolved"
    return None


def why_not_modules(G: nn.Module, D: nn.Module) -> str | None:
    """Why the built nets are not what the fused step computes (None when they are)."""
    if not (isinstance(getattr(G, "net", None), nn.Sequential)
            and isinstance(getattr(D, "body", None), nn.Sequential)):
        return "G and D are not (or no longer) the MLP family's modules"
    allowed = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Dropout, nn.Tanh)
    for net in (G.net, D.body):
        for layer in net:
            if not isinstance(layer, allowed):
                return f"layer {type(layer).__name__} is not covered by the fused step"
            if isinstance(layer, nn.LeakyReLU) and layer.negative_slope != 0.2:
                return "LeakyReLU slope other than 0.2"
            if hasattr(layer, "parametrizations") or getattr(layer, "_forward_pre_hooks", None):
                return "parametrized or hooked layers are not covered by the fused step"
    if not isinstance(G.net[-1], nn.Tanh):
        return "G does not end in tanh"
    if D.head.out_features != 1:
        return "D's head is not one logit"
    return None


@dataclass
class _Layer:
    """One Linear layer and what follows it: act 'relu' | 'lrelu' | 'tanh' | None, dropout p."""
    w: str
    b: str
    act: str | None
    p: float = 0.0


def _layers(net: nn.Sequential, prefix: str) -> list[_Layer]:
    out: list[_Layer] = []
    for i, layer in enumerate(net):
        if isinstance(layer, nn.Linear):
            out.append(_Layer(f"{prefix}.{i}.weight", f"{prefix}.{i}.bias", None))
        elif isinstance(layer, nn.ReLU):
            out[-1].act = "relu"
        elif isinstance(layer, nn.LeakyReLU):
            out[-1].act = "lrelu"
        elif isinstance(layer, nn.Tanh):
            out[-1].act = "tanh"
        elif isinstance(layer, nn.Dropout):
            out[-1].p = layer.p
    return out


@dataclass
class _Bufs:
    """The activation buffers of one batch size b (shapes after the step's `lead` dims;
    target and sign have none: they broadcast)."""
    xg: torch.Tensor                     # G input (b, nz + E) [z ‖ label vector]
    z: torch.Tensor                      # (b, nz) fp32 noise
    g_act: list[torch.Tensor]            # G layer outputs (after activation/dropout)
    g_mask: list[torch.Tensor | None]
    xd: torch.Tensor                     # D input (2b, in) [real; fake] ‖ label vector
    d_act: list[torch.Tensor]            # D hidden outputs for 2b rows
    d_mask: list[torch.Tensor | None]
    l32: torch.Tensor                    # (2b,) fp32
    target: torch.Tensor                 # (2b,) fp32 BCE targets
    sign: torch.Tensor                   # (2b,) +1 real, -1 fake
    y2: torch.Tensor                     # (2b,) labels of [real; fake]
    g_d_act: list[torch.Tensor]          # D hidden outputs in the G step (b rows)
    g_d_mask: list[torch.Tensor | None]
    stats: torch.Tensor                  # (6,) D statistics of this step
    g_stats: torch.Tensor                # (2,) G loss and gradient norm of this step
    dh_d: torch.Tensor                   # (2b, n) gradient of D's last hidden Linear output
    dh_g: torch.Tensor                   # (b, n) the same in the G step
    dg: torch.Tensor                     # (b, img) G's output gradient after its tanh


def _flat_zeros(params: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Zero tensors shaped like `params`, as views of one flat buffer (returned too)."""
    flat = torch.zeros(sum(p.numel() for p in params.values()), dtype=dtype,
                       device=next(iter(params.values())).device)
    views, at = {}, 0
    for n, p in params.items():
        views[n] = flat[at:at + p.numel()].view_as(p)
        at += p.numel()
    return views, flat


def _flatten(params: list[nn.Parameter]) -> torch.Tensor:
    """Move `params` into one flat buffer (returned), each now a view of it: the same
    Parameter objects and values, so modules, optimisers and checkpoints do not notice."""
    flat = torch.empty(sum(p.numel() for p in params), dtype=params[0].dtype,
                       device=params[0].device)
    at = 0
    for p in params:
        view = flat[at:at + p.numel()].view_as(p)
        view.copy_(p.detach())
        p.data = view
        at += p.numel()
    return flat


def _mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b: one run's mm, or K runs' bmm (three-dimensional operands)."""
    return (torch.mm if a.ndim == 2 else torch.bmm)(a, b, out=out)


def _addmm(bias: torch.Tensor, a: torch.Tensor, bt: torch.Tensor,
           out: torch.Tensor) -> torch.Tensor:
    """bias + a @ bt into `out`: one run's addmm, or K runs' baddbmm (bias (*lead, n)
    broadcast over the rows; a strided `out`, D's logits of the fake half, via a copy)."""
    if a.ndim == 2:
        return torch.addmm(bias, a, bt, out=out)
    if out.is_contiguous():
        return torch.baddbmm(bias.unsqueeze(-2), a, bt, out=out)
    return out.copy_(torch.baddbmm(bias.unsqueeze(-2), a, bt))


def _transposed_mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    """a^T @ b into `out` by torch, a's transpose copied contiguous first."""
    _mm(a.mT.contiguous(), b, out=out)


class MLPStep:
    """The fused step of one Trainer (built by fast.setup when `step` resolves to fused).

    The arithmetic is written for tensors with `lead` dimensions in front: () for one run,
    (K,) for K runs of one architecture stacked (`FusedEnsembleStep` in
    training/mlp_ensemble_step.py,
    which overrides the hooks that touch a run's own state: noise, dropout masks, Adam, EMA,
    statistics). GEMMs of two-dimensional tensors are a run's own calls; three-dimensional
    ones are batched (`bmm`/`baddbmm`)."""

    def __init__(self, trainer: Any) -> None:
        self.tr = trainer
        gp, dp = dict(trainer.G.named_parameters()), dict(trainer.D.named_parameters())
        self._setup(trainer.cfg, trainer.G, trainer.D, trainer.device, trainer.loss,
                    gp, dp, ())

    def _setup(self, cfg: TrainConfig, G: nn.Module, D: nn.Module, device: torch.device,
               loss: Any, gp: dict[str, torch.Tensor], dp: dict[str, torch.Tensor],
               lead: tuple[int, ...]) -> None:
        """Bind the step to nets G and D (their structure) and to parameters gp, dp (their
        named tensors, shaped (*lead, ...))."""
        self.lead = lead
        self.G, self.D = G, D
        self.dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float32
        self.device = device
        self.loss = loss
        self.g_layers = _layers(self.G.net, "net")
        self.d_layers = _layers(self.D.body, "body") + [_Layer("head.weight", "head.bias", None)]
        self._dropout_layers = any(L.p for L in self.g_layers + self.d_layers)
        self.g_embed = ("label.embed.weight" if self.G.conditional and self.G.label.embed
                        is not None else None)
        self.g_onehot = self.G.conditional and self.g_embed is None
        self.d_cond_dim = self.D.cond.dim if self.D.cond is not None else 0
        self.d_embed = ("cond.encoder.embed.weight" if self.d_cond_dim and
                        self.D.cond.encoder.embed is not None else None)
        self.num_classes = self.G.num_classes
        # Parameters (detached views of the modules' own tensors: Adam updates them in place),
        # gradient buffers, and bf16 copies of the weights for the GEMMs.
        self.g_names = [n for n, _ in self.G.named_parameters()]
        self.d_names = [n for n, _ in self.D.named_parameters()]
        self.g_params = [gp[n] for n in self.g_names]
        self.d_params = [dp[n] for n in self.d_names]
        low = self.dtype != torch.float32
        self.gP: dict[str, torch.Tensor] = {}
        self.dP: dict[str, torch.Tensor] = {}
        self._master: dict[str, torch.Tensor] = {}
        self._ptrs: dict[str, list[int]] = {}
        # each half step's recorded kernel calls (`_region`), made again when a net is bound
        self._programs: dict[tuple, program.Program | None] = {}
        self.use_programs = True
        self._adam_kept: dict[str, tuple] = {}  # `_adam_rows`' lists, dropped by `_bind`
        self._bind("G")
        self._bind("D")
        # each net's gradients are views of one flat buffer, so that their norm (logged every
        # step) is one reduction instead of one per tensor
        self.gG, self.g_flat = _flat_zeros(self.gP)
        self.dG, self.d_flat = _flat_zeros(self.dP)
        self.g_grads = [self.gG[n] for n in self.g_names]
        self.d_grads = [self.dG[n] for n in self.d_names]
        if not low:
            self.gW, self.dW = self.gP, self.dP
            self.gWg, self.dWg = self.gG, self.dG       # GEMM gradients land in the fp32 grads
        else:
            self.gW, g_low_w = _flat_zeros(self.gP, self.dtype)
            self.dW, d_low_w = _flat_zeros(self.dP, self.dtype)
            # laid out as the fp32 gradients: one copy takes them all to fp32
            self.gWg, self.g_low = _flat_zeros(self.gP, self.dtype)
            self.dWg, self.d_low = _flat_zeros(self.dP, self.dtype)
            self._low_w = {"G": g_low_w, "D": d_low_w}
        self.bufs: dict[int, _Bufs] = {}
        self._versions: dict[str, list[int]] = {}
        self._stepped: set[str] = set()
        self.nz = self.G.nz
        self.img = math.prod(self.G.shape)
        smoothing = self.loss.label_smoothing if self.loss.smoothable else 0.0
        self.t_real = 1.0 - smoothing
        self.d_scale = 0.5 if self.loss.d_average else 1.0
        self.onednn = onednn_linear_available(self.device, self.dtype) and not lead
        cpu_fast = device.type == "cpu" and cfg.kernels == "fast"
        # The GEMMs (one run's, or the members' batched) as kept oneDNN primitives
        # (native/onednn.py; `kernels: plain`: torch's calls, which rebuild them every call).
        self.gemm: onednn.Matmuls | None = None
        if cpu_fast:
            if onednn.kernel() is not None:
                self.gemm = onednn.Matmuls()
            else:
                onednn.report_unavailable()
        # In bf16 on CPU, each net's gradient norm, Adam update and bf16 weight copy as one
        # pass of native/adam.py's kernel (`kernels: plain`: torch's passes); the
        # gradients the step writes in fp32 (D's head, label embeddings) are read as such.
        self.native: dict[str, native.AdamBF16] | None = None
        if low and cpu_fast:
            if native.kernel() is not None:
                k = lead[0] if lead else 1
                self.native = {"G": native.AdamBF16(k), "D": native.AdamBF16(k)}
            else:
                native.report_unavailable()
        # and, where no kept primitive applies G's tanh as a post-op, its bf16 tanh through a
        # table of its 65,536 results (torch's numbers)
        self.tanh: table.Table | None = None
        if low and cpu_fast and self.gemm is None and table.kernel() is not None:
            self.tanh = table.tanh_bf16()
        # and the elementwise work between the GEMMs (D's head and loss, activation backward
        # with bias gradients, the embedding gradient) as a few C calls (native/mlp_parts.py).
        # With torch's Adam passes in bf16 they would come before the bf16 gradients' copy to
        # fp32, which would overwrite the head's fp32 gradients: used with the native pass only.
        self.parts = None
        if cpu_fast and self.d_layers[:-1] and (self.native is not None or not low):
            if mlp_parts.kernel() is not None:
                self.parts = mlp_parts
            else:
                mlp_parts.report_unavailable()
        head = self.d_layers[-1]
        self._fp32_grads = {"G": {self.g_embed} - {None},
                            "D": {head.w, head.b, self.d_embed} - {None}}

    # ---- buffers -----------------------------------------------------------------------
    def _bufs(self, b: int) -> _Bufs:
        if b in self.bufs:
            return self.bufs[b]
        dt, dev, k = self.dtype, self.device, self.lead
        e = lambda *s, d=dt: torch.empty(*k, *s, dtype=d, device=dev)  # noqa: E731
        g_act, g_mask = [], []
        for L in self.g_layers:
            out = self.gP[L.w].shape[-2]
            g_act.append(e(b, out))
            g_mask.append(e(b, out) if L.p > 0 else None)
        d_in = self.img + self.d_cond_dim
        d_act, d_mask, gd_act, gd_mask = [], [], [], []
        for L in self.d_layers[:-1]:
            out = self.dP[L.w].shape[-2]
            d_act.append(e(2 * b, out))
            d_mask.append(e(2 * b, out) if L.p > 0 else None)
            gd_act.append(e(b, out))
            gd_mask.append(e(b, out) if L.p > 0 else None)
        xg = torch.zeros(*k, b, self.nz + self.G.cond_dim, dtype=dt, device=dev)
        target = torch.zeros(2 * b, device=dev)
        target[:b] = self.t_real
        sign = torch.ones(2 * b, device=dev)
        sign[b:] = -1
        top = d_act[-1].shape[-1] if d_act else 0
        bufs = _Bufs(xg=xg, z=e(b, self.nz, d=torch.float32), g_act=g_act, g_mask=g_mask,
                     xd=e(2 * b, d_in), d_act=d_act, d_mask=d_mask,
                     l32=e(2 * b, d=torch.float32), target=target, sign=sign,
                     y2=torch.empty(*k, 2 * b, dtype=torch.long, device=dev),
                     g_d_act=gd_act, g_d_mask=gd_mask, stats=e(6, d=torch.float32),
                     g_stats=e(2, d=torch.float32), dh_d=e(2 * b, top), dh_g=e(b, top),
                     dg=e(b, self.img))
        self.bufs[b] = bufs
        return bufs

    # ---- pieces ------------------------------------------------------------------------
    @staticmethod
    def _act_fwd(h: torch.Tensor, act: str | None, tanh: table.Table | None = None) -> None:
        if act == "relu":
            torch.relu_(h)
        elif act == "lrelu":
            torch._C._nn.leaky_relu_(h, 0.2)
        elif act == "tanh":
            if tanh is not None and h.dtype == torch.bfloat16 and h.is_contiguous():
                tanh.apply(h)
            elif h.dtype == torch.bfloat16:
                # torch's bf16 tanh took 3x its fp32 one on CPU (307 against 107 us with the
                # casts, an 8-member G output) and rounds every finite bf16 input to the same
                # value (test_mlp_step.py checks all of them)
                h.copy_(torch.tanh(h.float()))
            else:
                torch.tanh_(h)

    @staticmethod
    def _act_bwd(dh: torch.Tensor, out: torch.Tensor, act: str | None) -> torch.Tensor:
        """The gradient through the activation, from its output `out` (in place where the
        kernels allow it)."""
        if act == "relu":
            return torch.ops.aten.threshold_backward(dh, out, 0)
        if act == "lrelu":
            return torch.ops.aten.leaky_relu_backward(dh, out, 0.2, True)
        if act == "tanh":
            return torch.ops.aten.tanh_backward(dh, out)
        return dh

    def _dropout(self, h: torch.Tensor, mask: torch.Tensor | None, p: float) -> None:
        """torch's CPU dropout: a mask like h drawn by bernoulli_(1 - p), scaled by 1/(1 - p)."""
        if mask is not None:
            self._draw_mask(mask, p)
            mask.div_(1 - p)
            h.mul_(mask)

    def _draw_mask(self, mask: torch.Tensor, p: float) -> None:
        """Dropout's keep mask, drawn from the process RNG as F.dropout draws it on CPU."""
        mask.bernoulli_(1 - p)

    def _linear(self, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, act: str | None,
                out: torch.Tensor) -> torch.Tensor:
        """act(h w^T + b): into `out` by a kept oneDNN primitive (`kernels: fast` on CPU) or by
        addmm and an in-place activation, or (torch's oneDNN call) as a new tensor; returns
        the result."""
        if self.gemm is not None:
            return self.gemm(h, w.mT, out, b, act)
        if self.onednn:
            name, scalars = _ONEDNN_ACT[act]
            return torch.ops.mkldnn._linear_pointwise(h, w, b, name, scalars, "")
        _addmm(b, h, w.mT, out)
        self._act_fwd(out, act, self.tanh)
        return out

    def _product(self, a: torch.Tensor, b: torch.Tensor,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """a @ b (into `out` when given), through the kept oneDNN primitives where there are."""
        if self.gemm is not None:
            return self.gemm(a, b, out)
        return _mm(a, b, out=out)

    def _forward(self, layers: list[_Layer], W: dict, x: torch.Tensor,
                 acts: list[torch.Tensor], masks: list[torch.Tensor | None]) -> None:
        """Through `layers` from x; each layer's output replaces its entry of `acts`."""
        h = x
        for i, (L, m) in enumerate(zip(layers, masks)):
            acts[i] = h = self._linear(h, W[L.w], W[L.b], L.act, acts[i])
            self._dropout(h, m, L.p)

    def _head(self, h: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """D's one-logit head on features h, into `out` (fp32, (rows,)), in fp32 from the
        fp32 weights; returns h in fp32 for its weight gradient. A GEMV: in bf16 oneDNN's
        call took 20-30 us where the fp32 one with the cast takes 8 (profiled), and the logit
        is wanted in fp32 anyway."""
        head = self.d_layers[-1]
        h32 = h.float()  # h itself when it is fp32
        _addmm(self.dP[head.b], h32, self.dP[head.w].mT, out=out.unsqueeze(-1))
        return h32

    def _head_grads(self, dl: torch.Tensor, h32: torch.Tensor) -> None:
        """The head's weight and bias gradients (fp32) from the logits' gradient dl (rows,)."""
        head = self.d_layers[-1]
        _mm(dl.unsqueeze(-2), h32, out=self.dG[head.w])
        torch.sum(dl, -1, keepdim=True, out=self.dG[head.b])

    def _backward(self, layers: list[_Layer], W: dict, Wg: dict | None, x: torch.Tensor,
                  acts: list[torch.Tensor], masks: list[torch.Tensor | None],
                  dh: torch.Tensor, top_done: bool = False,
                  top_out: torch.Tensor | None = None) -> torch.Tensor:
        """Back through `layers` from dh (the gradient of the last layer's output; top_done:
        of its Linear's output, its bias gradient already in Wg), weight and bias gradients
        into Wg (when given); returns the gradient of the first Linear's output (the caller
        takes the input gradient columns it needs from it). top_out: a contiguous buffer for
        the last layer's gradient through its activation, when dh is a strided view (the C
        parts write it there)."""
        for i in range(len(layers) - 1, -1, -1):
            L = layers[i]
            bias = Wg[L.b] if Wg is not None else None
            if top_done and i == len(layers) - 1:
                bias = None
            elif self.parts is not None:
                out = top_out if i == len(layers) - 1 else None
                dh = self.parts.act_bwd(dh, acts[i], masks[i], L.act, bias, out)
                bias = None
            else:
                if masks[i] is not None:
                    dh = dh.mul_(masks[i])
                dh = self._act_bwd(dh, acts[i], L.act)
            if Wg is not None:
                a = acts[i - 1] if i else x
                if bias is not None:
                    torch.sum(dh, -2, out=bias)
                # Batched, a layer of over 512 inputs (D's first, 794) takes its output
                # gradient's transpose copied contiguous: oneDNN's bf16 bmm took 375-439
                # against 572-630 us for 4 members, one thread (the same numbers; slower at
                # 512 inputs or fewer, and for one run's mm). In the 4-member step 0.959x and
                # 0.975x (12 rounds each, 2026-12-06). And through torch's bmm: the kept
                # oneDNN 3.2 primitive took 578-618 us there against torch's 446 (Intel
                # Xeon, 2026-12-06), the one GEMM of the step where it was slower.
                if self.lead and a.shape[-1] > 512:
                    program.call(_transposed_mm, dh, a, Wg[L.w])
                elif i and self.gemm is not None:  # beside the input gradient (module doc)
                    _, dh = self.gemm.pair((dh.mT, a, Wg[L.w]), (dh, W[L.w]))
                    continue
                else:
                    self._product(dh.mT, a, out=Wg[L.w])
            if i:
                dh = self._product(dh, W[L.w])
        return dh

    def _d_backward(self, dl: torch.Tensor, Wg: dict | None, x: torch.Tensor,
                    acts: list[torch.Tensor], masks: list[torch.Tensor | None]
                    ) -> torch.Tensor:
        """Back through D's hidden layers from the logits' gradient dl (rows,) (the head's own
        gradients are `_head_grads`); returns the gradient of D's first Linear's output."""
        hidden = self.d_layers[:-1]
        dlow = dl.to(self.dtype).unsqueeze(-1)
        if not hidden:
            return dlow
        # D's head (one output): the outer product as a multiply, a few us where the GEMM
        # call took ~30 (profiled in the bf16 step); a product of two bf16 numbers is exact in
        # the fp32 both round from, so it is the GEMM's result.
        dh = torch.mul(dlow, self.dW[self.d_layers[-1].w])
        return self._backward(hidden, self.dW, Wg, x, acts, masks, dh)

    def _g_input(self, B: _Bufs, y: torch.Tensor | None) -> None:
        """G's input [z ‖ one-hot or embedded label] by torch's operations."""
        B.xg[..., :self.nz].copy_(B.z)
        if not self.G.conditional:
            return
        if self.g_onehot:
            v = B.xg[..., self.nz:]
            v.zero_()
            v.scatter_(-1, y.unsqueeze(-1), 1.0)
        else:
            gv = torch.empty(*y.shape, self.G.cond_dim, device=self.device)
            self._lookup(self.gP[self.g_embed], y, gv)
            B.xg[..., self.nz:].copy_(gv)

    def _d_input(self, B: _Bufs, x: torch.Tensor, fake: torch.Tensor,
                 y: torch.Tensor | None) -> None:
        """D's input [real; fake] ‖ label vector (and B.y2) by torch's operations."""
        k, b, xd = self.lead, fake.shape[-2], B.xd
        xd[..., :b, :self.img].copy_(x.reshape(*k, b, -1))
        xd[..., b:, :self.img].copy_(fake)
        if not self.d_cond_dim:
            return
        B.y2.view(*k, 2, b).copy_(y.unsqueeze(-2).expand(*k, 2, b))
        dv = torch.empty(*k, b, self.d_cond_dim, device=self.device)
        if self.d_embed is not None:
            self._lookup(self.dP[self.d_embed], y, dv)
        else:
            dv.zero_()
            dv.scatter_(-1, y.unsqueeze(-1), 1.0)
        xd[..., self.img:].view(*k, 2, b, self.d_cond_dim).copy_(
            dv.unsqueeze(-3).expand(*k, 2, b, -1))

    # ---- the step ----------------------------------------------------------------------
    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor | None, do_g: bool) -> None:
        """One training step: x (*lead, b, ...) images, y (*lead, b) labels. It runs inside
        the loop's autocast: what must stay fp32 (D's head, the embedding gradients) is
        computed by out= calls, which autocast does not recast."""
        B = self._bufs(x.shape[len(self.lead)])
        low = self.dtype != torch.float32
        self._rebind()
        self._noise(B.z)  # z drawn as the autograd step draws it
        if low:
            self._cast("G")
            self._cast("D")
        self._region("D", B, x, y)
        st = B.stats
        self._update("D", st[..., 5])
        self._record("D", st)
        if not do_g:
            self._check_finite()
            return
        if low:
            self._cast("D")  # D updated (the native pass makes its copies itself)
        self._region("G", B, x, y)
        gs = B.g_stats
        self._update("G", gs[..., 1])
        self._ema()
        self._record("G", gs)
        self._check_finite()

    def _region(self, half: str, B: _Bufs, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """The D half (`_d_half`) or the G half (`_g_half`) of the step: where every call of
        it is a native kernel's (`_recordable`), as its recorded program (native/program.py:
        one C call where some 15 took 5-10 us of Python each), recorded at its first run for
        this batch size and thread count; else call by call."""
        fn = self._d_half if half == "D" else self._g_half
        if not (self.use_programs and self._recordable() and x.is_contiguous()
                and x.dtype == torch.float32
                and (y is None or (y.is_contiguous() and y.dtype == torch.int64))):
            fn(B, x, y)
            return
        key = (half, x.shape, y is None, torch.get_num_threads(), id(self.gemm))
        dynamic = {"x": x, "y": y}
        if key not in self._programs:
            try:
                with program.recording(dynamic) as recorded:
                    fn(B, x, y)
            except program.NotRecordable:
                recorded = None
            self._programs[key] = recorded
        prog = self._programs[key]
        if prog is None:
            fn(B, x, y)
        else:
            mlp_parts.run(prog, dynamic, self.num_classes)

    def _recordable(self) -> bool:
        """Whether both halves make native kernel calls only (the kept GEMMs and the C parts;
        an ensemble's wide weight gradient is recorded as a torch call), no dropout (its
        masks are torch's draws)."""
        return self.parts is not None and self.gemm is not None and not self._dropout_layers

    def _d_half(self, B: _Bufs, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """G forward, D forward on [real; fake], D's loss and its gradients (into dG, dWg)."""
        b, k = B.z.shape[-2], self.lead
        low = self.dtype != torch.float32
        if self.parts is not None:
            self.parts.g_input(B.z, y if self.G.conditional else None,
                               self.gP[self.g_embed] if self.g_embed else None,
                               self.num_classes, B.xg)
        else:
            self._g_input(B, y)
        self._forward(self.g_layers, self.gW, B.xg, B.g_act, B.g_mask)
        fake = B.g_act[-1]                                       # (b, img), tanh applied
        # D input [real; fake] ‖ label vector
        xd = B.xd
        if self.parts is not None:
            self.parts.d_input(x.contiguous(), fake, y if self.d_cond_dim else None,
                               self.dP[self.d_embed] if self.d_embed else None,
                               self.num_classes, xd, B.y2)
        else:
            self._d_input(B, x, fake, y)
        hidden = self.d_layers[:-1]
        self._forward(hidden, self.dW, xd, B.d_act, B.d_mask)
        st = B.stats
        if self.parts is not None:
            # head, loss, statistics and head gradients, and back to the last hidden Linear's
            # output, in one C call (the torch operations' arithmetic, below)
            top, head = hidden[-1], self.d_layers[-1]
            self.parts.head_d(B.d_act[-1], self.dP[head.w], self.dP[head.b], self.dW[head.w],
                              B.d_mask[-1], top.act, self.t_real, self.d_scale / b, B.l32, st,
                              self.dG[head.w], self.dG[head.b], B.dh_d, self.dWg[top.b])
            dh1 = self._backward(hidden, self.dW, self.dWg, xd, B.d_act, B.d_mask, B.dh_d,
                                 top_done=True)
        else:
            l32 = B.l32
            h32 = self._head(B.d_act[-1] if hidden else xd, l32)
            # D loss: mean over each half of softplus(l) - target * l (BCE with targets t, 0)
            sp = torch.nn.functional.softplus(l32)
            per = torch.addcmul(sp, B.target, l32, value=-1.0)
            torch.sum(per, -1, keepdim=True, out=st[..., 0:1])
            st[..., 0:1].mul_(self.d_scale / b)
            sig = torch.sigmoid(l32)
            torch.mean(sig.view(*k, 2, b), -1, out=st[..., 1:3])
            torch.mean(torch.mul(l32, B.sign).gt_(0).view(*k, 2, b), -1, out=st[..., 3:5])
            # dL/dl = (sigmoid(l) - target) * scale / b
            dl = torch.sub(sig, B.target).mul_(self.d_scale / b)
            dh1 = self._d_backward(dl, self.dWg, xd, B.d_act, B.d_mask)
            if low and not self.native:
                self.d_flat.copy_(self.d_low)
            self._head_grads(dl, h32)
        if self.d_embed is not None:
            w1 = self.dW[self.d_layers[0].w]
            self._embed_grad(self.dG[self.d_embed], dh1, B.y2, w1[..., self.img:])

    def _g_half(self, B: _Bufs, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """D (updated) on the fake half, G's loss and its gradients (into gG, gWg): the
        gradients reach the image only."""
        b = B.z.shape[-2]
        low = self.dtype != torch.float32
        hidden = self.d_layers[:-1]
        xf = B.xd[..., b:, :]
        self._forward(hidden, self.dW, xf, B.g_d_act, B.g_d_mask)
        l = B.l32[..., b:]
        gs = B.g_stats
        minimax = self.loss.name == "minimax"
        if self.parts is not None:
            top, head = hidden[-1], self.d_layers[-1]
            self.parts.head_g(B.g_d_act[-1], self.dP[head.w], self.dP[head.b], self.dW[head.w],
                              B.g_d_mask[-1], top.act, minimax, l, gs[..., 0], B.dh_g)
            dh1 = self._backward(hidden, self.dW, None, xf, B.g_d_act, B.g_d_mask, B.dh_g,
                                 top_done=True)
        else:
            self._head(B.g_d_act[-1] if hidden else xf, l)
            if minimax:                       # -mean softplus(l); d/dl = -sigmoid(l) / b
                gs[..., 0].copy_(torch.nn.functional.softplus(l).mean(-1).neg_())
                dl = torch.sigmoid(l).mul_(-1.0 / b)
            else:                             # mean softplus(-l); d/dl = (sigmoid(l) - 1) / b
                gs[..., 0].copy_(torch.nn.functional.softplus(l.neg()).mean(-1))
                dl = torch.sigmoid(l).sub_(1.0).mul_(1.0 / b)
            dh1 = self._d_backward(dl, None, xf, B.g_d_act, B.g_d_mask)
        # dL/d fake (b, img). Batched, through all of w1's columns and the label ones dropped
        # after: bmm copied the column slice of the stacked weights first (0.67 ms of a 14-ms
        # 8-member bf16 step, profiled), where mm reads it in place.
        # oneDNN's kept primitive is faster through all columns too (69 against 86 us, one
        # run; its column slice takes a slower kernel).
        # Its image columns are a strided view, which oneDNN 3.2 multiplies by its gemm:jit
        # kernel, not AMX's brgemm: G's last layer's two GEMMs took 219 and 112 us on it, 84
        # and 109 on contiguous rows in a 1.6x slower minute (one run, bf16, ONEDNN_VERBOSE),
        # so the C parts write the gradient through G's tanh into the contiguous B.dg.
        w1 = self.dW[self.d_layers[0].w]
        if self.gemm is not None or self.lead:
            dg = self._product(dh1, w1)[..., :self.img]
        else:
            dg = _mm(dh1, w1[:, :self.img])
        dh1 = self._backward(self.g_layers, self.gW, self.gWg, B.xg, B.g_act, B.g_mask, dg,
                             top_out=B.dg)
        if low and not self.native:
            self.g_flat.copy_(self.g_low)
        if self.g_embed is not None:
            self._embed_grad(self.gG[self.g_embed], dh1, y,
                             self.gW[self.g_layers[0].w][..., self.nz:])

    def gradients(self) -> dict[str, torch.Tensor]:
        """The last step's gradients as its updates read them, fp32, keyed 'G.name' and
        'D.name' (with the native kernel, what the GEMMs wrote in bf16 was read as such)."""
        out = {}
        for net in ("G", "D"):
            names, _, _, G, Glow, _, _ = self._net(net)
            for n in names:
                native_low = self.native is not None and n not in self._fp32_grads[net]
                out[f"{net}.{n}"] = Glow[n].float() if native_low else G[n]
        return out

    def _update(self, net: str, norm: torch.Tensor) -> None:
        """A net's gradient norm into `norm` (*lead) and its Adam update (its bf16 weight
        copies then stale: `_cast` makes them again), or with the native kernel all three, and
        the step counts' advance, in one pass."""
        names, params, P, G, Glow, W, flat = self._net(net)
        if self.native is None:
            self._norm(G, names, flat, norm)
            self._adam(net)
            self._stepped.add(net)
            return
        opt = self._opt(net)  # one fused Adam group without weight decay (loop.make_adam)
        group = opt.param_groups[0]
        self.native[net].step(self._adam_rows(net, opt), group["lr"], group["betas"],
                              group["eps"], norm)
        # The kernel wrote the bf16 copies from the new weights without bumping a version
        # counter, so `_versions`, set by this step's `_cast(net)`, still says they are fresh
        # (an in-place write since then leaves it older: a needless cast, never a stale one).

    def _adam_rows(self, net: str, opt: torch.optim.Adam) -> list[tuple]:
        """The native Adam rows of a net (`AdamBF16.step`), one list kept while the optimiser's
        per-parameter state dicts are the same objects: a loaded checkpoint, the ensemble and
        `adam._advance` put new ones in (its weights and buffers are the step's own, and
        `_bind` drops the list). Built every step, the rows and the kernel's check of their
        tensors took ~55 us of a 1.45-ms step (two threads, timed in the step)."""
        kept = self._adam_kept.get(net)  # (the state dicts it was made from, the rows)
        if (kept is not None and len(opt.state) == len(kept[0])
                and all(a is b for a, b in zip(opt.state.values(), kept[0]))):
            return kept[1]
        names, params, P, G, Glow, W, _ = self._net(net)
        fp32 = self._fp32_grads[net]
        states = self._states(opt, params)
        rows = [(P[n], st["exp_avg"], st["exp_avg_sq"], None if n in fp32 else Glow[n], G[n],
                 W[n], st["step"]) for n, st in zip(names, states)]
        self._adam_kept[net] = (list(opt.state.values()), rows)
        return rows

    def _net(self, net: str) -> tuple:
        """A net's parameter names, parameters, weights, fp32 gradients, GEMM gradients, GEMM
        weights (bf16 copies in bf16) and flat fp32 gradient buffer."""
        if net == "D":
            return (self.d_names, self.d_params, self.dP, self.dG, self.dWg, self.dW,
                    self.d_flat)
        return self.g_names, self.g_params, self.gP, self.gG, self.gWg, self.gW, self.g_flat

    # ---- what touches the run's own state (FusedEnsembleStep overrides these) ------------
    def _noise(self, z: torch.Tensor) -> None:
        torch.randn(z.shape, generator=self.tr.noise_gen, out=z)

    def _opt(self, net: str) -> torch.optim.Adam:
        return self.tr.opt_d if net == "D" else self.tr.opt_g

    def _states(self, opt: torch.optim.Adam, params: list[torch.Tensor]) -> list[dict]:
        """Each parameter's Adam state (adam.states; the native kernel advances the counts)."""
        return adam.states(opt, params)

    def _adam(self, net: str) -> None:
        tr = self.tr
        if net == "D":
            adam.adam_step(tr.opt_d, self.d_params, self.d_grads)
        else:
            adam.adam_step(tr.opt_g, self.g_params, self.g_grads)

    def _ema(self) -> None:
        if self.tr.ema:
            self.tr.ema.update(self.tr.step + 1)

    def _record(self, net: str, stats: torch.Tensor) -> None:
        """Add a step's statistics (loss, ..., gradient norm) to the run's sums."""
        tr = self.tr
        if net == "D":
            tr.d_sum.add_(stats)
            tr.d_count += 1
        else:
            tr.g_sum.add_(stats)
            tr.g_count += 1

    def _rows(self, y: torch.Tensor, classes: int) -> torch.Tensor:
        """Labels y (*lead, b) as rows of the lead's tables laid end to end (*lead x classes
        rows): member k's label c is row k * classes + c; flattened."""
        if not self.lead:
            return y
        return (y + torch.arange(self.lead[0], device=y.device)[:, None] * classes).view(-1)

    def _lookup(self, table: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> None:
        """Rows y of an embedding table (*lead, classes, E) into out (*lead, b, E)."""
        c, e = table.shape[-2:]
        torch.index_select(table.reshape(-1, e), 0, self._rows(y, c), out=out.view(-1, e))

    def _embed_grad(self, g: torch.Tensor, dh1: torch.Tensor, y: torch.Tensor,
                    w_cols: torch.Tensor) -> None:
        """The gradient (C, E) of a label embedding whose rows feed the first Linear through
        its columns w_cols (out, E), from that Linear's output gradient dh1 (rows, out):
        dh1's rows summed per class first, then one (C, out) x (out, E) GEMM, where the
        (rows, out) x (out, E) one took ~40 us for its strided columns (profiled)."""
        if self.parts is not None:
            # labels out of range were refused by this step's lookup or one-hot scatter
            self.parts.embed_grad(dh1, y.contiguous(), w_cols, g)
            return
        c, out = g.shape[-2], dh1.shape[-1]
        per = torch.zeros(*self.lead, c, out, device=g.device)
        per.view(-1, out).index_add_(0, self._rows(y, c), dh1.reshape(-1, out).float())
        _mm(per, w_cols.float(), out=g)

    def _check_finite(self) -> None:
        if sums_due(self.tr):
            check_sums(self.tr)

    def _bind(self, net: str) -> None:
        """Point the step at a net's parameter tensors: detached views (Adam updates them in
        place), in bf16 as views of one fp32 buffer so that one copy casts them all. Called
        again when a parameter's data was replaced (`p.data = ...`, load_state_dict with
        assign=True), which would otherwise leave the step reading the old tensors."""
        params, names, P = ((self.g_params, self.g_names, self.gP) if net == "G" else
                            (self.d_params, self.d_names, self.dP))
        self._programs.clear()  # they hold the old tensors' addresses
        self._adam_kept.pop(net, None)
        if self.dtype != torch.float32:
            self._master[net] = _flatten(params)
        for n, p in zip(names, params):
            P[n] = p.detach()  # in place: the fp32 step's weight dicts are these dicts
        self._ptrs[net] = [p.data_ptr() for p in params]

    def _rebind(self) -> None:
        """_bind each net whose parameters no longer hold the tensors bound."""
        for net, params in (("G", self.g_params), ("D", self.d_params)):
            if [p.data_ptr() for p in params] != self._ptrs[net]:
                self._bind(net)
                self._versions.pop(net, None)  # cast again

    def _cast(self, net: str) -> None:
        """The bf16 copies of a net's weights from its fp32 ones, unless those are unchanged
        since the last cast: not stepped by Adam here since (the step marks the net it
        updates; torch's fused Adam kernel does not bump version counters) and the same version
        counters
        (load_state_dict and other in-place writes bump them). So D's copies made for a G step
        serve the next D step."""
        params = self.g_params if net == "G" else self.d_params
        versions = [p._version for p in params]
        if net in self._stepped or versions != self._versions.get(net):
            self._low_w[net].copy_(self._master[net])
            self._versions[net] = versions
            self._stepped.discard(net)

    def _norm(self, grads: dict[str, torch.Tensor], names: list[str], flat: torch.Tensor,
              out: torch.Tensor) -> None:
        """A net's gradient norm into `out` (*lead; a column of the step's statistics): one
        norm over its flat buffer, or with a lead, each member's norm over its own slices of
        the stacked gradients."""
        if not self.lead:
            out.copy_(torch.linalg.vector_norm(flat))
            return
        k = self.lead[0]
        each = torch.stack([torch.linalg.vector_norm(grads[n].reshape(k, -1), dim=1)
                            for n in names], 1)
        out.copy_(torch.linalg.vector_norm(each, dim=1))


def sums_due(tr: Any) -> bool:
    """Whether the fused step checks a run's loss sums now: at the last batch of an epoch and
    when a stop signal arrived, before anything is saved. (The autograd step checks each loss,
    a host sync per step; a NaN or inf loss anywhere in the epoch makes its sum non-finite.)"""
    return tr.batch + 1 >= len(tr.loader) or tr._stop_signal is not None


def check_sums(tr: Any) -> None:
    """NonFiniteLoss when a run's D or G loss sum is NaN or inf."""
    for which, sums in (("D", tr.d_sum), ("G", tr.g_sum)):
        if not torch.isfinite(sums[0]):
            raise tr.nonfinite(which, sums[0].item(), f"in epoch {tr.epoch + 1} (by batch "
                               f"{tr.batch + 1}, step {tr.step + 1})")

