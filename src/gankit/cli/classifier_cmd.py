"""`gankit classifier train|check`: the reference classifiers behind gankit's feature space."""
from __future__ import annotations

import argparse
import json

from gankit.cli.args import count
from gankit.errors import UserError


def train(args: argparse.Namespace) -> int:
    from gankit.metrics.classifier import RECIPES, train_classifier
    if args.dataset not in RECIPES:
        raise UserError(f"no classifier recipe for {args.dataset!r}; known: {', '.join(RECIPES)}")
    s = train_classifier(args.dataset, out=args.out, data_dir=args.data_dir)
    print(f"wrote {s['path']} ({s['size_bytes'] / 1e6:.2f} MB)")
    print(f"val accuracy {s['val_acc']:.4%}, test accuracy {s['test_acc']:.4%}, "
          f"trained in {s['train_time_s']:.0f} s")
    print(f"sha256 {s['sha256']}")
    print(f"to ship it: WEIGHTS_SHA256[{args.dataset!r}] = \"{s['sha256']}\" in "
          "src/gankit/metrics/classifier.py")
    return 0


def check(args: argparse.Namespace) -> int:
    """Load the shipped classifier (sha256 checked) and measure its accuracy on val and test."""
    from gankit.data import load_dataset
    from gankit.metrics.classifier import accuracy, load_classifier
    clf = load_classifier(args.dataset, path=args.weights)
    out = {"classifier": clf.name, "sha256": clf.sha256,
           "recorded_test_acc": clf.meta.get("test_acc"),
           "train_time_s": clf.meta.get("train_time_s")}
    for split in ("val", "test"):
        ds = load_dataset(clf.meta["dataset"], split, data_dir=args.data_dir, limit=args.limit)
        out[f"{split}_acc"] = accuracy(clf.model, ds.images, ds.labels)
    print(json.dumps(out, indent=2))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classifier", help="train or check the reference classifiers (metrics)",
                       description="The reference classifiers whose penultimate layer is the "
                                   "default feature space for FID, KID, precision/recall.")
    csub = p.add_subparsers(dest="classifier_command", metavar="ACTION", required=True)
    t = csub.add_parser("train", help="train with the fixed recipe and write the weights file")
    t.add_argument("--dataset", default="mnist", help="mnist (default) or fashion-mnist")
    t.add_argument("--out", help="weights file (default: the one shipped in the package)")
    t.add_argument("--data-dir", help="a folder holding the dataset's files")
    t.set_defaults(func=train)
    c = csub.add_parser("check", help="verify the shipped weights and print their accuracy")
    c.add_argument("--dataset", default="mnist")
    c.add_argument("--weights", help="another weights file to check (sha256 not enforced)")
    c.add_argument("--data-dir", help="a folder holding the dataset's files")
    c.add_argument("--limit", type=count, help="only the first N images of each split")
    c.set_defaults(func=check)
