"""`gankit report RUN` (one run's HTML page) and `gankit report RUN1 RUN2 ...` (comparison)."""
from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.args import at_least, count


def run(args: argparse.Namespace) -> int:
    from gankit.report.html import write_comparison, write_run_report
    from gankit.training.runs import RunPaths
    for r in args.runs:
        RunPaths(Path(r)).require_run()
    if len(args.runs) == 1:
        out = RunPaths(Path(args.out)).report if args.out else None
        path = write_run_report(args.runs[0], out=out, which=args.which,
                                explore=not args.no_explore, embed=args.embed, seed=args.seed,
                                device=args.device, n_samples=args.n_samples,
                                d_per_class=args.d_per_class)
    else:
        path = write_comparison(args.runs, args.out or "comparison", embed=args.embed)
    print(f"wrote {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="a static HTML page of a run (or a comparison of several runs)",
        description="One run: write RUN/report.html with its config, a metrics table (last "
                    "epoch's diagnostics and eval/metrics.json), training curves, grids, "
                    "samples and the exploration figures; plots are (re)written to RUN/plots, "
                    "and `gankit explore` runs first when RUN/explore/index.json is missing. "
                    "Several runs: a comparison page (metrics side by side, config differences, "
                    "overlaid curves, final grids) in --out DIR. The pages work offline.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s)")
    p.add_argument("--out", help="folder for the page: default RUN for one run (RUN/report.html), "
                                 "./comparison for several")
    p.add_argument("--which", default="best", choices=["best", "last"],
                   help="checkpoint for samples and exploration (default best)")
    p.add_argument("--no-explore", action="store_true",
                   help="do not run the exploration when RUN/explore/index.json is missing")
    p.add_argument("--embed", action="store_true",
                   help="inline the images as data URIs: one self-contained HTML file")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the sample figures")
    p.add_argument("--n-samples", type=count, default=2000, metavar="N",
                   help="samples for the class-distribution plot (default 2000)")
    p.add_argument("--d-per-class", type=at_least(0), default=200, metavar="N",
                   help="when the exploration runs: images per class for D's per-class "
                        "accuracy (default 200; 0 skips it)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)
