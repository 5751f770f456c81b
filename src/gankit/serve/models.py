"""What `gankit serve` serves: trained generators with their discriminators and directions.

A `ServedModel` is built from a loaded `gankit.training.runs.Run`, whatever its source: a run
folder (`open_run_folder`) or a pretrained model shipped with gankit
(`gankit.pretrained.load_pretrained`: G alone, so its samples have no D score). Loading
checks the folder and checkpoint (or the pretrained file's sha256) first, so a wrong path is
one clear line at startup, not a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gankit.pretrained import load_pretrained
from gankit.serve.directions import Directions, coordinate_directions, principal_directions
from gankit.serve.errors import ServeError
from gankit.training.runs import Run, RunPaths, load_run

DIRECTIONS = 5   # sliders per basis


@dataclass
class ServedModel:
    """One generator on the page: its run (G and D in eval mode, only read by requests, so
    several requests may use it at once) and its slider directions per basis."""
    name: str
    run: Run
    directions: dict[str, Directions]

    @classmethod
    def from_run(cls, run: Run, name: str, k: int = DIRECTIONS, seed: int = 0) -> "ServedModel":
        G = run.G
        return cls(name, run, {"principal": principal_directions(G, k, seed=seed),
                               "z": coordinate_directions(int(G.nz), k)})

    @property
    def conditional(self) -> bool:
        return bool(getattr(self.run.G, "conditional", False))

    @property
    def num_classes(self) -> int:
        return int(self.run.G.num_classes) if self.conditional else 0

    @property
    def class_names(self) -> list[str]:
        k = self.num_classes
        names = list(self.run.classes or ())
        return [str(c) for c in names] if len(names) == k else [str(i) for i in range(k)]

    def info(self) -> dict:
        """What the page needs to know about this model (JSON-ready)."""
        G = self.run.G
        return {"name": self.name, "path": str(self.run.path), "epoch": self.run.epoch,
                "preset": self.run.cfg.preset, "arch": self.run.cfg.model.arch,
                "nz": int(G.nz), "conditional": self.conditional, "classes": self.class_names,
                "shape": list(self.run.shape),
                "directions": {b: [None if s != s else round(float(s), 4) for s in d.share]
                               for b, d in self.directions.items()}}


def open_run_folder(path: str | Path, which: str = "best", device: str = "cpu") -> Run:
    """Load a run folder's checkpoint `which`, or a GankitError saying what is missing."""
    paths = RunPaths(Path(path))
    if not paths.root.is_dir():
        raise ServeError(f"run folder {path} does not exist; give a folder written by "
                         "`gankit train --out`")
    if not paths.config.is_file():
        raise ServeError(f"{path} is not a run folder (no config.yaml); give a folder written "
                         "by `gankit train --out`")
    if not paths.checkpoint(which).is_file():
        raise ServeError(f"{path} has no checkpoints/{which}.pt; train it first (or choose "
                         "--which last)")
    return load_run(path, which=which, device=device)  # an unreadable one: CheckpointError


def load_models(runs: list[str], which: str = "best", device: str = "cpu",
                pretrained: list[str] = ()) -> list[ServedModel]:
    """The served models of run folders, named by their folder, then of pretrained models,
    named "pretrained NAME" (names made unique)."""
    if not 1 <= len(runs) + len(pretrained) <= 2:
        raise ServeError(f"serve takes one or two models (side by side): run folders and "
                         f"--pretrained NAME, got {len(runs) + len(pretrained)}")
    loaded = [(Path(p).resolve().name, open_run_folder(p, which, device)) for p in runs]
    loaded += [(f"pretrained {Path(n).stem}", load_pretrained(n, device)) for n in pretrained]
    out: list[ServedModel] = []
    for name, run in loaded:
        if any(m.name == name for m in out):
            name = f"{name} ({len(out) + 1})"
        out.append(ServedModel.from_run(run, name))
    return out
