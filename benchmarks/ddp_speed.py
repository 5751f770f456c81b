"""One process against N processes (DistributedDataParallel, gloo) on this machine.

    python benchmarks/ddp_speed.py [--preset mlp-cgan-m4] [--nproc 2] [--limit 6400] [--epochs 3]

Trains the same preset (fp32, same global batch) with `gankit train` on one process (with
one thread, and with all cores) and with `--nproc N` (N processes, cores / N threads each),
and prints the per-epoch time (median of the epochs after the first, from metrics.jsonl:
training plus the held-out pass, without start-up) and the scaling efficiency t1 / (N * tN)
against one process of one thread (the same resources per process).
Data parallelism splits the same cores N ways here: on a 2-core CPU it can at best match one
process using both cores; the figure shows its overhead, the tests show its correctness.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def epoch_time(preset: str, nproc: int, limit: int, epochs: int, out: Path,
               threads: int = 0) -> tuple[float, float]:
    """(median seconds per epoch after the first, wall seconds of the whole command)."""
    cmd = [sys.executable, "-m", "gankit", "train", "--preset", preset, "--nproc", str(nproc),
           "--quiet", "--out", str(out), "--set", f"data.limit={limit}", "--set",
           f"epochs={epochs}", "--set", "precision=fp32", "--set", "eval.every=0",
           "--set", "device=cpu", "--set", f"threads={threads}", "--set", "sample_every=1000"]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - t0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["time_s"] for r in rows[1:]), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mlp-cgan-m4")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--limit", type=int, default=6400, help="training images (data.limit)")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        t1, w1 = epoch_time(args.preset, 1, args.limit, args.epochs, Path(tmp) / "one", 1)
        tc, wc = epoch_time(args.preset, 1, args.limit, args.epochs, Path(tmp) / "all")
        tn, wn = epoch_time(args.preset, args.nproc, args.limit, args.epochs, Path(tmp) / "n")
    print(f"{args.preset}, {args.limit} images, fp32, {cores} cores "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"  1 process  (1 thread):   {t1:6.2f} s/epoch  ({w1:.0f} s with start-up)")
    print(f"  1 process  ({cores} threads):  {tc:6.2f} s/epoch  ({wc:.0f} s with start-up)")
    print(f"  {args.nproc} processes ({max(1, cores // args.nproc)} thread each): {tn:5.2f} "
          f"s/epoch  ({wn:.0f} s with start-up)")
    print(f"  speed-up {t1 / tn:.2f}x over 1 thread, {tc / tn:.2f}x over {cores} threads; scaling "
          f"efficiency t1 / ({args.nproc} x t{args.nproc}) = {t1 / (args.nproc * tn):.0%}")
    print(f"  (on {cores} cores shared with other work, {args.nproc} processes compete for the "
          "cores one process already uses: expect little; the point is correctness, which the "
          "tests check, not speed)")


if __name__ == "__main__":
    main()
