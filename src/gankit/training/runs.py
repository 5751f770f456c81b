"""Run folders: where a run's files live, reading its metrics, and loading a trained run back.

`RunPaths` is the one owner of the layout of a run folder (docs/ARCHITECTURE.md); every other
module asks it for a path instead of joining names itself.
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from gankit.config import ConfigError, TrainConfig, from_dict, load_yaml, to_dict
from gankit.data import load_dataset, qualified_name
from gankit.errors import GankitError
from gankit.fileio import atomic_write
from gankit.models import build_models
from gankit.training import fast
from gankit.training.checkpoint import (CheckpointError, check_compatible, load_checkpoint,
                                        load_resumable)
from gankit.training.validate import validate


class RunFolderError(GankitError):
    """A folder that is not a gankit run, or a run file that cannot be read."""


def warn(msg: str) -> None:
    print(f"gankit: warning: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunPaths:
    """The layout of one run folder:

        config.yaml  metrics.jsonl  heartbeat.json  .lock  tb/  grids/epoch_NNNN.png
        grids/progression.png
        checkpoints/{last,last.prev,best}.pt  eval/metrics.json  eval/RECORD/*.png
        plots/  explore/  report.html
    """
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def lock(self) -> Path:
        """.lock: held by the process training the run (training/run_lock.py)."""
        return self.root / ".lock"

    @property
    def steps(self) -> Path:
        """steps.jsonl: training statistics every `log_every` steps (when it is > 0)."""
        return self.root / "steps.jsonl"

    @property
    def heartbeat(self) -> Path:
        """heartbeat.json: where the run is within its epoch and its pace, rewritten every
        half minute while it trains (training/logging.py; read by `gankit runs`)."""
        return self.root / "heartbeat.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def grids_dir(self) -> Path:
        return self.root / "grids"

    @property
    def progression(self) -> Path:
        return self.grids_dir / "progression.png"

    def grid(self, epoch: int) -> Path:
        return self.grids_dir / f"epoch_{epoch:04d}.png"

    def grids(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every epoch grid, in order."""
        out = []
        for p in sorted(self.grids_dir.glob("epoch_*.png")):
            m = re.match(r"epoch_(\d+)\.png$", p.name)
            if m:
                out.append((int(m.group(1)), p))
        return out

    def last_grid(self) -> tuple[int, Path] | None:
        grids = self.grids()
        return grids[-1] if grids else None

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, name: str) -> Path:
        """checkpoints/NAME.pt: "last", "best", or "last.prev" (the last before the last)."""
        return self.checkpoints / f"{name}.pt"

    def resume_candidates(self, which: str = "last") -> list[Path]:
        """The checkpoints `--resume --from which` may use, the asked one first.

        "last" falls back to the previous last and then to best when it cannot be read;
        "best" and a file name (a path, or a name in checkpoints/ with or without .pt) are
        taken as they are; a relative name found nowhere is taken inside checkpoints/, so that
        its error lists the checkpoints the run has.
        """
        if which == "last":
            return [self.checkpoint("last"), self.checkpoint("last.prev"), self.checkpoint("best")]
        if which == "best":
            return [self.checkpoint("best")]
        path = Path(which)
        if not path.exists() and not path.is_absolute():
            inside, named = self.checkpoints / path, self.checkpoint(which)
            path = named if named.exists() and not inside.exists() else inside
        return [path]

    def has_checkpoint(self) -> bool:
        """True once training saved a state to resume from."""
        return any(p.is_file() for p in self.resume_candidates("last")[:2])

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def eval_metrics(self) -> Path:
        return self.eval_dir / "metrics.json"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def explore_dir(self) -> Path:
        return self.root / "explore"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def is_run(self) -> bool:
        return self.config.is_file()

    def require_run(self) -> None:
        """A RunFolderError unless this is a run folder."""
        if not self.is_run():
            raise RunFolderError(f"{self.root} is not a run folder (no config.yaml); give a "
                                 "folder written by `gankit train --out`")

    def config_dict(self) -> dict[str, Any]:
        """config.yaml as a plain dict ({} when absent); a ConfigError naming the line when it
        is not valid YAML, or saying so when it holds no mapping (a comparison showed such a
        run's config as all missing, and a report its preset as "?", without a word)."""
        try:
            text = self.config.read_text()
        except OSError:
            return {}
        return config_mapping(text, self.config)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl (see `read_records`)."""
        return read_records(self.metrics)[0]

    def last_record(self) -> dict[str, Any]:
        """The last record of metrics.jsonl ({} when there is none)."""
        rows = self.read_metrics()
        return rows[-1] if rows else {}

    def read_steps(self) -> list[dict[str, Any]]:
        """The records of steps.jsonl ([] when the run logged per epoch only)."""
        return read_records(self.steps)[0]

    def truncate_metrics(self, epochs_done: int, steps_done: int | None = None) -> None:
        """Drop records of epochs (and of steps.jsonl, steps) after the checkpoint being
        resumed (they will be redone), and a torn last line, so that new records start on a
        line of their own."""
        _truncate(self.metrics, "epoch", epochs_done)
        if steps_done is not None:
            _truncate(self.steps, "step", steps_done)


def _truncate(path: Path, key: str, done: int) -> None:
    """Keep the records of a JSON-lines file whose `key` is at most `done`."""
    rows, torn = read_records(path, quiet=True)
    keep = [r for r in rows if r.get(key, 0) <= done]
    if torn or len(keep) != len(rows):
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in keep))


def read_records(path: Path, quiet: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """(records, torn) of a JSON-lines file: the one reader of metrics.jsonl.

    A last line cut short (a kill while writing it) is skipped with one warning and reported
    as `torn`; a bad line before the end is a RunFolderError naming the file and line.
    """
    if not path.is_file():
        return [], False
    lines = path.read_text(errors="replace").split("\n")
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    rows = []
    for i, line in enumerate(lines[:last + 1]):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i < last:
                raise RunFolderError(f"{path}, line {i + 1}: not a JSON record ({e.msg}); the "
                                     "file was edited or damaged: fix or delete that line"
                                     ) from None
            if not quiet:
                warn(f"{path}: the last line is cut short (a run stopped while writing it); "
                     "skipped")
            return rows, True
    return rows, False


def epochs_done(records: list[dict[str, Any]]) -> int:
    """The last epoch metrics.jsonl's records hold (0 for none); a ValueError or TypeError
    when a record's epoch is not a whole number (the file was edited)."""
    return max((int(r.get("epoch", 0)) for r in records), default=0)


def progress(paths: RunPaths, records: list[dict[str, Any]], epochs: int | None) -> str:
    """How far a run got, from its folder: "done" (a checkpoint, and a record of its last
    epoch), "partial" (a record or a checkpoint: `--resume` goes on from it) or "pending"
    (nothing yet). The one vocabulary of `gankit sweep`'s tables and `gankit runs`."""
    has_checkpoint = paths.has_checkpoint()
    if has_checkpoint and epochs is not None and epochs_done(records) >= epochs:
        return "done"
    return "partial" if has_checkpoint or records else "pending"


def read_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config a run was started with."""
    paths = RunPaths(Path(run_dir))
    paths.require_run()
    # read here, not by config_dict: a file that exists but cannot be read is an error, not {}
    return from_dict(fast.with_legacy(config_mapping(paths.config.read_text(), paths.config)))


def config_mapping(text: str, path: Path) -> dict[str, Any]:
    """The mapping a run's config.yaml (`text`, read from `path`) holds; a ConfigError naming
    the line when it is not valid YAML, or saying so when it holds no mapping."""
    data = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no config mapping (a {type(data).__name__}); restore "
                          "the file written by `gankit train`")
    return data


def next_run_dir(base: str | Path, name: str) -> Path:
    """runs/00003-NAME: numbered, self-describing run folders (stylegan2-ada's convention)."""
    base = Path(base)
    nums = [int(m.group(1)) for p in base.glob("*") if (m := re.match(r"(\d{5})-", p.name))]
    return base / f"{max(nums, default=-1) + 1:05d}-{name}"


@dataclass
class Run:
    """A trained run loaded back: config, generator (EMA when on, eval mode) and discriminator
    (None for a pretrained model, which ships G alone: `gankit.pretrained`)."""
    path: Path
    cfg: TrainConfig
    G: nn.Module
    D: nn.Module | None
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    epoch: int

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.path)


def data_info(state: dict[str, Any], cfg: TrainConfig) -> tuple[tuple[int, int, int],
                                                                  tuple[str, ...], int]:
    """(image shape, class names, classes the models condition on) of a run.

    Checkpoints store them (`Trainer.save`), so a trained run samples without its training
    data; older checkpoints without them read the (small, cached) validation split.
    """
    info = state.get("data")
    if isinstance(info, dict) and "shape" in info:
        classes = tuple(info.get("classes") or ())
        return tuple(info["shape"]), classes, int(info.get("num_classes", 0))
    ds = load_dataset(qualified_name(cfg.data.name, cfg.data.classes), "val", cfg.data.data_dir)
    return ds.shape, ds.classes, ds.num_classes if ds.labelled else 0


def load_run(path: str | Path, which: str = "best", device: str = "cpu") -> Run:
    """Load a run folder's checkpoint `which` (best | last | a file) for sampling/eval."""
    path = Path(path)
    cfg = read_config(path)
    # The run's config, checked as every entry point checks it (the data is not needed).
    validate(dataclasses.replace(cfg, device=str(device)), data=False, warn=False)
    paths = RunPaths(path)
    ckpt_path = paths.resume_candidates(which)[0]
    state = load_checkpoint(ckpt_path, device)
    check_compatible(state, to_dict(cfg), ckpt_path)
    shape, classes, num_classes = data_info(state, cfg)
    G, D = build_models(cfg.model, shape, num_classes)
    G.load_state_dict(state["G_ema"] if state.get("G_ema") is not None else state["G"])
    D.load_state_dict(state["D"])
    G.to(device).eval()
    D.to(device).eval()
    return Run(path, cfg, G, D, shape, classes, state["epoch"])


def resume_state(paths: RunPaths, which: str, config: dict[str, Any],
                 device: Any = "cpu") -> tuple[dict[str, Any], Path]:
    """The training state to resume a run from (see `RunPaths.resume_candidates`)."""
    return load_resumable(paths.resume_candidates(which), config, device, warn)


__all__ = ["CheckpointError", "Run", "RunFolderError", "RunPaths", "data_info", "load_run",
           "next_run_dir", "read_config", "read_records", "resume_state"]
