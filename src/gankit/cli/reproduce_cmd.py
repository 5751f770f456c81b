"""`gankit reproduce`: re-run a report's headline experiments and write REPRODUCTION.md."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.cli.args import count
from gankit.errors import UserError

if TYPE_CHECKING:
    from gankit.reproduce.registry import Report


def list_reports(which: str, extra: dict[str, Any], only: list[str]) -> None:
    """Each report's experiments (or those `--only` picks) with their estimated training time
    on this machine, with the command line's `--set` applied as a run would apply it."""
    from gankit.reproduce.registry import SCALES, select
    from gankit.reproduce.run import estimate, experiment_sweep, parse_only
    from gankit.training.estimate import SpeedMeter, fmt_duration
    reports = select(which)
    _one_report_for_only(reports, only)
    plan = []  # every experiment resolved first: a bad --set or --only before any output
    for report in reports:
        plan.append((report, [(exp, [experiment_sweep(exp, scale, extra, points)
                                     for scale in SCALES])
                              for exp, points in parse_only(report, only)]))
    width = max(len(exp.name) for _, experiments in plan for exp, _ in experiments)
    meter = SpeedMeter()
    print("estimated training time on this machine (a few timed batches x batches of every "
          "epoch; evaluation comes on top):")
    for report, experiments in plan:
        print(f"report {report.number}: {report.title}")
        for exp, sweeps in experiments:
            what = exp.sweep and f"sweep {exp.sweep}" or f"preset {exp.preset}"
            times = []
            for scale, sweep in zip(SCALES, sweeps):
                runs = estimate(sweep, meter)
                times.append(f"{scale} {fmt_duration(sum(s for _, s in runs))}")
            print(f"  {exp.name:<{width}} {what:<26} {len(runs)} run(s)  {', '.join(times)}  "
                  f"({len(exp.stated)} stated number(s))")


def _one_report_for_only(reports: list[Report], only: list[str]) -> None:
    """`--only` names experiments of one report: refuse it with `all`."""
    if only and len(reports) > 1:
        raise UserError("--only picks experiments of one report: give a report number, not `all`")


def run(args: argparse.Namespace) -> int:
    from gankit.config.keys import parse_override
    from gankit.reproduce.markdown import write_reproduction
    from gankit.reproduce.registry import select
    from gankit.reproduce.run import default_out, earlier_results, reproduce
    extra = dict(parse_override(s) for s in args.set)
    if args.list:
        list_reports(args.report or "all", extra, args.only)
        return 0
    if not args.report:
        raise UserError("give a report number (000 ... 004) or `all`; "
                        "`gankit reproduce --list` shows them")
    reports = select(args.report)
    _one_report_for_only(reports, args.only)
    failed = interrupted = False
    for report in reports:
        out = default_out(report, args.scale)
        if args.out:
            out = Path(args.out) / (f"r{report.number}" if len(reports) > 1 else "")
        results = reproduce(report, args.scale, out, args.jobs, extra, only=args.only)
        command = " ".join(["gankit reproduce", report.number, "--scale", args.scale]
                           + (["--jobs", str(args.jobs)] if args.jobs else [])
                           + [f"--only {shlex.quote(o)}" for o in args.only]
                           + ["--out", shlex.quote(str(out))]
                           + [f"--set {shlex.quote(s)}" for s in args.set])
        path = write_reproduction(report, results + earlier_results(report, results, out,
                                                                    args.scale, extra),
                                  out, args.scale, command, extra)
        print(path)
        failed |= any(r.failed for r in results)
        interrupted |= any(r.interrupted for r in results)
        if interrupted:
            return 130
    return 1 if failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="re-run a report's experiments; its numbers beside ours",
        description="Run the headline experiments of a report (000 ... 004, or all) through the "
                    "sweep runner (running it again resumes), then write REPRODUCTION.md in the "
                    "output folder: each number the report states beside gankit's, with the "
                    "metric, the feature space, the command and links to the figures.")
    p.add_argument("report", nargs="?", metavar="REPORT|all",
                   help="a report number (e.g. 004) or all")
    p.add_argument("--scale", choices=("full", "short"), default="full",
                   help="full: the report's lengths; short: a stated, much shorter version")
    p.add_argument("--jobs", type=count, metavar="N",
                   help="runs at a time, each with cores/N threads (default: one per core "
                        "when the runs train on the CPU with threads: 0, else 1)")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default reproductions/rNNN-SCALE; with all, DIR/rNNN)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for every run, applied last (e.g. a quicker test)")
    p.add_argument("--only", action="append", default=[], metavar="NAME[:POINTS]",
                   help="run only this experiment of the report (names in --list; repeat for "
                        "more), optionally only some points of its sweep, e.g. --only models:3 "
                        "(report 000's M4)")
    p.add_argument("--list", action="store_true",
                   help="list each report's experiments (with --only: those) and their "
                        "estimated time here, with --set applied")
    p.set_defaults(func=run)
