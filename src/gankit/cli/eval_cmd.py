"""`gankit eval RUN`, `gankit eval --pretrained NAME` and `gankit eval --real`: FID & co. of a
trained generator, of a pretrained one (test split by default; nothing is written unless
--out), or the floor.

RUN/eval/metrics.json maps an evaluation key "<which>-<split>-<features>" (e.g.
"best-test-classifier") to its record: {"run", "which", "split", "features", "feature_space",
"n", "seed", "dataset", "time_s", "metrics": {key: value}, "histogram", "real_histogram",
"confusion"}. A new evaluation replaces the record of its key and keeps the others.
Figures go to RUN/eval/<key>/ (class mean/std images, confusion matrix, class histogram).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gankit.errors import UserError
from gankit.metrics import keys as K
from gankit.fileio import atomic_write

ROWS = [(K.FID, "FID", "lower is better"), (K.KID, "KID", "unbiased MMD^2, ~0 = same"),
        (K.KID_STD, "KID std", "over 100 subsets"), (K.PRECISION, "precision", "k=3"),
        (K.RECALL, "recall", "k=3"), (K.DENSITY, "density", "k=5, ~1 for real"),
        (K.COVERAGE, "coverage", "k=5"), (K.IS, "IS (classifier)", "max = #classes"),
        (K.IS_STD, "IS std", "over 10 splits"), (K.MODES, "modes", ">= half fair share"),
        (K.CLASS_KL, "class KL", "vs uniform, nats"),
        (K.LABEL_ACC, "label accuracy", "conditional"),
        (K.INTRA_FID, "intra-class FID", "mean over classes"), (K.N, "n", "")]


def format_table(ev, classes: tuple[str, ...] | None = None) -> str:
    m = ev.metrics
    lines = [f"{'metric':<18}{'value':>12}   note"]
    for key, name, note in ROWS:
        if key in m:
            v = m[key]
            s = f"{v:.0f}" if key in (K.N, K.MODES) else f"{v:.5f}" if abs(v) < 10 else f"{v:.3f}"
            lines.append(f"{name:<18}{s:>12}   {note}")
    if ev.num_classes:
        names = classes or tuple(str(i) for i in range(ev.num_classes))
        lines += ["", f"{'class':<10}{'share':>8}{'label acc':>11}{'intra FID':>11}"]
        for k in range(ev.num_classes):
            def get(key: str) -> str:
                v = m.get(K.per_class(key, k))
                return "-" if v is None else f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
            lines.append(f"{names[k][:10]:<10}{get(K.SHARE):>8}{get(K.LABEL_ACC):>11}"
                         f"{get(K.INTRA_FID):>11}")
    return "\n".join(lines)


def recorded(args: argparse.Namespace) -> str | None:
    """The numbers a pretrained model's manifest records for this very request (same split,
    n, features and seed), to compare with what was just measured; None when it has none."""
    from gankit.pretrained import manifest_of
    test = manifest_of(args.pretrained).get("test") or {}
    if (test.get("split"), test.get("n"), test.get("features"), test.get("seed")) != \
            (args.split, args.n, args.features, args.seed):
        return None
    m = test.get("metrics", {})
    shown = (K.FID, K.PRECISION, K.RECALL, K.DENSITY, K.COVERAGE, K.LABEL_ACC, K.INTRA_FID)
    return "recorded in its manifest: " + ", ".join(
        f"{name} {m[key]:.5f}" for key, name, _ in ROWS if key in m and key in shown)


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def check_request(args: argparse.Namespace, base: "TrainConfig | None" = None) -> None:
    """Validate the config this evaluation amounts to (the run's, a pretrained model's `base`,
    or one naming --dataset for --real) with the command's evaluation settings, before the
    evaluation starts."""
    from gankit.config import TrainConfig
    from gankit.config.keys import apply
    from gankit.training.runs import read_config
    from gankit.training.validate import validate
    if args.real:
        base = apply(TrainConfig(), {"data.name": args.dataset, "data.data_dir": args.data_dir})
    elif base is None:
        base = read_config(args.run)
    cfg = apply(base, {"eval.every": 1, "eval.n": args.n, "eval.features": args.features,
                       "eval.split": args.split})
    validate(cfg, data=not args.real, warn=False)  # --real has no model to build


def run_eval(args: argparse.Namespace) -> int:
    from gankit.metrics.evaluate import evaluate_generator_full, evaluate_real
    from gankit.metrics.features import get_feature_space
    from gankit.metrics.figures import write_figures
    if bool(args.run) + bool(args.real) + bool(args.pretrained) != 1:
        raise UserError("give one of: a run folder (gankit eval RUN), --pretrained NAME, --real")
    if args.real and args.truncation is not None:
        raise UserError("--truncation samples a generator; --real has none: drop one of them")
    if args.split is None:  # a pretrained model is compared with the split of its manifest
        args.split = "test" if args.pretrained else "val"
    loaded, psi = None, None
    if args.pretrained:
        from gankit.pretrained import load_pretrained
        loaded = load_pretrained(args.pretrained)
    check_request(args, loaded.cfg if loaded else None)
    t0 = time.perf_counter()
    if args.real:
        ev = evaluate_real(args.dataset, n=args.n, features=args.features, seed=args.seed,
                           data_dir=args.data_dir, inception_weights=args.inception_weights,
                           class_images=bool(args.out))
        dataset, classes, title = args.dataset, None, (
            f"real vs real: {args.dataset} test against val, n={args.n}, {args.features} features")
        key, out_dir = f"real-test-vs-val-{args.features}", Path(args.out) if args.out else None
        record_extra = {"reference_split": "val", "other_split": "test"}
    else:
        from gankit.training.runs import load_run       # lazily: the training package is heavy
        run = loaded or load_run(args.run, which=args.which)
        dataset = run.cfg.data.name
        classes = tuple(run.classes) if run.classes else None
        data_dir = args.data_dir or run.cfg.data.data_dir
        from gankit.sampling import set_truncation
        psi = set_truncation(run.G, args.truncation)
        ev = evaluate_generator_full(run.G, dataset, args.split, args.n, args.features,
                                     args.seed, data_dir, run.cfg.data.scale,
                                     args.inception_weights, class_images=True)
        if loaded:
            title = (f"pretrained {args.pretrained} ({run.path}): {dataset} {args.split}, "
                     f"n={args.n}, {args.features} features")
            key = f"pretrained-{args.split}-{args.features}"
            out_dir = Path(args.out) if args.out else None
            record_extra = {"pretrained": args.pretrained, "split": args.split}
        else:
            title = (f"{args.run} ({args.which}): {dataset} {args.split}, n={args.n}, "
                     f"{args.features} features")
            key, out_dir = f"{args.which}-{args.split}-{args.features}", Path(args.run) / "eval"
            record_extra = {"run": str(args.run), "which": args.which, "split": args.split}
        if args.truncation is not None and psi != run.cfg.model.truncation_psi:
            key += f"-psi{psi:g}"  # beside, not over, the record at the run's own psi
            title += f", truncation psi {psi:g}"
    elapsed = time.perf_counter() - t0
    space = get_feature_space(args.features, dataset, args.inception_weights)
    if psi is not None:
        record_extra["truncation_psi"] = psi
    record = {**record_extra, "dataset": dataset, "features": args.features,
              "feature_space": space.id, "n": args.n, "seed": args.seed,
              "time_s": round(elapsed, 2), **ev.to_json()}
    if args.json:
        print(json.dumps(record, indent=2, allow_nan=False))
    else:
        print(title)
        print(format_table(ev, classes))
        print(f"({elapsed:.1f} s)")
        if loaded and (line := recorded(args)):
            print(line)
    if out_dir is not None:
        path = out_dir / "metrics.json"
        data = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError:
                print(f"gankit eval: {path} was not valid JSON; rewriting it", file=sys.stderr)
        data[key] = record
        _write_json(path, data)
        figs = write_figures(ev, out_dir / key, classes)
        print(f"wrote {path}" + (f" and {len(figs)} figures in {out_dir / key}" if figs else ""),
              file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="FID, KID, precision/recall, IS, class metrics of a run (or the real floor)",
        description="Evaluate a run's generator against a real split and write RUN/eval/"
                    "metrics.json and figures; or, with --real, measure the real-vs-real floor "
                    "(test split against validation split).")
    p.add_argument("run", nargs="?", help="a run folder written by `gankit train`")
    p.add_argument("--pretrained", metavar="NAME",
                   help="evaluate a pretrained model shipped with gankit (e.g. default) on the "
                        "test split; needs only the test split")
    p.add_argument("--real", action="store_true",
                   help="real vs real: the test split against the validation split (the floor)")
    p.add_argument("--dataset", default="mnist", help="dataset for --real (default mnist)")
    p.add_argument("--split", default=None, choices=["val", "test"],
                   help="real split to compare with (default val, test for --pretrained; "
                        "test once at the end)")
    p.add_argument("--n", type=int, default=10_000, help="images compared (default 10000)")
    p.add_argument("--features", default="classifier",
                   help="feature space: classifier (default: the reference classifier's 128-d "
                        "features) or inception")
    p.add_argument("--which", default="best", choices=["best", "last"], help="checkpoint")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--inception-weights",
                   help="path to pt_inception-2015-12-05-6726825d.pth (else "
                        "GANKIT_INCEPTION_WEIGHTS, torch hub's cache, or a download)")
    p.add_argument("--data-dir", help="a folder holding the dataset's files")
    p.add_argument("--out", help="with --real or --pretrained: folder for metrics.json and "
                                 "figures")
    p.add_argument("--json", action="store_true", help="print the record as JSON, not a table")
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="scale the latents by PSI (default: the run's model.truncation_psi, 1 "
                        "unless its preset says otherwise); recorded under its own key")
    p.set_defaults(func=run_eval)
