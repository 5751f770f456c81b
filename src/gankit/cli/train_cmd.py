"""`gankit train`: train a preset by name, or continue a run."""
from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    from gankit.config import resolve
    from gankit.training.loop import Interrupted, NonFiniteLoss, resume, train
    from gankit.training.runs import next_run_dir
    try:
        if args.resume:
            if args.set or args.preset:
                extra = [s for s in args.set if not s.startswith("epochs=")]
                if extra or args.preset:
                    print("gankit: error: --resume takes the run's own config; only "
                          "--set epochs=N may change", file=sys.stderr)
                    return 2
            epochs = next((int(s.split("=", 1)[1]) for s in args.set), None)
            out = resume(args.resume, epochs=epochs, progress=not args.quiet, which=args.which)
        else:
            cfg = resolve(args.preset or "default", args.set)
            if args.device:
                cfg.device = args.device
            out = args.out or next_run_dir(args.runs, cfg.preset)
            out = train(cfg, out, progress=not args.quiet)
    except Interrupted as e:
        print(f"gankit: {e}", file=sys.stderr)
        return 130
    except NonFiniteLoss as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return 3
    print(out)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a preset (default: the `default` preset)",
                       description="Train a GAN from a named preset; `gankit presets` lists them.")
    p.add_argument("--preset", help="preset name (default: default)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set epochs=3 --set optim.g_lr=1e-4")
    p.add_argument("--out", help="run folder (default: runs/NNNNN-PRESET)")
    p.add_argument("--runs", default="runs", help="parent of numbered run folders (default runs)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN")
    p.add_argument("--from", dest="which", default="last", metavar="best|last|FILE",
                   help="with --resume: the checkpoint to continue from (default last; an "
                        "unreadable last.pt falls back to last.prev.pt, then best.pt)")
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: the preset's, auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.set_defaults(func=run)
