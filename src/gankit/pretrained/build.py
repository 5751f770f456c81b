"""Building a pretrained model from a run folder: `gankit pretrained build RUN --name NAME`.

Writes NAME.pt (G's weights, the EMA copy when the run kept one, in a small dtype) and
NAME.json (its sha256, where it came from, the metrics it reaches on the test split). Before
writing, the stored dtype is checked against float32 on the same samples: the largest pixel
difference and the label accuracy of both are recorded, so a lossy dtype is visible.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from gankit import __version__
from gankit.config import resolve, to_dict
from gankit.config.keys import diff
from gankit.data.datasets import split_name
from gankit.errors import UserError
from gankit.fileio import atomic_path, atomic_write
from gankit.metrics.classifier import accuracy, classifier_for, load_classifier
from gankit.metrics.evaluate import evaluate_generator, sample_for_eval
from gankit.pretrained.store import (FORMAT_VERSION, KIND, NAME_RE, PACKAGE_DIR, Files,
                                     load_pretrained, sha256_bytes)
from gankit.training import fast
from gankit.training.runs import Run, load_run

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
# Settings that say where and how fast a run trained, not what it learnt.
NOT_RECIPE = ("device", "precision", "compile", "step", "memory_format", "cpu_allocator",
              "kernels", "threads", "notes", "report")


def state_in(G: torch.nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """G's state dict with floating tensors cast to `dtype` (integer buffers kept)."""
    return {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu().clone()
            for k, v in G.state_dict().items()}


def train_command(run: Run) -> str:
    """The `gankit train` command line that trains a run like this one (its preset plus the
    settings it changed)."""
    base = fast.comparable(to_dict(resolve(run.cfg.preset)))
    mine = fast.comparable(to_dict(run.cfg))
    sets = [f"--set {k}={json.dumps(b) if not isinstance(b, str) else b}"
            for k, a, b in diff(base, mine, ignore=NOT_RECIPE + ("preset",))]
    return " ".join(["gankit train --preset", run.cfg.preset, *sets, "--out", str(run.path)])


def dtype_check(run: Run, stored: Run, n: int, seed: int) -> dict[str, Any]:
    """The same n samples from the float32 G and the stored one: the largest pixel difference
    (0-255) and, when conditional, the reference classifier's label accuracy of each."""
    scale = run.cfg.data.scale
    a, y = sample_for_eval(run.G, n, seed, scale)
    b, _ = sample_for_eval(stored.G, n, seed, scale)
    out: dict[str, Any] = {"n": len(a), "seed": seed,
                           "max_pixel_diff": int((a.int() - b.int()).abs().max())}
    if y is not None:
        base, _ = split_name(run.cfg.data.name)
        clf = load_classifier(classifier_for(base)).model
        out["label_acc_float32"] = round(accuracy(clf, a, y), 4)
        out["label_acc_stored"] = round(accuracy(clf, b, y), 4)
    return out


def build_pretrained(run_dir: str | Path, name: str = "default", out: str | Path | None = None,
                     which: str = "best", dtype: str = "float16", n: int = 10_000,
                     seed: int = 0, log=print) -> dict[str, Any]:
    """Write out/NAME.pt and out/NAME.json (out: the package folder) from a run's checkpoint
    `which`, evaluated on the test split with the reference classifier's features; returns
    the manifest."""
    if not NAME_RE.match(name):
        raise UserError(f"--name {name!r}: use letters, digits, '-', '_' or '.'")
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    out = Path(out) if out is not None else PACKAGE_DIR
    run = load_run(run_dir, which=which)
    blob = {"format": FORMAT_VERSION, "kind": KIND, "name": name, "config": to_dict(run.cfg),
            "data": {"shape": list(run.shape), "classes": list(run.classes),
                     "num_classes": int(run.G.num_classes)},
            "epoch": run.epoch, "dtype": dtype,
            "weights": "G_ema" if run.cfg.ema > 0 else "G",
            "G": state_in(run.G, DTYPES[dtype])}
    files = Files(name, out / f"{name}.pt", out / f"{name}.json")
    with atomic_path(files.weights) as tmp:
        torch.save(blob, tmp)
    data = files.weights.read_bytes()
    manifest: dict[str, Any] = {
        "name": name, "file": files.weights.name, "sha256": sha256_bytes(data),
        "bytes": len(data), "dtype": dtype, "gankit_version": __version__,
        "source": {"run": str(run_dir), "checkpoint": which, "epoch": run.epoch,
                   "weights": "EMA of G" if run.cfg.ema > 0 else "G",
                   "preset": run.cfg.preset, "train_command": train_command(run),
                   "build_command": f"gankit pretrained build {run_dir} --name {name} "
                                    f"--which {which} --dtype {dtype}"},
    }
    atomic_write(files.manifest, json.dumps(manifest, indent=2) + "\n")
    stored = load_pretrained(str(files.weights))  # what users will load: verified, cast back
    log(f"checking {dtype} against float32 on 1000 samples")
    manifest["dtype_check"] = dtype_check(run, stored, 1000, seed)
    log(f"evaluating on the test split ({n} samples, classifier features)")
    t0 = time.perf_counter()
    metrics = evaluate_generator(stored.G, run.cfg.data.name, split="test", n=n,
                                 features="classifier", seed=seed,
                                 data_dir=run.cfg.data.data_dir, scale=run.cfg.data.scale)
    manifest["test"] = {"split": "test", "n": n, "features": "classifier", "seed": seed,
                        "truncation_psi": float(stored.G.truncation_psi),
                        "time_s": round(time.perf_counter() - t0, 1),
                        "metrics": {k: round(float(v), 6) for k, v in metrics.items()}}
    atomic_write(files.manifest, json.dumps(manifest, indent=2) + "\n")
    return manifest
