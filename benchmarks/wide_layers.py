"""Large convolutions as GEMMs (models/kernels.py's large-layer route) against oneDNN's.

    python benchmarks/wide_layers.py [--threads 1] [--widths 64,128,256,512,1000] [--fp32]
                                     [--rounds 3] [--steps 2] [--no-steps]

1. Each layer alone: a k4 s2 p1 convolution C -> 2C from 14 x 14 to 7 x 7 at batch 128 (the
   shape of a DCGAN D's second layer on MNIST; report 001's 1000-wide D is C = 1000), in bf16
   (and fp32 with --fp32), channels-last: milliseconds of the forward, the input gradient and
   the weight gradient by oneDNN (`F.conv2d`, `convolution_backward`) and as GEMMs over
   windows (`_gemm_conv`, `_gemm_conv_input_grad`, `_gemm_weight_grad`), medians of 3, and
   which one `kernels: fast` takes (LARGE_WEIGHT, LARGE_WEIGHT_FP32).
2. Training steps of report 001's two 1000-wide points (`dcgan-r001` with model.ndf=1000 or
   model.ngf=1000, bf16 where the CPU has it), with the route on and off
   (the bounds raised past every layer) in one process, in interleaved rounds: seconds a
   step (median) and the 5-epoch point's training time at that pace.

Compare the ratios within one run: this machine's speed drifts from hour to hour.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from gankit.config import resolve
from gankit.models import kernels
from gankit.training.loop import Trainer

CL = torch.channels_last
BATCH, SIZE, K, S, P = 128, 14, 4, 2, 1


def median_ms(f: Callable[[], object], n: int = 3) -> float:
    f()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def layer_row(c: int, dtype: torch.dtype) -> str:
    """One width's six timings and the route `kernels: fast` takes for it."""
    o, q = 2 * c, (SIZE + 2 * P - K) // S + 1
    x = torch.randn(BATCH, c, SIZE, SIZE).to(dtype).contiguous(memory_format=CL)
    w = (torch.randn(o, c, K, K) * 0.02).to(dtype).contiguous(memory_format=CL)
    g = torch.randn(BATCH, o, q, q).to(dtype).contiguous(memory_format=CL)
    s, p = (S, S), (P, P)

    def backward(mask: list[bool]) -> object:
        return torch.ops.aten.convolution_backward(g, x, w, None, s, p, [1, 1], False, [0, 0],
                                                   1, mask)
    onednn = (median_ms(lambda: F.conv2d(x, w, None, s, p)),
              median_ms(lambda: backward([True, False, False])),
              median_ms(lambda: backward([False, True, False])))
    gemm = (median_ms(lambda: kernels._gemm_conv(x, w, None, s, p)),
            median_ms(lambda: kernels._gemm_conv_input_grad(g, w, s, p, (SIZE, SIZE))),
            median_ms(lambda: kernels._gemm_weight_grad(x, g, (K, K), s, p, copy_gt=True)))
    large = kernels._large(w, BATCH * q * q * K * K * c, dtype == torch.bfloat16)
    cells = "  ".join(f"{a:8.1f} {b:8.1f} {b / a:5.2f}x" for a, b in zip(onednn, gemm))
    return f"  {c:>5} -> {o:<5} {w.numel() / 1e6:6.2f}M  {cells}  {'GEMMs' if large else 'oneDNN'}"


def layers(widths: list[int], dtypes: list[torch.dtype]) -> None:
    print(f"\n== each layer alone: k{K} s{S} p{P}, {SIZE}x{SIZE} -> 7x7, batch {BATCH}, "
          f"channels-last; ms (median of 3): oneDNN, GEMMs, GEMMs / oneDNN")
    for dtype in dtypes:
        print(f"  {str(dtype).removeprefix('torch.')}: {'layer':<12} {'weight':>7}  "
              f"{'forward':^25}  {'input gradient':^25}  {'weight gradient':^25}  fast takes")
        for c in widths:
            print(layer_row(c, dtype), flush=True)


def steps(rounds: int, n: int, threads: int) -> None:
    print(f"\n== training steps of report 001's 1000-wide points (dcgan-r001, batch 128, "
          f"{threads} thread{'s' * (threads > 1)}); {rounds} rounds of {n} steps each way")
    bounds = kernels.LARGE_WEIGHT, kernels.LARGE_WEIGHT_FP32

    def route(large: bool) -> None:
        kernels.LARGE_WEIGHT, kernels.LARGE_WEIGHT_FP32 = bounds if large else (1 << 62,) * 2
    for key in ("model.ndf", "model.ngf"):
        cfg = resolve("dcgan-r001", [f"{key}=1000", f"threads={threads}"])
        cfg = replace(cfg, val_diagnostics=cfg.batch_size,
                      data=replace(cfg.data, limit=cfg.batch_size * (rounds * 2 * n + 2)))
        times: dict[bool, list[float]] = {True: [], False: []}
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(cfg, tmp, progress=False)
            batches = iter(trainer.loader.epoch(0))
            for large in (True, False):  # warm-up: each route's first step builds its kernels
                route(large)
                trainer.train_step(*next(batches), do_g=True)
            for _ in range(rounds):
                for large in (True, False):
                    route(large)
                    for _ in range(n):
                        x, y = next(batches)
                        t0 = time.perf_counter()
                        trainer.train_step(x, y, do_g=True)
                        times[large].append(time.perf_counter() - t0)
        route(True)
        on, off = (statistics.median(times[k]) for k in (True, False))
        epoch_steps = -(-60_000 // cfg.batch_size)  # train-full, as the preset trains
        print(f"  {key}=1000 ({cfg.precision}): GEMMs {on:.2f} s a step, oneDNN {off:.2f}: "
              f"{on / off:.2f}x; {cfg.epochs} epochs {on * epoch_steps * cfg.epochs / 3600:.1f} "
              f"h against {off * epoch_steps * cfg.epochs / 3600:.1f} h", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--widths", default="64,128,256,512,1000",
                    help="input channels C of the C -> 2C layers timed alone")
    ap.add_argument("--fp32", action="store_true", help="time the layers in fp32 too")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2, help="steps a round, each way")
    ap.add_argument("--no-steps", action="store_true", help="time the layers only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtypes = [torch.bfloat16] + ([torch.float32] if args.fp32 else [])
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    layers([int(c) for c in args.widths.split(",")], dtypes)
    if not args.no_steps:
        steps(args.rounds, args.steps, args.threads)


if __name__ == "__main__":
    main()
