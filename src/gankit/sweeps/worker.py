"""One run of a sweep, in its own process: `python -m gankit.sweeps.worker RUN_DIR [RUN_DIR ...]`.

RUN_DIR/config.yaml (written by the sweep) is the config to train; the run starts fresh, or
resumes from RUN_DIR/checkpoints/last.pt when there is one. Several RUN_DIRs (the seeds of one
point) train together as one ensemble (`training.ensemble.train_group`). Exit codes: 0 finished,
130 stopped by a signal (checkpoint saved), 3 non-finite loss, 2 any other user error (each a
`GankitError`, printed as one line), 1 a bug (with its traceback).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from gankit.errors import GankitError
from gankit.training.ensemble import train_group
from gankit.training.logging import Progress
from gankit.training.loop import Interrupted, resume, train
from gankit.training.runs import RunPaths, read_config


def train_folder(run_dir: Path, progress: Progress = True) -> None:
    """Train RUN_DIR/config.yaml into RUN_DIR, or resume it from its last checkpoint."""
    if RunPaths(run_dir).has_checkpoint():
        resume(run_dir, progress=progress)
    else:
        train(read_config(run_dir), run_dir, progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gankit.sweeps.worker")
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    parser.add_argument("--lines", action="store_true",
                        help="a line per epoch and per heartbeat, no bar (for a log file)")
    args = parser.parse_args(argv)
    progress = "lines" if args.lines else not args.quiet
    threads = os.environ.get("GANKIT_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    try:
        if len(args.run_dirs) == 1:
            train_folder(args.run_dirs[0], progress=progress)
        else:
            train_group([(read_config(d), d) for d in args.run_dirs], progress=progress)
    except GankitError as e:
        print(f"gankit: {e.kind}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # a second signal: stopped at once, the last checkpoint stays
        print("gankit: stopped at once; the last saved checkpoint is kept", file=sys.stderr)
        return Interrupted.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
