"""`gankit sweep`: run a grid or list of overrides of a preset, one run folder per point."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from gankit.cli.args import count
from gankit.cli.tune_cmd import add_shared_args
from gankit.errors import UserError


def print_estimates(sweep: Any) -> dict[str, float]:
    """Print and return each run's estimated training time on this machine (timed batches x
    batches), by name."""
    from gankit.training.estimate import SpeedMeter, fmt_duration
    meter = SpeedMeter()
    seconds = {r.name: meter.run_seconds(r.cfg) for r in sweep.runs}
    for r in sweep.runs:
        print(f"  {r.name}: {r.cfg.epochs} epochs, about {fmt_duration(seconds[r.name])}",
              file=sys.stderr)
    total = sum(seconds.values())
    print(f"gankit sweep {sweep.name}: about {fmt_duration(total)} of training in all "
          "(timed one run at a time on all cores: runs side by side finish sooner; "
          "evaluation on top)", file=sys.stderr, flush=True)
    return seconds


def run(args: argparse.Namespace) -> int:
    from gankit.sweeps.runner import default_out, prepare, run_sweep
    from gankit.sweeps.spec import load_sweep, select_points, shipped_names
    if args.list:
        print("\n".join(shipped_names()))
        return 0
    if not args.file:
        raise UserError("give a sweep file or the name of a shipped one "
                        f"({', '.join(shipped_names())})")
    sweep = load_sweep(args.file, args.set)
    if args.points:
        sweep = select_points(sweep, args.points)
    out = args.out or default_out(sweep)
    if args.storage:  # before the estimates, which time steps of every model for seconds
        from gankit.sweeps.study import check_url
        if args.jobs not in (None, 1):
            raise UserError("with --storage each `gankit sweep` is one worker: start one per "
                            "worker (e.g. K of them on this machine) instead of --jobs K")
        check_url(args.storage)
    seconds = None if args.no_estimate else print_estimates(sweep)
    if args.dry_run:
        planned = prepare(sweep, out)
        for p in planned:
            verb = {"done": "finished", "resume": f"resume at epoch {p.epoch + 1}",
                    "start": "start"}[p.action]
            print(f"{p.name}: {verb} ({out}/{p.name})")
        return 0
    compare = None
    if not args.no_report:
        from gankit.report.compare import compare_runs as compare
    if args.storage:
        from gankit.sweeps.shared import run_shared
        result = run_shared(sweep, out, args.storage, args.study, heartbeat=args.heartbeat,
                            grace=args.grace, compare=compare)
    else:
        result = run_sweep(sweep, out, jobs=args.jobs, compare=compare, seconds=seconds)
    print(result.summary, end="")
    print(f"table: {result.out / 'summary.md'}, {result.out / 'summary.csv'}")
    if result.report:
        print(result.report)
    if result.interrupted:
        return 130
    if result.failed:
        print(f"gankit sweep: {len(result.failed)} run(s) failed: {', '.join(result.failed)}")
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="run a sweep file: a preset with a grid or list of overrides",
        description="Run every point of a sweep file (a base preset plus a grid or a list of "
                    "overrides, optionally repeated over seeds) as its own run folder, then "
                    "write the comparison table DIR/summary.md and DIR/summary.csv. Running "
                    "it again skips finished points and resumes unfinished ones. Shipped "
                    "sweeps (`--list`) reproduce the reports' experiments. With --storage URL "
                    "the points are trials of a study in that database: run the same command "
                    "on several machines and each worker claims the next point "
                    "(docs/distributed.md).")
    p.add_argument("file", nargs="?", metavar="FILE.yaml|NAME",
                   help="a sweep file, or the name of a shipped one (e.g. r004-configs)")
    p.add_argument("--out", help="output folder (default: sweeps/NAME)")
    p.add_argument("--jobs", type=count, metavar="N",
                   help="runs at a time, each in its own process with cores/N threads "
                        "(default: one per core when the runs train on the CPU with "
                        "threads: 0, else 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for every point, applied last (e.g. --set epochs=1 for a "
                        "quick version; use another --out for it)")
    p.add_argument("--points", metavar="LIST",
                   help="run only these points (0-based, as the folder names: 0,2,5 or 1-3)")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip printing each run's estimated training time on this machine "
                        "before starting (a few timed batches per distinct model); runs side "
                        "by side then start in the sweep's order, not longest first")
    p.add_argument("--dry-run", action="store_true",
                   help="check every point and show what would run, then stop")
    p.add_argument("--no-report", action="store_true", help="skip `gankit report` at the end")
    p.add_argument("--list", action="store_true", help="list the shipped sweep files")
    add_shared_args(p, default="none: this process runs every point")
    p.add_argument("--study", metavar="NAME",
                   help="with --storage: the study holding the points (default sweep-NAME)")
    p.set_defaults(func=run)
