"""Checkpoints: the whole training state as state dicts, written atomically, read safely.

A checkpoint holds G, D, the EMA generator, both optimisers, the RNG states, the position
(epoch, batch), the partial epoch statistics, the resolved config and the data's image shape
and classes; it is loaded with `weights_only=True`, so loading one never runs code.
Saving `last.pt` keeps the one before as `last.prev.pt`, so an unreadable `last.pt` still
leaves a state to resume from.
"""
from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from gankit.config import keys
from gankit.errors import GankitError
from gankit.fileio import atomic_path
from gankit.training import fast

FORMAT_VERSION = 1

# Keys whose change makes a checkpoint incompatible with a config. Everything else
# (epochs, how often to sample or evaluate, the device) may change on resume.
# `step` (autograd | fused, training/fast.py) is the same training step up to float rounding:
# a run may continue with either (runs saved before it existed trained with autograd); so is
# `memory_format` (channels_last | contiguous: the same step up to rounding); `cpu_allocator`
# changes only where memory comes from; `kernels` (fast | plain) computes the same layers up to
# rounding; so does `threads` (a run started on one thread beside other work may go on with
# both cores once they are free).
RESUMABLE_KEYS = ("epochs", "device", "sample_every", "checkpoint_every", "eval", "notes",
                  "report", "preset", "step", "memory_format", "cpu_allocator", "kernels",
                  "threads")


class CheckpointError(GankitError):
    """A checkpoint that cannot be used; the message says why and what to do."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def previous(path: Path) -> Path:
    """last.pt -> last.prev.pt: where the checkpoint before `path` is kept."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike,
                    keep_previous: bool = False) -> Path:
    """torch.save atomically (fileio.atomic_path). With `keep_previous`, the file being
    replaced is kept as `previous(path)` first (a hard link, else a copy): at every moment
    `path` is a whole checkpoint and the one before it is kept beside it."""
    path = Path(path)
    if keep_previous and path.is_file():
        with atomic_path(previous(path)) as tmp:
            try:
                os.link(path, tmp)
            except OSError:  # file systems without hard links
                shutil.copyfile(path, tmp)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True; a missing or corrupt file is a CheckpointError.

    `mmap` maps the tensors instead of reading them (to read the position only)."""
    path = Path(path)
    if not path.is_file():
        where = _others(path) or f"has this run saved one yet? (`ls {path.parent}`)"
        raise CheckpointError(f"no checkpoint at {path}: {where}", "missing")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - arbitrary bytes fail torch's unpickler anyhow
        # Errors that say something about the file keep their text. Bytes that do not
        # unpickle raise UnpicklingError (whose text is advice on `weights_only`, which would
        # mislead here) or, for other garbage, whatever the unpickler trips on (IndexError,
        # KeyError, UnicodeDecodeError...): the file is not a torch save.
        text = "not a torch save file"
        if isinstance(e, (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError)):
            text = str(e).splitlines()[0].split(". ")[0][:200] if str(e) else ""
        why = f"{type(e).__name__}: {text}"
        choose = _others(path)
        fix = f"{choose} or start the run again" if choose else "start the run again"
        raise CheckpointError(f"checkpoint {path} is corrupt or not a gankit checkpoint ({why}); "
                              f"{fix}", f"unreadable ({why})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path} is not a gankit checkpoint of format "
                              f"{FORMAT_VERSION} (found {found})", f"format {found}")
    return state


def _others(path: Path) -> str | None:
    """The other checkpoints beside `path` and how to choose one (None when there are none):
    the fix an error about `path` offers."""
    others = (sorted(p.name for p in path.parent.glob("*.pt") if p != path)
              if path.parent.is_dir() else [])
    return (f"its folder holds {', '.join(others)} (choose one with --which; when resuming, "
            "--from)" if others else None)


def config_differences(a: dict, b: dict) -> list[str]:
    """Dotted keys whose values differ between two config dicts, ignoring RESUMABLE_KEYS.

    Both sides are compared as a Trainer records them (`fast.comparable`: `auto` resolved,
    settings an old run predates filled in), so a config that still says precision=auto and
    the run it started compare equal.
    """
    return [f"{k}: checkpoint {va!r} vs config {vb!r}"
            for k, va, vb in keys.diff(fast.comparable(a), fast.comparable(b),
                                       ignore=RESUMABLE_KEYS)]


def check_compatible(state: dict, config: dict, path: str | os.PathLike) -> None:
    """Refuse a checkpoint whose config differs from the run's in anything that matters."""
    diffs = config_differences(state["config"], config)
    if diffs:
        raise CheckpointError(f"checkpoint {path} was written by a different config; it cannot "
                              "continue this run. Differences: " + "; ".join(diffs) +
                              ". Start a new run (--out NEW) or resume with the original config.")


def load_resumable(candidates: list[Path], config: dict, device: Any = "cpu",
                   warn: Callable[[str], None] = print) -> tuple[dict[str, Any], Path]:
    """(state, path) of the first readable checkpoint in `candidates`, checked against `config`.

    The first candidate is the one asked for; when it cannot be read, the next readable one
    is used and `warn` says so. A checkpoint of another config is an error, not skipped.
    """
    problems: list[str] = []
    first_error: CheckpointError | None = None
    for path in candidates:
        if not path.is_file() and problems:
            continue
        try:
            state = load_checkpoint(path, device)
        except CheckpointError as e:
            first_error = first_error or e
            problems.append(f"{path} is {e.reason}")
            continue
        check_compatible(state, config, path)
        if problems:
            warn(f"{'; '.join(problems)}: resuming from {path} (epoch {state['epoch']}, "
                 f"batch {state['batch']}) instead")
        return state, path
    assert first_error is not None
    if len(candidates) == 1:
        raise first_error
    others = ", ".join(p.name for p in candidates[1:])
    raise CheckpointError(f"{problems[0]} and no other checkpoint ({others}) can be read: "
                          "nothing to resume from. Start the run again (`gankit train --out "
                          "NEW`) with the same config")
