"""`gankit runs [DIR ...]`: every run folder below some folders, one line each."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

SORTS = ("path", "fid", "updated")  # report/run_list.py's sort_rows


def run(args: argparse.Namespace) -> int:
    from gankit.report.run_list import as_dicts, find_runs, run_row, sort_rows, table
    roots = args.dirs or ["."]
    rows = sort_rows([run_row(p) for p in find_runs(roots)], args.sort)
    if args.json:
        print(json.dumps(as_dicts(rows), indent=1))
    elif not rows:
        print(f"no run folders below {', '.join(roots)} (a run folder holds config.yaml; "
              "`gankit train --out DIR` writes one)")
    else:
        print(table(rows, base=Path.cwd()))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runs", help="list the run folders below some folders: state, epochs, FIDs",
        description="One line per run folder found at or below each DIR (default: the "
                    "current folder; hidden folders are skipped): its preset; its state: "
                    "training (a process trains it now: its pid), done, partial (stopped "
                    "before its last epoch: `gankit train --resume RUN` continues it), "
                    "pending (nothing yet) or unreadable; epochs done and the training time the "
                    "rest take at the run's own pace; the last and the lowest validation FID; the "
                    "last validation label accuracy; the test FID of `gankit eval RUN --split "
                    "test`; when its files last changed. Reads only the runs' small files and "
                    "locks, never a checkpoint.")
    p.add_argument("dirs", nargs="*", metavar="DIR", help="folders to search (default .)")
    p.add_argument("--sort", choices=SORTS, default="path",
                   help="path (default), fid (lowest best validation FID first) or updated "
                        "(newest first)")
    p.add_argument("--json", action="store_true", help="the rows as JSON, for scripts")
    p.set_defaults(func=run)
