"""Data-path timings on a warm cache (targets from the foundation issue):

- loading MNIST's 50k training split from the cache into memory: < 2 s;
- the whole `gankit data fetch mnist` command, Python start-up and imports included: < 1 s.

    python benchmarks/data_load.py [--repeat N]

Uses the cache the CLI uses ($GANKIT_CACHE, else ~/.cache/gankit) and fetches MNIST into it
first if needed (not timed). Each figure is the median of N runs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from gankit.data.mnist import MNIST
    from gankit.data.sources import ensure_files
    ensure_files(MNIST)  # warm the cache (not timed)

    t0 = time.perf_counter()
    import torch  # noqa: F401  (what a training run pays once, before any data)
    torch_import = time.perf_counter() - t0

    from gankit.data import load_dataset
    load = median_time(lambda: load_dataset("mnist", "train"), args.repeat)
    ds = load_dataset("mnist", "train")
    assert len(ds) == 50_000 and ds.shape == (1, 28, 28)

    gankit = shutil.which("gankit", path=str(Path(sys.executable).parent)) or "gankit"
    cmd = [gankit, "data", "fetch", "mnist"]
    env = dict(os.environ)
    fetch = median_time(lambda: subprocess.run(cmd, check=True, env=env, capture_output=True),
                        args.repeat)

    print(f"load MNIST train (50,000 x 1x28x28 uint8) from the cache: {load:.3f} s "
          f"(target < 2 s; torch import before it, paid once per process: {torch_import:.2f} s)")
    print(f"`gankit data fetch mnist`, warm cache, wall incl. start-up: {fetch:.3f} s "
          "(target < 1 s)")


if __name__ == "__main__":
    main()
