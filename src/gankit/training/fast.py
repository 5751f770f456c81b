"""Where training speed lives: a step's precision, compilation, kind and Adam call.

The models stay plain `nn.Module`s; this module decides how a step runs them.

- `precision` (config): `fp32`, `bf16` or `auto`. bf16 runs the forward and backward passes
  under autocast (GEMMs and convolutions in bf16 through oneDNN, which on this AMD CPU is also
  the only path off MKL's AVX2 fp32 code); weights, gradients and Adam's moments stay fp32,
  and logits are cast to fp32 before the losses and statistics are reduced. `auto` is bf16
  where the device computes it natively (CPUs with AVX512-BF16 or AMX, CUDA with bf16),
  for every model family (`resolve_precision`).
- `compile` (config): `on`, `off` or `auto`. `on` compiles G and D in place
  (`nn.Module.compile`: same modules, same state_dict keys) with inductor. `auto` is on for
  CUDA and off on CPU: on this 2-core CPU no compiled form paid for itself (measured in
  benchmarks/train_speed.py: module compile and a whole-step torch.func graph were both
  slower than the eager bf16 step for report 000's MLP). Where compilation is impossible (no
  C++ compiler) or fails, training runs uncompiled with one message.
- `step` (config): `fused`, `autograd` or `auto`. `fused` trains the MLP family with the
  hand-written step of training/mlp_step.py (forward and backward written out, preallocated
  buffers, bf16 GEMMs on bf16 copies of the fp32 weights, no host sync in the step): the same
  training step as autograd's up to float rounding. Settings it does not cover (see
  `mlp_step.why_not`; forward hooks on G or D) train with the autograd step, with one message
  saying why when `fused` was asked for. `auto` is fused wherever it covers the config
  (report 000's MLP, benchmarks/train_speed.py, one thread, 2026-12-02, five runs on a machine
  shared with other jobs: fused bf16 0.68-0.83x the autograd bf16 step, 0.87-1.54x report
  000's JAX; fused fp32 was a little faster than fused bf16 in every run then). The resolved
  value is recorded in the run's config, so a resumed run keeps its step; it is a resumable
  setting (the same step up to rounding): a run saved before it existed continues with
  autograd (LEGACY).
- `memory_format` (config): `channels_last` or `contiguous`. channels_last lays out G's and
  D's 4-D weights (and so their activations) as NHWC, the layout oneDNN's convolution kernels
  prefer (default preset, one thread, this Intel Xeon with AMX: a training step 0.84x the
  contiguous one in bf16, 0.83x in fp32; benchmarks/train_speed.py). It is resumable (the same
  step up to rounding); a run saved before it existed continues contiguous (LEGACY). Fused Adam
  reads a parameter and its moments as flat memory, so `match_layouts` gives loaded optimiser
  state the layout of its parameter (a mismatch would silently scramble the update).
- `kernels` (config): `fast` or `plain`. `fast` computes G's transposed convolutions, D's
  first layer (few channels; the image joined with label planes) and mean pool by the
  faster routes of models/kernels.py, the same function up to rounding, BatchNorm with the
  activation after it (training mode, bf16 channels-last, CPU) as native/batchnorm.py's C
  kernel, and (fused MLP step, bf16, CPU) each net's gradient norm, Adam update and bf16
  weight copy in one pass of native/adam.py's C kernel, torch's Adam numbers bit for bit on
  one thread; `plain` keeps the layers' own forward and torch's Adam passes. Resumable; a run
  saved before it existed continues `plain` (LEGACY).
- Activations run in place (`activations_in_place`, always: the same numbers, less memory
  traffic).
- `cpu_allocator` (config): `keep` (freed memory stays with the process) or `system`, applied
  on CPU devices (training/allocator.py: the step of report 004's DCGAN 0.82x the time with
  glibc's defaults, which fault its activations' pages in again every step). Resumable; not
  in LEGACY: a run saved before it existed continues with `keep`, which changes no number.
- Adam: training/adam.py's `adam_step` calls torch's fused Adam kernel directly, skipping
  torch.optim's per-call Python bookkeeping (~0.4 ms per call here, a tenth of the MLP's
  step); same kernel, same numbers, same optimiser state.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from typing import Any

import torch

from gankit.config import ConfigError, TrainConfig, keys, to_dict
from gankit.losses.gan import differentiates_twice
from gankit.models import kernels
from gankit.native.cpu import cpu_flags
from gankit.training import allocator

PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("auto", "on", "off")
STEPS = ("auto", "autograd", "fused")
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
# What a run saved before these settings existed trained with: resuming it keeps them.
LEGACY = {"precision": "fp32", "compile": "off", "step": "autograd",
          "memory_format": "contiguous", "kernels": "plain"}


def pick_device(name: str) -> torch.device:
    """'auto' is CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def flush_denormals(device: torch.device) -> None:
    """On a CPU, flush denormal floats to zero in this thread and torch's worker threads, as
    TensorFlow and XLA run theirs.

    A denormal operand costs x86 cores a microcode assist of ~100 cycles. Report 001's DCGAN
    with a 1000-wide D (its `ablations` sweep, batch 128, bf16) took 22 s a step until D's
    gradients underflowed, then 274 s (step 5); with denormals flushed 28-34 s at every step
    (this Intel Xeon, 2026-12-06). Values below 1.2e-38 become 0: nothing a GAN's training
    can see. Called first in `Trainer.__init__`; `tests/training/test_fast.py` checks every
    thread after a real `gankit train`."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)


def with_legacy(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved run's config dict with LEGACY filled in where it predates the settings, and
    every other setting it predates at its default (a new key's default is the behaviour
    before it existed, else it belongs in LEGACY)."""
    return keys.merge(to_dict(TrainConfig()), {**LEGACY, **saved})


def cpu_bf16_hardware() -> str | None:
    """This CPU's bf16 hardware: `AMX` (tiles, Intel Xeon since Sapphire Rapids),
    `AVX512-BF16` (e.g. AMD EPYC Zen 4), or None."""
    flags, capability = cpu_flags(), torch.backends.cpu.get_cpu_capability()
    if "amx_bf16" in flags or capability == "AMX":
        return "AMX"
    if "avx512_bf16" in flags or capability == "AVX512_BF16":
        return "AVX512-BF16"
    return None


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX tiles)."""
    return cpu_bf16_hardware() is not None


def resolve_precision(name: str, device: torch.device) -> str:
    """`fp32` or `bf16` for the configured `precision` on `device`.

    `auto` is bf16 wherever the device computes it natively, the MLP family included. (From
    2026-12-03 to 2026-12-05 the MLP family was fp32 on CPUs with AMX, where its fused bf16
    step then took 1.02-1.15x the fp32 one; since the fused step's bf16 work shrank (one
    weight cast per net, D's head in fp32, oneDNN's fused inner product) it takes 0.95-0.99x
    on that Intel Xeon, three runs of benchmarks/train_speed.py on 2026-12-05, and 0.82x on
    the AMD EPYC; docs/speed.md.)"""
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


def resolve_compile(mode: str, device: torch.device, penalty: bool = False) -> bool:
    """Whether to compile G and D: `on`, `off`, or `auto` (CUDA only; see the module doc).
    `penalty`: the loss differentiates D twice (R1, WGAN-GP), which torch.compile's autograd
    does not do ("does not currently support double backward", torch 2.13): `auto` trains
    uncompiled then, `on` is a config error."""
    if mode not in COMPILE_MODES:
        raise ConfigError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    if mode == "on" and penalty:
        raise ConfigError("compile=on cannot train this loss: its gradient penalty (R1 or "
                          "WGAN-GP) differentiates D twice, which torch.compile does not "
                          "support; set compile=off (or auto)")
    if mode == "off" or penalty or (mode == "auto" and device.type != "cuda"):
        return False
    if device.type == "cpu" and not compiler_available():
        print("gankit: compile: no C++ compiler found (g++/clang++); training uncompiled. "
              "Install one, or set compile=off to silence this.", file=sys.stderr)
        return False
    return True


def resolve_step(cfg: TrainConfig) -> tuple[str, str | None]:
    """(`fused` or `autograd`, why not fused) for a config whose precision and compile are
    resolved."""
    from gankit.training import mlp_step
    name = cfg.step
    if name not in STEPS:
        raise ConfigError(f"step must be one of {', '.join(STEPS)}, got {name!r}")
    if name == "autograd":
        return "autograd", None
    reason = mlp_step.why_not(cfg)
    return ("autograd", reason) if reason else ("fused", None)


def lay_out(modules: list[torch.nn.Module], name: str) -> None:
    """Put the 4-D parameters and buffers of `modules` in memory format `name` in place (the
    Parameter objects stay, so optimisers and EMA keep their references)."""
    if name not in MEMORY_FORMATS:
        raise ConfigError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, "
                          f"got {name!r}")
    for m in modules:
        m.to(memory_format=MEMORY_FORMATS[name])


def nets(trainer: Any) -> list[torch.nn.Module]:
    """A Trainer's G, D and, when it keeps one, the EMA copy of G."""
    return [trainer.G, trainer.D] + ([trainer.ema.shadow] if trainer.ema else [])


def activations_in_place(modules: list[torch.nn.Module], on: bool = True) -> None:
    """Let the ReLU and LeakyReLU modules of `modules` overwrite their input (`inplace`).

    Same values and gradients (their backward reads the output, whose sign is the input's
    for a positive slope; tests/training/test_fast.py), one activation-sized tensor less to
    write per layer: the `default` bf16 step 0.935x (one run, 2 threads, 2026-12-03). Safe
    in these nets: each activation follows a convolution, linear layer or BatchNorm, whose
    backward needs its input, not its output (autograd would refuse the step otherwise)."""
    for m in modules:
        for layer in m.modules():
            if isinstance(layer, (torch.nn.ReLU, torch.nn.LeakyReLU)):
                layer.inplace = on


def match_layouts(opt: torch.optim.Optimizer) -> None:
    """Give every state tensor of `opt` shaped like its parameter that parameter's strides
    (after `load_state_dict`: a checkpoint may hold another layout)."""
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            for k, v in st.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def comparable(saved: dict[str, Any]) -> dict[str, Any]:
    """A config dict as a Trainer records it: settings a saved run predates filled in from
    LEGACY, `auto` resolved for the config's device. Lets a sweep compare a point with the
    run it already started."""
    out = with_legacy(saved)
    device = pick_device(out.get("device", "auto"))
    out["precision"] = resolve_precision(out["precision"], device)
    penalty = differentiates_twice(out["loss"]["name"], out["loss"].get("r1_gamma", 0.0))
    out["compile"] = "on" if resolve_compile(out["compile"], device, penalty) else "off"
    return out


def describe(cfg: TrainConfig, device: torch.device) -> str:
    """How a set-up run's steps compute, for its first line: its precision (with the CPU's bf16
    hardware), the CPU threads, and the fused step or compilation where they apply, e.g. "bf16
    on AMX, 2 threads, fused step". A user who wonders why a run is slow (or fast) here sees
    what `auto` chose without reading the config."""
    cpu = device.type == "cpu"
    hardware = cpu_bf16_hardware() if cpu and cfg.precision == "bf16" else None
    parts = [f"{cfg.precision} on {hardware}" if hardware else cfg.precision]
    if cpu:
        threads = torch.get_num_threads()
        parts.append(f"{threads} thread{'s' * (threads != 1)}")
    if cfg.step == "fused":
        parts.append("fused step")
    if cfg.compile == "on":
        parts.append("compiled")
    return ", ".join(parts)


def setup(trainer: Any) -> None:
    """Resolve `precision` and `compile` for a Trainer, record the resolved values in its
    config (so a resumed run keeps them), lay out G, D and the EMA copy in `memory_format`
    with their `kernels` and activations in place, and compile G and D in place when compiling."""
    cfg, device = trainer.cfg, trainer.device
    cfg.precision = resolve_precision(cfg.precision, device)
    compiled = resolve_compile(cfg.compile, device,
                               differentiates_twice(cfg.loss.name, cfg.loss.r1_gamma))
    cfg.compile = "on" if compiled else "off"
    trainer.fused = None
    step, reason = resolve_step(cfg)
    if step == "fused" and trainer.world.distributed:
        step, reason = "autograd", "DDP (torchrun): the fused step does not all-reduce gradients"
    if step == "fused":
        from gankit.training import mlp_step
        reason = mlp_step.why_not_modules(trainer.G, trainer.D)
        if reason is None:
            trainer.fused = mlp_step.MLPStep(trainer)
        else:
            step = "autograd"
    if reason and cfg.step == "fused":
        print(f"gankit: step=fused: training with the autograd step: {reason}",
              file=sys.stderr)
    cfg.step = step
    lay_out(nets(trainer), cfg.memory_format)
    kernels.use(nets(trainer), cfg.kernels)
    activations_in_place(nets(trainer))
    if device.type == "cpu":
        allocator.apply(cfg.cpu_allocator)
    if compiled:
        # A model dynamo cannot trace runs eagerly (one warning) instead of stopping training.
        torch._dynamo.config.suppress_errors = True
        trainer.G.compile(dynamic=False)
        trainer.D.compile(dynamic=False)
