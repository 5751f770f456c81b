"""Where training speed lives: the precision of a step and the compiled whole step.

The models stay plain `nn.Module`s; this module decides how a step runs them.

- `precision` (config): `fp32`, `bf16` or `auto`. bf16 runs the forward and backward passes
  under autocast (GEMMs and convolutions in bf16 through oneDNN, which on this AMD CPU is also
  the only path off MKL's AVX2 fp32 code); weights, gradients and Adam's moments stay fp32,
  and logits are cast to fp32 before the losses and statistics are reduced. `auto` is bf16
  where the device computes it natively (CPUs with AVX512-BF16 or AMX, CUDA with bf16).
- `compile` (config): `on`, `off` or `auto`. `on` traces the whole step (D step, G step, both
  Adam updates and the statistics) into ONE graph with torch.func and torch.compile, the way
  report 000's JAX code jits its step: one call per batch instead of hundreds of small ops.
  `auto` compiles only runs long enough to repay the compilation (~20-60 s on 2 cores).
  Where compilation fails (no C++ compiler, an unsupported feature) the step falls back to
  eager with one message.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from typing import Any, Callable

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("auto", "on", "off")
# `compile: auto` compiles runs of at least this many D steps: a compiled step saves a few ms,
# compilation costs tens of seconds.
AUTO_COMPILE_STEPS = 5_000


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX tiles)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        flags = ""
    words = set(flags.split())
    if words & {"avx512_bf16", "amx_bf16"}:
        return True
    return torch.backends.cpu.get_cpu_capability() in ("AVX512_BF16", "AMX")


def resolve_precision(name: str, device: torch.device) -> str:
    """`fp32` or `bf16` for the configured `precision` on `device`."""
    from gankit.config import ConfigError
    if name not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name != "auto":
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("precision=bf16: this CUDA device has no bf16; use precision=fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a step's forward passes run in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compiler_available() -> bool:
    """torch.compile's CPU backend writes C++: it needs a compiler on PATH (or $CXX)."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)


def resolve_compile(mode: str, device: torch.device, steps: int) -> bool:
    """Whether to compile the step: `on`, `off`, or `auto` (runs of >= AUTO_COMPILE_STEPS)."""
    from gankit.config import ConfigError
    if mode not in COMPILE_MODES:
        raise ConfigError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    if mode == "off" or (mode == "auto" and steps < AUTO_COMPILE_STEPS):
        return False
    if device.type == "cpu" and not compiler_available():
        print("gankit: compile: no C++ compiler found (g++/clang++); training uncompiled. "
              "Install one, or set compile=off to silence this.", file=sys.stderr)
        return False
    return True


def channels_last(module: nn.Module) -> nn.Module:
    """Convolutional nets keep their weights in channels_last (NHWC), the layout oneDNN's
    convolutions use natively: no reorder before and after each convolution."""
    if any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules()):
        module.to(memory_format=torch.channels_last)
    return module


def _norm(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


class CompiledStep:
    """One training step as two compiled graphs and the optimisers' own fused Adam.

    Computes what `Trainer.train_step` computes, in the same order. Graph D: fake = G(z, y)
    without gradients, D on [real; fake] jointly (or apart when D has BatchNorm), D's loss, its
    gradients and the D statistics. Then `opt_d.step()` (torch's fused Adam, as eager). Graph
    G: G's forward again on the same (z, y) with the same weights (its BatchNorm statistics
    are not updated twice), scored by the updated D, G's gradients and statistics. Then
    `opt_g.step()`. Recomputing G costs ~10% of the MLP step's FLOPs and keeps each graph a
    pure loss-and-gradient function; inductor's own fusion of Adam ran ~5x slower than
    torch's fused kernel here, so the update stays eager.
    """

    def __init__(self, G: nn.Module, D: nn.Module, loss: Any, opt_g: torch.optim.Adam,
                 opt_d: torch.optim.Adam, joint_d: bool, precision: str,
                 device: torch.device) -> None:
        self.G, self.D, self.loss = G, D, loss
        self.opt_g, self.opt_d = opt_g, opt_d
        self.g_params, self.d_params = list(G.parameters()), list(D.parameters())
        self.joint_d = joint_d
        self.precision, self.device = precision, device
        self._d_graph = torch.compile(self._d_grads, dynamic=False)
        self._g_graph = torch.compile(self._g_grads, dynamic=False)

    def _gen(self, gp: list[torch.Tensor], z: torch.Tensor, y: torch.Tensor | None,
             keep_stats: bool) -> torch.Tensor:
        from torch.func import functional_call
        names = [n for n, _ in self.G.named_parameters()]
        tensors: dict[str, torch.Tensor] = dict(zip(names, gp))
        if not keep_stats:  # BN normalises with the batch's statistics; its running ones stay
            tensors.update({n: b.clone() for n, b in self.G.named_buffers()})
        with autocast(self.precision, self.device):
            return functional_call(self.G, tensors, (z, y))

    def _disc(self, dp: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor | None
              ) -> torch.Tensor:
        from torch.func import functional_call
        names = [n for n, _ in self.D.named_parameters()]
        with autocast(self.precision, self.device):
            out = functional_call(self.D, dict(zip(names, dp)), (x, y))
        return out.float()  # losses and statistics reduce in fp32

    def _d_grads(self, gp: list[torch.Tensor], dp: list[torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor | None, z: torch.Tensor, d_sum: torch.Tensor
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        from torch.func import grad_and_value
        with torch.no_grad():
            fake = self._gen(gp, z, y, keep_stats=True).to(x.dtype)

        def d_loss_fn(p: list[torch.Tensor]) -> tuple[torch.Tensor, tuple]:
            if self.joint_d:
                both = self._disc(p, torch.cat([x, fake]), None if y is None else torch.cat([y, y]))
                rl, fl = both.split(x.shape[0])
            else:
                rl, fl = self._disc(p, x, y), self._disc(p, fake, y)
            return self.loss.d_loss(rl, fl), (rl, fl)

        grads, (d_loss, (rl, fl)) = grad_and_value(d_loss_fn, has_aux=True)(dp)
        with torch.no_grad():
            d_sum.add_(torch.stack([d_loss, torch.sigmoid(rl).mean(), torch.sigmoid(fl).mean(),
                                    (rl > 0).float().mean(), (fl < 0).float().mean(),
                                    _norm(grads)]))
        return grads, d_loss

    def _g_grads(self, gp: list[torch.Tensor], dp: list[torch.Tensor], y: torch.Tensor | None,
                 z: torch.Tensor, g_sum: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        from torch.func import grad_and_value
        dp = [p.detach() for p in dp]  # no weight gradients for D in the G step

        def g_loss_fn(p: list[torch.Tensor]) -> torch.Tensor:
            return self.loss.g_loss(self._disc(dp, self._gen(p, z, y, keep_stats=False), y))

        grads, g_loss = grad_and_value(g_loss_fn)(gp)
        with torch.no_grad():
            g_sum.add_(torch.stack([g_loss, _norm(grads)]))
        return grads, g_loss

    def run(self, trainer: Any, x: torch.Tensor, y: torch.Tensor | None, do_g: bool) -> None:
        """`Trainer.train_step` through the compiled graphs (same noise, counters and checks)."""
        z = torch.randn(x.shape[0], trainer.G.nz, generator=trainer.noise_gen, device=x.device)
        trainer._check_finite(self.d_step(x, y, z, trainer.d_sum), "D")
        trainer.d_count += 1
        if not do_g:
            return
        trainer._check_finite(self.g_step(y, z, trainer.g_sum), "G")
        if trainer.ema:
            trainer.ema.update()
        trainer.g_count += 1

    def d_step(self, x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor,
               d_sum: torch.Tensor) -> torch.Tensor:
        """D's gradients (compiled) and Adam update; adds to `d_sum`, returns D's loss."""
        grads, d_loss = self._d_graph(self.g_params, self.d_params, x, y, z, d_sum)
        for p, g in zip(self.d_params, grads):
            p.grad = g
        self.opt_d.step()
        return d_loss

    def g_step(self, y: torch.Tensor | None, z: torch.Tensor, g_sum: torch.Tensor
               ) -> torch.Tensor:
        """G's gradients (compiled) and Adam update; adds to `g_sum`, returns G's loss."""
        grads, g_loss = self._g_graph(self.g_params, self.d_params, y, z, g_sum)
        for p, g in zip(self.g_params, grads):
            p.grad = g
        self.opt_g.step()
        return g_loss


def supports_compiled_step(cfg: Any) -> str | None:
    """Why the compiled step cannot run this config (None: it can). The eager step handles
    these: a gradient penalty (a gradient of a gradient), gradient clipping, and dropout in G
    (the G graph recomputes G's forward, which must see the same dropout mask)."""
    if cfg.loss.name == "wgan-gp":
        return "the gradient penalty of wgan-gp"
    if cfg.grad_clip:
        return "grad_clip"
    if cfg.model.g_dropout > 0:
        return "model.g_dropout"
    return None


def setup(trainer: Any) -> CompiledStep | None:
    """Resolve `precision` and `compile` for a Trainer (recording the resolved values in its
    config), put conv nets in channels_last on the fast path, and build the compiled step
    when compiling. Returns None when the step runs eagerly."""
    cfg, device = trainer.cfg, trainer.device
    cfg.precision = resolve_precision(cfg.precision, device)
    steps = cfg.epochs * len(trainer.loader)
    compiled = resolve_compile(cfg.compile, device, steps)
    why_not = supports_compiled_step(cfg) if compiled else None
    if why_not:
        if cfg.compile == "on":
            print(f"gankit: compile: the compiled step does not handle {why_not}; training "
                  "uncompiled.", file=sys.stderr)
        compiled = False
    cfg.compile = "on" if compiled else "off"
    if cfg.precision != "fp32" or compiled:
        channels_last(trainer.G)
        channels_last(trainer.D)
    if not compiled:
        return None
    return CompiledStep(trainer.G, trainer.D, trainer.loss, trainer.opt_g, trainer.opt_d,
                        trainer.joint_d, cfg.precision, device)
