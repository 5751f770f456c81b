"""`gankit pretrained list|build`: the pretrained generators shipped with gankit.

`build RUN --name NAME` writes NAME.pt and NAME.json into the package (or --out): G's weights
of the run's checkpoint, their sha256 and the test-split metrics they reach. Rebuilding the
shipped default after a better recipe is: `gankit train --out runs/default` then
`gankit pretrained build runs/default --name default`.
"""
from __future__ import annotations

import argparse
import sys


def run_list(args: argparse.Namespace) -> int:
    from gankit.pretrained import PACKAGE_DIR, available, manifest_of
    names = available()
    if not names:
        print(f"no pretrained models in {PACKAGE_DIR}")
    for name in names:
        m = manifest_of(name)
        metrics = (m.get("test") or {}).get("metrics", {})
        shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("fid", "label_acc", "precision",
                                                            "recall") if k in metrics)
        src = m.get("source", {})
        print(f"{name}: preset {src.get('preset', '?')}, epoch {src.get('epoch', '?')}, "
              f"{m.get('bytes', 0) / 1024:.0f} KiB {m.get('dtype', '?')}; test: {shown}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from gankit.pretrained.build import build_pretrained
    manifest = build_pretrained(args.run, name=args.name, out=args.out, which=args.which,
                                dtype=args.dtype, n=args.n, seed=args.seed,
                                log=lambda msg: print(f"[gankit pretrained] {msg}",
                                                      file=sys.stderr, flush=True))
    check = manifest["dtype_check"]
    metrics = manifest["test"]["metrics"]
    print(f"wrote {manifest['file']} ({manifest['bytes'] / 1024:.0f} KiB, {manifest['dtype']}, "
          f"sha256 {manifest['sha256'][:16]}...) and its manifest")
    print(f"{manifest['dtype']} vs float32 on {check['n']} samples: max pixel difference "
          f"{check['max_pixel_diff']}" + (f", label accuracy {check['label_acc_stored']:.4f} "
                                          f"vs {check['label_acc_float32']:.4f}"
                                          if "label_acc_stored" in check else ""))
    print("test split: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrained", help="list or build the pretrained generators shipped "
                                          "with gankit",
                       description="Pretrained generators: `gankit sample|explore|eval|serve "
                                   "--pretrained NAME` use them without training.")
    subs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = subs.add_parser("list", help="the shipped pretrained models and their test metrics")
    ls.set_defaults(func=run_list)
    b = subs.add_parser("build", help="make a pretrained model from a run folder",
                        description="Write NAME.pt (G's weights, the EMA copy when the run "
                                    "kept one) and NAME.json (sha256, source run and commands, "
                                    "test-split metrics of 10k samples with the reference "
                                    "classifier's features) into the package folder.")
    b.add_argument("run", help="a run folder written by `gankit train`")
    b.add_argument("--name", default="default", help="model name (default: default)")
    b.add_argument("--which", default="best", choices=["best", "last"], help="checkpoint")
    b.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"],
                   help="stored weight type (default float16; checked against float32)")
    b.add_argument("--out", help="folder for NAME.pt and NAME.json (default: the package's "
                                 "src/gankit/pretrained)")
    b.add_argument("--n", type=int, default=10_000, help="test samples (default 10000)")
    b.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    b.set_defaults(func=run_build)
