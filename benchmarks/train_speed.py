"""Seconds per epoch (50k MNIST images) of gankit's step paths beside a plain PyTorch loop, the
JAX reference of report 000 and the arithmetic limit, all measured in one process run.

Variants, each timed on the same model in the same process:
  old       precision=fp32 compile=off memory_format=contiguous cpu_allocator=system
            kernels=plain, and activations out of place as gankit 0.1's modules ran them
            (fast.activations_in_place(..., False)): the eager path of gankit 0.1, kept
            selectable
  fp32      precision=fp32, convolution weights channels_last (training/fast.py)
  bf16      precision=bf16 compile=off channels_last: bf16 GEMMs/convolutions, fp32 weights
            and Adam
  bf16-plain        bf16 with kernels=plain: G's transposed convolutions as nn.ConvTranspose2d
            computes them (what models/kernels.py is worth)
  bf16-contiguous   bf16 without channels_last
  bf16-system       bf16 with cpu_allocator=system: what keeping freed memory is worth
  fp32-compiled, bf16-compiled   the same with compile=on (G and D through torch.compile)
  fused-bf16, fused-fp32   step=fused: the hand-written MLP step (training/mlp_step.py; report
            000's MLP only); the variants above run step=autograd
  fused-bf16-plain  fused-bf16 with kernels=plain: each net's update by torch's passes
            (gradient copy, norm, fused Adam, bf16 cast) instead of training/native.py's
            one C pass
  ensemble8-fp32, ensemble8-bf16   8 seeds of the model as one batched model
            (training/ensemble.py) with step=autograd, the time of one step of all 8 divided
            by 8 (per-run time; report 000's MLP only)
  ensemble8-fused-fp32, ensemble8-fused-bf16   the same with step=fused (the fused step
            batched over the 8 members, training/mlp_ensemble_step.py); `--variants ensemble`
            times all four
  ensemble8-split   8 seeds as `gankit train --seeds` trains them on a CPU of 2 or more
            cores (sweeps/seeds.py): 2 processes side by side, each a 4-member fused bf16
            ensemble on cores // 2 threads; per-run time = the slower process's step / 4 / 2
  side-by-side      one run per core, one thread each, side by side in processes of their
            own, as `gankit sweep` runs a sweep's runs (sweeps/runner.py) and `--seeds` the
            seeds of a family without a batched step: the step `precision: auto` trains
            (fused-bf16 for the MLP, else bf16); per-run time = the slower run's step / cores,
            against one such run on all cores
  plain     a textbook loop: DataLoader over a float TensorDataset, BCEWithLogitsLoss, default
            Adam, separate D passes, an .item() per step, the C library's allocator; the
            preset's random rotation (report 004) as one affine_grid + grid_sample per batch
            (before 2026-12-05's eighth session it skipped it: 0.74 ms of a ~38-ms step)
  jax       ../shared/bench/report000_jax.py (report 000's MLP only; needs the `bench` extra)
  limit     FLOPs per epoch (counted on one step) / the peak GEMM rate measured here; with
            the ensembles, 8 members' Adam update alone (memory traffic, timed after the rounds)

The machine is shared and its speed drifts, so the variants are timed in interleaved rounds
(every variant N batches per round: by default a whole epoch for the MLP, 40 batches for the
convolutional nets) and each figure is the median over rounds; compare the
ratios, not the absolute times. Each variant runs in a process of its own (`Worker`), driven
round by round from this one: a process-wide setting of one variant (gankit's
cpu_allocator=keep, training/allocator.py) must not speed up another (old, plain).

    python benchmarks/train_speed.py [--which mlp,dcgan,default,resnet] [--batches N]
                                     [--rounds R]
                                     [--no-jax] [--profile] [--variants old,bf16,...]

One thread for everything, JAX included (the way issue 11 measures it):
    OMP_NUM_THREADS=1 XLA_FLAGS='--xla_cpu_multi_thread_eigen=false \
        intra_op_parallelism_threads=1' python benchmarks/train_speed.py --which mlp
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from gankit.config import resolve
from gankit.data import load_dataset
from gankit.data.loader import rotate
from gankit.native import adam, onednn
from gankit.sweeps.processes import cpu_count
from gankit.training.ensemble import Ensemble
from gankit.training.fast import (activations_in_place, cpu_bf16_hardware, nets,
                                  resolve_precision)
from gankit.training.loop import Trainer

CASES = {"mlp": ("mlp-cgan-m4", 64, "report 000 MLP cGAN, batch 64"),
         "dcgan": ("dcgan-r004", 128, "report 004 DCGAN, batch 128"),
         "default": ("default", 64, "default preset, batch 64"),
         "resnet": ("resnet-cgan-r002", 32, "report 002 ResNet cGAN, batch 32")}
# 8-seed ensembles: name -> (step, precision)
ENSEMBLES = {"ensemble8-fp32": ("autograd", "fp32"), "ensemble8-bf16": ("autograd", "bf16"),
             "ensemble8-fused-fp32": ("fused", "fp32"), "ensemble8-fused-bf16": ("fused", "bf16")}
# name: (precision, compile, step, memory_format, cpu_allocator, kernels)
VARIANTS = {"old": ("fp32", "off", "autograd", "contiguous", "system", "plain"),
            "fp32": ("fp32", "off", "autograd", "channels_last", "keep", "fast"),
            "bf16": ("bf16", "off", "autograd", "channels_last", "keep", "fast"),
            "bf16-plain": ("bf16", "off", "autograd", "channels_last", "keep", "plain"),
            "bf16-contiguous": ("bf16", "off", "autograd", "contiguous", "keep", "fast"),
            "bf16-system": ("bf16", "off", "autograd", "channels_last", "system", "fast"),
            "fp32-compiled": ("fp32", "on", "autograd", "channels_last", "keep", "fast"),
            "bf16-compiled": ("bf16", "on", "autograd", "channels_last", "keep", "fast"),
            "fused-bf16": ("bf16", "off", "fused", "contiguous", "keep", "fast"),
            "fused-fp32": ("fp32", "off", "fused", "contiguous", "keep", "fast"),
            "fused-bf16-plain": ("bf16", "off", "fused", "contiguous", "keep", "plain")}
MLP_ONLY = ("fused-bf16", "fused-fp32", "fused-bf16-plain")
# What the timed loops read: wall time, or with --clock cpu the CPU time of this process (and
# of the JAX process), which a machine shared with other jobs disturbs far less (one thread
# each: CPU time is the time the step computes).
CLOCK = {"clock": time.perf_counter}


def clock() -> float:
    return CLOCK["clock"]()


# Runs report000_jax.py with its clock replaced by CPU time (--clock cpu).
JAX_CPU_WRAPPER = ("import runpy, sys, time; time.perf_counter = time.process_time; "
                   "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
JAX_SCRIPT = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench" / "report000_jax.py"


class GankitTimer:
    """One Trainer in one step variant; `time(n)` runs n batches and returns seconds/batch."""

    def __init__(self, preset: str, batch: int, precision: str, compile_: str, tmp: str,
                 step: str = "autograd", memory_format: str = "contiguous",
                 cpu_allocator: str = "keep", kernels: str = "fast", old: bool = False,
                 threads: int = 0) -> None:
        cfg = resolve(preset, {"batch_size": batch, "device": "cpu", "precision": precision,
                               "compile": compile_, "step": step,
                               "memory_format": memory_format, "cpu_allocator": cpu_allocator,
                               "kernels": kernels, "threads": threads})
        self.trainer = Trainer(cfg, tmp, progress=False)
        if old:
            activations_in_place(nets(self.trainer), False)
        self.threads = torch.get_num_threads()
        self.batches = self._batches()
        t0 = time.perf_counter()
        self.time(3)  # compilation (when on) and first-call overheads
        self.warmup = time.perf_counter() - t0

    def _batches(self):
        while True:
            yield from self.trainer.loader.epoch(0)

    def time(self, n: int) -> float:
        torch.set_num_threads(self.threads)
        tr = self.trainer
        t0 = clock()
        for _ in range(n):
            x, y = next(self.batches)
            tr.train_step(x, y, do_g=True)
            tr.step += 1  # as the loop counts them: lazy R1 is due every r1_every-th step
        _ = tr.epoch_means()
        return (clock() - t0) / n

    def params(self) -> int:
        """G's and D's parameters, counted."""
        return sum(p.numel() for net in nets(self.trainer) for p in net.parameters())

    def flops(self) -> int:
        """FLOPs of one training step (D and G), counted by torch's FLOP counter."""
        x, y = next(self.batches)
        with FlopCounterMode(display=False) as counter:
            self.trainer.train_step(x, y, do_g=True)
        return counter.get_total_flops()

    def profile(self, label: str, batches: int = 30) -> None:
        """Where the step's time goes: the top ops by self CPU time over `batches` steps."""
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            self.time(batches)
        print(f"{label}: top ops over {batches} steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), flush=True)


class EnsembleTimer:
    """An 8-seed ensemble of the preset; `time(n)` runs n batched steps and returns the
    seconds per batch of one member (the step of all 8 divided by 8)."""

    def __init__(self, preset: str, batch: int, precision: str, tmp: str, k: int = 8,
                 step: str = "autograd", threads: int = 0, seed0: int = 0) -> None:
        if threads:
            torch.set_num_threads(threads)
        over = {"batch_size": batch, "device": "cpu", "precision": precision, "compile": "off",
                "step": step}
        jobs = [(resolve(preset, {**over, "seed": s}), Path(f"{tmp}/{s}"))
                for s in range(seed0, seed0 + k)]
        self.ensemble = Ensemble.build(jobs, progress=False)
        self.threads = torch.get_num_threads()
        self.k = k
        self.batches = self._batches()
        self.time(3)

    def _batches(self):
        """The members' batches as the training loop gathers them (`Ensemble._batches`)."""
        while True:
            yield from self.ensemble._batches(0)

    def time(self, n: int) -> float:
        torch.set_num_threads(self.threads)
        ens = self.ensemble
        t0 = clock()
        for _ in range(n):
            ens.step_stacked(*next(self.batches), do_g=True)
        _ = ens.members[0].epoch_means()
        return (clock() - t0) / n / self.k


class PlainTimer:
    """A textbook GAN loop on the same architecture (fresh models of the preset)."""

    def __init__(self, preset: str, batch: int, tmp: str) -> None:
        cfg = resolve(preset, {"batch_size": batch, "device": "cpu", "precision": "fp32",
                               "compile": "off", "step": "autograd", "cpu_allocator": "system",
                               "kernels": "plain"})
        tr = Trainer(cfg, tmp, progress=False)
        self.G, self.D, self.cfg = tr.G, tr.D, cfg
        activations_in_place([self.G, self.D], False)  # textbook modules
        self.threads = os.cpu_count() or 1  # the plain loop as users run it
        train = load_dataset("mnist", "train")
        ds = TensorDataset(train.images.float().div(127.5).sub(1), train.labels)
        self.dl = DataLoader(ds, batch_size=batch, shuffle=True)
        self.it = iter(self.dl)
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.g_lr, betas=tuple(o.g_betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.d_lr, betas=tuple(o.d_betas))
        self.bce = nn.BCEWithLogitsLoss()
        self.time(3)

    def _next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.dl)
            return next(self.it)

    def time(self, n: int) -> float:
        torch.set_num_threads(self.threads)
        G, D, bce = self.G, self.D, self.bce
        t0 = clock()
        rotation = self.cfg.data.rotation
        for _ in range(n):
            x, y = self._next()
            y = y if self.cfg.model.conditional else None
            b = x.shape[0]
            if rotation:  # the preset's augmentation (report 004: +-20 degrees), batched
                x = rotate(x, (torch.rand(b) * 2 - 1) * rotation, -1.0)
            fake = G(torch.randn(b, G.nz), y)
            self.opt_d.zero_grad()
            d_loss = (bce(D(x, y), torch.ones(b)) + bce(D(fake.detach(), y), torch.zeros(b))) / 2
            d_loss.backward()
            self.opt_d.step()
            self.opt_g.zero_grad()
            g_loss = bce(D(fake, y), torch.ones(b))
            g_loss.backward()
            self.opt_g.step()
            _ = d_loss.item(), g_loss.item()
        return (clock() - t0) / n


def serve(conn, clock_name: str, make, args: tuple) -> None:
    """A Worker's process: build the timer `make(*args)`, then run the calls sent to it."""
    if clock_name == "cpu":
        CLOCK["clock"] = time.process_time
    try:
        t0 = time.perf_counter()
        timer = make(*args)
        conn.send((True, (timer.threads, time.perf_counter() - t0)))
        while (msg := conn.recv()) is not None:
            method, call_args = msg
            conn.send((True, getattr(timer, method)(*call_args)))
    except Exception as e:  # shown by the parent, which stops the benchmark
        conn.send((False, f"{type(e).__name__}: {e}"))


class Worker:
    """A timer in a process of its own (spawned), called round by round through a pipe."""

    def __init__(self, clock_name: str, make, *args) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, clock_name, make, args), daemon=True)
        self.proc.start()
        self.threads, self.ready = self._reply()

    def _reply(self):
        ok, out = self.conn.recv()
        if not ok:
            raise SystemExit(f"benchmark worker failed: {out}")
        return out

    def call(self, method: str, *args):
        self.conn.send((method, args))
        return self._reply()

    def start(self, method: str, *args) -> None:
        """Send a call without waiting (`result` collects it): workers timed side by side."""
        self.conn.send((method, args))

    def result(self):
        return self._reply()

    def time(self, n: int) -> float:
        return self.call("time", n)

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(timeout=30)


def cpu_name() -> str:
    """The processor's model name and its bf16 hardware (AMX tiles, AVX512-BF16 or none): the
    ratios differ from one to another (docs/speed.md), so each run says which it ran on."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f
                         if ln.startswith("model name")), name)
    except OSError:
        pass
    return f"{name} ({cpu_bf16_hardware() or 'no native bf16'})"


def gemm_route() -> str:
    """How `kernels: fast` runs the fused MLP step's GEMMs here: kept oneDNN primitives (and
    the implementation oneDNN picks for D's widest bf16 layer), or torch's calls and why."""
    if onednn.kernel() is None:
        return f"torch's calls ({onednn.why_not()})"
    a, w = torch.zeros(128, 794, dtype=torch.bfloat16), torch.zeros(256, 794, dtype=torch.bfloat16)
    return f"kept oneDNN primitives ({onednn.Matmuls().impl(a, w.mT)} for D's first layer, bf16)"


def peak_gflops(threads: int) -> dict[str, float]:
    """The GEMM rates of this machine now: 1024^2 matmuls, fp32 through MKL (torch.mm) and
    oneDNN (mkldnn_linear), and bf16."""
    torch.set_num_threads(threads)
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    am, bm = a.to_mkldnn(), b.to_mkldnn()
    ab, bb = a.bfloat16(), b.bfloat16()
    cases = {"fp32 mkl": lambda: torch.mm(a, b),
             "fp32 onednn": lambda: torch._C._nn.mkldnn_linear(am, bm),
             "bf16": lambda: torch.mm(ab, bb)}
    out = {}
    for name, fn in cases.items():
        fn()
        reps = 20
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        out[name] = 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9
    return out


def update_seconds(params: int, members: int, threads: int, reps: int = 20) -> float | None:
    """Seconds of one Adam update of `members` runs of `params` parameters each as the fused
    bf16 step makes it (native/adam.py's one pass: fp32 weights and moments read and written,
    bf16 gradients read, bf16 weight copies written, 28 bytes a parameter) on `threads`
    threads; None where the native kernel is not built. Memory traffic, which no GEMM rate
    speeds up: the share of an ensemble's per-run time that batching cannot shrink."""
    if adam.why_not():
        return None
    torch.set_num_threads(threads)
    n = params * members
    f32 = [torch.rand(n) * 1e-3 for _ in range(3)]
    grads, copies = torch.rand(n).bfloat16(), torch.empty(n, dtype=torch.bfloat16)
    row = (*f32, grads, None, copies, torch.zeros(()))
    update, norms = adam.AdamBF16(members), torch.empty(members)
    update.step([row], 2e-4, (0.5, 0.999), 1e-8, norms)
    t0 = time.perf_counter()
    for _ in range(reps):
        update.step([row], 2e-4, (0.5, 0.999), 1e-8, norms)
    return (time.perf_counter() - t0) / reps


def jax_installed() -> bool:
    """Whether report 000's stack (the `bench` extra) is importable here."""
    try:
        import flax  # noqa: F401
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError:
        return False
    return JAX_SCRIPT.is_file()


def jax_epoch(epochs: int = 2) -> float | None:
    """Steady seconds/epoch of report 000's JAX script (the epochs after its first)."""
    with tempfile.TemporaryDirectory() as tmp:
        wrap = ["-c", JAX_CPU_WRAPPER] if CLOCK["clock"] is time.process_time else []
        out = subprocess.run([sys.executable, *wrap, str(JAX_SCRIPT), str(epochs), f"{tmp}/s.npz"],
                             capture_output=True, text=True, timeout=1800)
    m = re.search(r"steady seconds/epoch ([0-9.]+)", out.stdout)
    if not m:
        print(f"  (JAX reference failed: {out.stderr.strip().splitlines()[-1:]})")
        return None
    return float(m.group(1))


# Batches per round of the convolutional nets when --batches is not given (a whole epoch of
# theirs takes 15-70 s per variant). The MLP's rounds are whole epochs: JAX times whole
# epochs, and this host has slow spells of seconds (a step 1.6x slower in CPU time, then
# back), which a round of 100 batches (0.2 s) either misses or sits in entirely, so that
# short rounds spread more than JAX's (2026-12-05, 5 rounds each: with rounds of 100 batches
# the fused bf16 step ranged 2.01-3.05 s an epoch against JAX's 2.01-2.42; with whole-epoch
# rounds half an hour later 1.81-1.87 against 1.94-1.94).
CONV_BATCHES = 40


def run_case(key: str, args: argparse.Namespace, train) -> None:
    preset, batch, label = CASES[key]
    per_epoch = -(-len(train) // batch)
    n = args.batches or (per_epoch if key == "mlp" else CONV_BATCHES)
    print(f"\n== {label} ({preset}; {per_epoch} batches/epoch; times extrapolated from "
          f"{args.rounds} rounds of {n} batches)")
    with_jax = key == "mlp" and not args.no_jax and jax_installed()
    if key == "mlp":
        print(f"  the fused step's GEMMs (kernels: fast): {gemm_route()}")
    with tempfile.TemporaryDirectory() as tmp:
        timers: dict[str, Worker] = {}
        chosen = [v for v in args.variants.split(",") if v] if args.variants else list(VARIANTS)
        side_ref = "fused-bf16" if key == "mlp" else "bf16"   # what `auto` trains here
        if "side-by-side" in chosen and side_ref not in chosen:  # its reference
            chosen.append(side_ref)
        for name in ["old"] + [v for v in chosen if v != "old"]:  # old: the reference of "x old"
            if (name not in VARIANTS and name not in ENSEMBLES
                    and name not in ("ensemble", "ensemble8-split", "side-by-side")):
                raise SystemExit(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}, "
                                 "ensemble, ensemble8-split, side-by-side")
            if name not in VARIANTS or (name in MLP_ONLY and key != "mlp"):
                continue
            timers[name] = Worker(args.clock, GankitTimer, preset, batch, *VARIANTS[name][:2],
                                  f"{tmp}/{name}", *VARIANTS[name][2:], name == "old")
            print(f"  {name}: ready in {timers[name].ready:.0f} s "
                  f"({timers[name].threads} threads)", flush=True)
        for name, (step, precision) in ENSEMBLES.items():
            if key == "mlp" and (not args.variants or "ensemble" in chosen or name in chosen):
                timers[name] = Worker(args.clock, EnsembleTimer, preset, batch, precision,
                                      f"{tmp}/{name}", 8, step)
                print(f"  {name}: ready in {timers[name].ready:.0f} s", flush=True)
        split: list[Worker] = []
        if key == "mlp" and (not args.variants or "ensemble" in chosen
                             or "ensemble8-split" in chosen):
            threads = max(1, (os.cpu_count() or 2) // 2)
            split = [Worker(args.clock, EnsembleTimer, preset, batch, "bf16",
                            f"{tmp}/split{i}", 4, "fused", threads, 4 * i) for i in range(2)]
            print(f"  ensemble8-split: ready in {max(w.ready for w in split):.0f} s (2 "
                  f"processes, {threads} thread{'s' if threads > 1 else ''} each)", flush=True)
        side: list[Worker] = []
        if not args.variants or "side-by-side" in chosen:
            cores = cpu_count()   # as the sweep runner counts them
            side = [Worker(args.clock, GankitTimer, preset, batch, *VARIANTS[side_ref][:2],
                           f"{tmp}/side{i}", *VARIANTS[side_ref][2:], False, 1)
                    for i in range(cores)]
            print(f"  side-by-side: ready in {max(w.ready for w in side):.0f} s ({cores} "
                  f"processes, 1 thread each, as {side_ref})", flush=True)
        timers["plain"] = Worker(args.clock, PlainTimer, preset, batch, f"{tmp}/plain")
        times: dict[str, list[float]] = {k: [] for k in timers}
        if split:
            times["ensemble8-split"] = []
        if side:
            times["side-by-side"] = []
        if with_jax:
            times["jax"] = []
        for _ in range(args.rounds):
            for name, timer in timers.items():
                times[name].append(timer.time(n) * per_epoch)
            if split:  # side by side: each returns its 4 members' per-run time
                for w in split:
                    w.start("time", n)
                times["ensemble8-split"].append(max(w.result() for w in split) / 2 * per_epoch)
            if side:  # one run per core at once: per-run time over the slowest
                for w in side:
                    w.start("time", n)
                times["side-by-side"].append(max(w.result() for w in side) / len(side)
                                             * per_epoch)
            if with_jax:  # in the same rounds: the machine's speed drifts
                times["jax"].append(jax_epoch() or float("nan"))
        flops = timers["old"].call("flops") * per_epoch
        params = timers["old"].call("params")
        if args.profile:
            for name in ("old", "bf16", "fused-fp32", "fused-bf16"):
                if name in timers:
                    timers[name].call("profile", f"{label}, {name}")
        for timer in [*timers.values(), *split, *side]:
            timer.close()
        peaks = peak_gflops(timers["old"].threads)
        update = update_seconds(params, 8, timers["old"].threads) if split else None
    med = {k: statistics.median(v) for k, v in times.items()}
    spread = {k: (min(v), max(v)) for k, v in times.items()}
    old = med["old"]
    print(f"  {'variant':<14} {'s/epoch':>8} {'range':>14} {'x old':>6} {'x plain':>8}")
    for name in med:
        lo, hi = spread[name]
        print(f"  {name:<14} {med[name]:8.2f} {lo:6.2f}-{hi:<7.2f} {med[name] / old:6.2f} "
              f"{med[name] / med['plain']:8.2f}")
    if with_jax:
        print("  x jax: " + ", ".join(f"{k} {med[k] / med['jax']:.2f}" for k in VARIANTS
                                      if k in med)
              + " (jax: report000_jax.py's steady epoch, 2 epochs a round)")
    elif key == "mlp" and not args.no_jax:
        print("  jax: not measured (pip install -e '.[bench]' for the JAX reference)")
    # what `precision: auto` trains report 000's MLP with on this machine
    auto = f"fused-{resolve_precision('auto', torch.device('cpu'))}"
    if auto in med:
        parts = [f"{med[auto] / med[k]:.2f}x {what}" for k, what in
                 (("bf16", "the autograd bf16 step"), ("old", "the old fp32 step"),
                  ("jax", "JAX (target <= 1.0)")) if k in med]
        print(f"  gankit as `auto` trains it ({auto}): " + ", ".join(parts))
    # each ensemble against the one-run steps timed in this run
    parts = [f"{e} {med[e] / med[k]:.3f}x one {what}"
             for e, k, what in (("ensemble8-fp32", "old", "fp32 run"),
                                ("ensemble8-bf16", "bf16", "bf16 run"),
                                ("ensemble8-fp32", "fused-fp32", "fused fp32 run"),
                                ("ensemble8-bf16", "fused-bf16", "fused bf16 run"),
                                ("ensemble8-fused-fp32", "fused-fp32", "fused fp32 run"),
                                ("ensemble8-fused-bf16", "fused-bf16", "fused bf16 run"),
                                ("ensemble8-split", "fused-bf16", "fused bf16 run"))
             if e in med and k in med]
    if parts:
        print("  8-seed ensemble, per-run time: " + ", ".join(parts)
              + " (target <= 0.375x: 8 runs in at most 3x the time of one)")
    if side and side_ref in med:
        print(f"  side by side (one run per core, 1 thread each, as sweeps run their runs): "
              f"per-run time {med['side-by-side'] / med[side_ref]:.3f}x one {side_ref} run on "
              f"{timers[side_ref].threads} threads, "
              f"{med[side_ref] / med['side-by-side']:.2f}x the runs an hour")
    print(f"  limit: {flops / 1e9:.0f} GFLOP/epoch; GEMM peak now "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
          + f" -> fp32 {flops / 1e9 / peaks['fp32 onednn']:.2f} s, "
          f"bf16 {flops / 1e9 / peaks['bf16']:.2f} s per epoch")
    if parts and "fused-bf16" in med:
        # a member's share of the arithmetic can take no less than one run's at the GEMM peak
        print(f"  an ensemble member's arithmetic at the bf16 GEMM peak: "
              f"{flops / 1e9 / peaks['bf16'] / med['fused-bf16']:.3f}x one fused bf16 run (the "
              "floor of its per-run ratio)")
    if update and "fused-bf16" in med:
        # each member's update streams its weights and moments, however fast the GEMMs run
        per_run = update / 8 * per_epoch
        print(f"  8 members' Adam update alone (28 bytes a parameter, {params:,} a run; "
              f"measured after the rounds): {update * 1e3:.2f} ms a step, {per_run:.2f} s per "
              f"run-epoch: {per_run / med['fused-bf16']:.3f}x one fused bf16 run of the "
              "8-seed ratio is memory traffic")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--which", default="mlp,dcgan,default",
                    help="comma-separated cases: " + ", ".join(CASES))
    ap.add_argument("--batches", type=int, default=0,
                    help="batches per variant per round (default: a whole epoch for the MLP, "
                         f"as JAX's rounds time, {CONV_BATCHES} for the convolutional nets)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX reference")
    ap.add_argument("--variants", default="",
                    help="comma-separated gankit variants to time (default all): "
                         + ", ".join(VARIANTS) + ", ensemble, ensemble8-split, side-by-side; "
                         "old is always timed")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="time wall-clock (default) or CPU time of the process (steadier on a "
                         "shared machine; the plain loop's 2 threads count twice)")
    ap.add_argument("--profile", action="store_true",
                    help="also print the ops that take the old and bf16 steps' time")
    args = ap.parse_args()
    if args.clock == "cpu":
        CLOCK["clock"] = time.process_time
    train = load_dataset("mnist", "train")
    print(f"torch {torch.__version__}, {cpu_name()}, {os.cpu_count()} cores, 50k MNIST images, "
          f"{args.clock} clock")
    for key in args.which.split(","):
        if key not in CASES:
            raise SystemExit(f"unknown case {key!r}; valid: {', '.join(CASES)}")
        run_case(key, args, train)


if __name__ == "__main__":
    main()
