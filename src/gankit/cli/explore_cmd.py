"""`gankit explore RUN`: report 002's latent-space experiments as PNG figures + index.json."""
from __future__ import annotations

import argparse
from pathlib import Path

from gankit.errors import UserError


def run(args: argparse.Namespace) -> int:
    from gankit.exploration.run import explore_run
    from gankit.training.runs import RunPaths
    paths = RunPaths(Path(args.run))
    paths.require_run()
    if not paths.checkpoint(args.which).is_file():
        raise UserError(f"{args.run} has no checkpoints/{args.which}.pt yet; train it first "
                        "(or choose --which last)")
    out = Path(args.out) if args.out else paths.explore_dir
    index = explore_run(args.run, which=args.which, out=out, seed=args.seed,
                        d_per_class=args.d_per_class, device=args.device)
    for f in index["figures"]:
        print(f"{out / f['file']}  {f['title']}")
    for note in index["notes"]:
        print(f"note: {note}")
    print(f"wrote {len(index['figures'])} figures and {out / 'index.json'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore", help="latent-space figures of a trained run (report 002's experiments)",
        description="Explore a trained generator: diversity within each class, class means "
                    "(z = 0), interpolation in z (linear and slerp) and between classes through "
                    "the label vector, noise on z and on the label vector, label vectors inside "
                    "and far outside the learnt range, and the discriminator's accuracy per "
                    "class. Unconditional runs get interpolation and noise in z. Writes PNGs "
                    "and index.json (title and caption of each figure) to RUN/explore.")
    p.add_argument("run", help="a run folder written by `gankit train`")
    p.add_argument("--which", default="best", choices=["best", "last"], help="checkpoint")
    p.add_argument("--out", help="output folder (default RUN/explore)")
    p.add_argument("--seed", type=int, default=0, help="noise seed: a seed identifies a figure")
    p.add_argument("--d-per-class", type=int, default=200, metavar="N",
                   help="real and generated images per class for D's per-class accuracy "
                        "(default 200; report 002 used 500; 0 skips it)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)
