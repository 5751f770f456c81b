"""Checkpoints: the whole training state as state dicts, written atomically, read safely.

A checkpoint holds G, D, the EMA generator, both optimisers, the RNG states, the position
(epoch, batch), the partial epoch statistics and the resolved config; it is loaded with
`weights_only=True`, so loading one never runs code.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError

FORMAT_VERSION = 1

# Keys whose change makes a checkpoint incompatible with a config. Everything else
# (epochs, how often to sample or evaluate, the device) may change on resume.
RESUMABLE_KEYS = {"epochs", "device", "sample_every", "checkpoint_every", "eval", "notes", "report",
                  "preset"}


class CheckpointError(GankitError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """torch.save to a temporary name in the same folder, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True; a missing or corrupt file is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: has this run saved one yet? "
                              "(`ls` the run's checkpoints/ folder)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a gankit checkpoint "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); delete it "
                              "and resume from another one in the same folder "
                              "(e.g. best.pt or an epoch_NNNN.pt), or start the run again") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a gankit checkpoint of format "
                              f"{FORMAT_VERSION} (found {state.get('format') if isinstance(state, dict) else type(state).__name__})")
    return state


def config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts, ignoring RESUMABLE_KEYS."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        if not prefix and key in RESUMABLE_KEYS:
            continue
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            diffs.append(f"{prefix}{key}: checkpoint {va!r} vs config {vb!r}")
    return diffs


def check_compatible(state: dict, config: dict, path: str | os.PathLike) -> None:
    """Refuse a checkpoint whose config differs from the run's in anything that matters."""
    diffs = config_differences(state["config"], config)
    if diffs:
        raise CheckpointError(f"checkpoint {path} was written by a different config; it cannot "
                              "continue this run. Differences: " + "; ".join(diffs) +
                              ". Start a new run (--out NEW) or resume with the original config.")
