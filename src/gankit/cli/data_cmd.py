"""`gankit data fetch|show|info`: get datasets into the cache and look at them."""
from __future__ import annotations

import argparse
import time

from gankit.data import load_dataset


def fetch(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    for split in ("train-full", "test"):
        ds = load_dataset(args.dataset, split, data_dir=args.data_dir)
        print(f"{args.dataset} {split}: {len(ds)} images of shape {ds.shape}")
    print(f"done in {time.perf_counter() - t0:.2f} s")
    return 0


def show(args: argparse.Namespace) -> int:
    from gankit.data.show import show_dataset
    for path in show_dataset(args.dataset, args.out, data_dir=args.data_dir):
        print(f"wrote {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch datasets and look at them",
                       description="Fetch datasets into the cache and show what they hold.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    f = dsub.add_parser("fetch", help="fetch a dataset into the cache (later runs read the cache)")
    f.add_argument("dataset", help="mnist, fashion-mnist, cifar10, quickdraw, digits")
    f.add_argument("--data-dir", help="a folder holding the dataset's files (else GANKIT_DATA)")
    f.set_defaults(func=fetch)
    s = dsub.add_parser("show", help="grid of real images per class, class histogram, split table")
    s.add_argument("dataset")
    s.add_argument("--out", default="data-show", help="folder for the figures (default data-show)")
    s.add_argument("--data-dir", help="a folder holding the dataset's files")
    s.set_defaults(func=show)
