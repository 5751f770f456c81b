"""`gankit tune`: Optuna search of a space of overrides, minimising validation FID."""
from __future__ import annotations

import argparse
import importlib.util
import sys

from gankit.cli.args import count
from gankit.errors import UserError

HEARTBEAT_S, GRACE_S = 60, 180   # gankit.sweeps.study's defaults (not imported: no Optuna here)


def add_shared_args(p: argparse.ArgumentParser, default: str = "sqlite:///OUT/optuna.db"
                    ) -> None:
    """--storage, --heartbeat and --grace: how workers on several machines share a study."""
    p.add_argument("--storage", metavar="URL",
                   help=f"database of the study, any SQLAlchemy URL (default {default}; "
                        "postgresql://USER:PASS@HOST/DB shares it between machines: pip install "
                        "'gankit[postgres]')")
    p.add_argument("--heartbeat", type=int, default=HEARTBEAT_S, metavar="S",
                   help=f"a running trial writes a heartbeat every S seconds (default "
                        f"{HEARTBEAT_S})")
    p.add_argument("--grace", type=int, default=GRACE_S, metavar="S",
                   help="a trial without a heartbeat for S seconds (its worker died) is marked "
                        f"failed and retried once by the next worker (default {GRACE_S})")


def run(args: argparse.Namespace) -> int:
    from gankit.sweeps.tune import best_summary, tune
    from gankit.sweeps.tune_file import load_tune
    from gankit.training.loop import Interrupted
    if importlib.util.find_spec("optuna") is None:  # an optional extra
        raise UserError("gankit tune needs Optuna: pip install 'gankit[tune]'")
    spec = load_tune(args.target, args.set)
    trials = args.trials or spec.trials
    if not trials:
        raise UserError("give --trials N (the study's total; or trials: in the tune file)")
    # what each worker process gets when --n-jobs starts several
    worker_args = [args.target, "--trials", str(trials), "--out", args.out]
    for flag, value in (("--storage", args.storage), ("--study", args.study),
                        ("--heartbeat", args.heartbeat), ("--grace", args.grace)):
        if value:
            worker_args += [flag, str(value)]
    for s in args.set:
        worker_args += ["--set", s]
    try:
        result = tune(spec, trials, out=args.out, storage=args.storage, study_name=args.study,
                      n_jobs=args.n_jobs, worker_args=worker_args, heartbeat=args.heartbeat,
                      grace=args.grace)
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"gankit: tune stopped ({e}); the study keeps its finished trials and retries "
              "the stopped one: run the same command again to continue", file=sys.stderr)
        return 130
    if args.worker:  # one of --n-jobs's processes: the parent prints the table
        return 0
    print(result.table, end="")
    print(best_summary(spec, result.study))
    print(f"trials: {result.out / 'trials.csv'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="search hyperparameters with Optuna (minimises validation FID)",
        description="Search a space of config overrides with Optuna, minimising validation FID "
                    "(metrics.jsonl val/fid; eval.every must be > 0), pruning trials whose FID "
                    "is worse than the median at the same epoch. TARGET is a tune file (preset:, "
                    "set:, space:, pruner:) or a preset name (searches both learning rates). "
                    "Several processes, on one machine or many, join one study through the "
                    "same --storage and --study; --trials counts all of them together.")
    p.add_argument("target", metavar="FILE.yaml|PRESET")
    p.add_argument("--trials", type=count, metavar="N",
                   help="finished (complete or pruned) trials the study should hold in total")
    p.add_argument("--out", default="tune",
                   help="folder for trial runs (OUT/STUDY/trial-NNNN) and the default SQLite "
                        "database (default: tune)")
    add_shared_args(p)
    p.add_argument("--study", metavar="NAME",
                   help="study name (default: the tune file's or preset's name)")
    p.add_argument("--n-jobs", type=count, default=1, metavar="K",
                   help="worker processes on this machine, each with cores/K threads (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for every trial, e.g. --set epochs=5 --set eval.n=2000")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)
