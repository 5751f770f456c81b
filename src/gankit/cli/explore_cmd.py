"""`gankit explore RUN`: report 002's latent-space experiments as PNG figures + index.json."""
from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.args import at_least
from gankit.errors import UserError


def run(args: argparse.Namespace) -> int:
    from gankit.exploration.run import explore
    from gankit.pretrained.source import check_source, load_source
    from gankit.training.runs import RunPaths
    check_source(args.run, args.pretrained)
    if args.pretrained:
        out = Path(args.out or f"explore-{Path(args.pretrained).stem}")
    else:
        paths = RunPaths(Path(args.run))
        paths.require_run()
        if not paths.checkpoint(args.which).is_file():
            raise UserError(f"{args.run} has no checkpoints/{args.which}.pt yet; train it "
                            "first (or choose --which last)")
        out = Path(args.out) if args.out else paths.explore_dir
    loaded = load_source(args.run, args.pretrained, which=args.which, device=args.device)
    index = explore(loaded, out, which="pretrained" if args.pretrained else args.which,
                    seed=args.seed, d_per_class=args.d_per_class)
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
    p.add_argument("run", nargs="?", help="a run folder written by `gankit train`")
    p.add_argument("--pretrained", metavar="NAME",
                   help="explore a pretrained model shipped with gankit instead of a run "
                        "(e.g. default; figures go to explore-NAME unless --out)")
    p.add_argument("--which", default="best", choices=["best", "last"], help="checkpoint")
    p.add_argument("--out", help="output folder (default RUN/explore, or explore-NAME)")
    p.add_argument("--seed", type=int, default=0, help="noise seed: a seed identifies a figure")
    p.add_argument("--d-per-class", type=at_least(0), default=200, metavar="N",
                   help="real and generated images per class for D's per-class accuracy "
                        "(default 200; report 002 used 500; 0 skips it)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)
