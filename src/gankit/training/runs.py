"""Run folders: where a run's files live, and loading a trained run back for use."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from torch import nn

from gankit.config import TrainConfig, from_dict


@dataclass(frozen=True)
class RunPaths:
    """The layout of one run folder (docs/ARCHITECTURE.md)."""
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def progression(self) -> Path:
        return self.root / "grids" / "progression.png"

    def grid(self, epoch: int) -> Path:
        return self.root / "grids" / f"epoch_{epoch:04d}.png"

    def grids(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every epoch grid, in order."""
        out = []
        for p in sorted((self.root / "grids").glob("epoch_*.png")):
            m = re.match(r"epoch_(\d+)\.png$", p.name)
            if m:
                out.append((int(m.group(1)), p))
        return out

    def checkpoint(self, name: str) -> Path:
        return self.root / "checkpoints" / f"{name}.pt"

    def read_metrics(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, epochs_done: int) -> None:
        """Drop records of epochs after the checkpoint being resumed (they will be redone)."""
        rows = self.read_metrics()
        keep = [r for r in rows if r.get("epoch", 0) <= epochs_done]
        if len(keep) != len(rows):
            self.metrics.write_text("".join(json.dumps(r) + "\n" for r in keep))


def read_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config a run was started with."""
    path = RunPaths(Path(run_dir)).config
    if not path.is_file():
        from gankit.training.checkpoint import CheckpointError
        raise CheckpointError(f"{run_dir} is not a gankit run folder (no config.yaml); "
                              "give the folder `gankit train --out` wrote")
    return from_dict(yaml.safe_load(path.read_text()))


def next_run_dir(base: str | Path, name: str) -> Path:
    """runs/00003-NAME: numbered, self-describing run folders (stylegan2-ada's convention)."""
    base = Path(base)
    nums = [int(m.group(1)) for p in base.glob("*") if (m := re.match(r"(\d{5})-", p.name))]
    return base / f"{max(nums, default=-1) + 1:05d}-{name}"


@dataclass
class Run:
    """A trained run loaded back: config, generator (EMA when on, eval mode) and discriminator."""
    path: Path
    cfg: TrainConfig
    G: nn.Module
    D: nn.Module
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    epoch: int

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.path)


def load_run(path: str | Path, which: str = "best", device: str = "cpu") -> Run:
    """Load a run folder's checkpoint `which` (best | last | a file name) for sampling/eval."""
    from gankit.data import load_dataset, qualified_name
    from gankit.models import build_models
    from gankit.training.checkpoint import check_compatible, load_checkpoint
    path = Path(path)
    cfg = read_config(path)
    ckpt_path = RunPaths(path).checkpoint(which)
    state = load_checkpoint(ckpt_path, device)
    from gankit.config import to_dict
    check_compatible(state, to_dict(cfg), ckpt_path)
    # The dataset gives the shape and classes; the validation split is small and cached.
    ds = load_dataset(qualified_name(cfg.data.name, cfg.data.classes), "val", cfg.data.data_dir)
    G, D = build_models(cfg.model, ds.shape, ds.num_classes if ds.labelled else 0)
    G.load_state_dict(state["G_ema"] if state.get("G_ema") is not None else state["G"])
    D.load_state_dict(state["D"])
    G.to(device).eval()
    D.to(device).eval()
    return Run(path, cfg, G, D, ds.shape, ds.classes, state["epoch"])
