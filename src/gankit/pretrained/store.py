"""Pretrained generators shipped inside the package: finding, verifying and loading them.

A pretrained model NAME is two files side by side (here, in the package folder, or anywhere
when given as a path):

    NAME.pt    {"format", "kind", "name", "config", "data", "epoch", "dtype", "weights", "G"}:
               the run's resolved config (what rebuilds G), the image shape and classes, and
               G's weights (the EMA copy when the run kept one) stored in `dtype`
    NAME.json  the manifest: the sha256 of NAME.pt, where it came from (run, checkpoint,
               commands) and the metrics it reaches on the test split (`gankit.pretrained.build`)

Loading checks the sha256 of the bytes before unpickling them (weights_only=True), so a
damaged or replaced file is refused with one line instead of giving other numbers.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.config import from_dict
from gankit.errors import GankitError
from gankit.models import build_models
from gankit.training import fast
from gankit.training.runs import Run

FORMAT_VERSION = 1
KIND = "gankit-pretrained"
PACKAGE_DIR = Path(__file__).resolve().parent
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
REBUILD = "gankit pretrained build RUN --name NAME"


class PretrainedError(GankitError):
    """A pretrained model that is unknown, missing, damaged or of another format."""


@dataclass(frozen=True)
class Files:
    """The two files of a pretrained model."""
    name: str
    weights: Path
    manifest: Path


def available(folder: Path = PACKAGE_DIR) -> list[str]:
    """Names of the pretrained models in `folder` (a manifest with its weights beside it)."""
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".pt").is_file())


def locate(name: str) -> Files:
    """The files of a shipped model NAME, or of a path to NAME.pt / NAME.json."""
    looks_like_path = name.endswith((".pt", ".json")) or "/" in name or "\\" in name
    if looks_like_path:
        base = Path(name).with_suffix("")
        files = Files(base.name, base.with_suffix(".pt"), base.with_suffix(".json"))
        for p in (files.weights, files.manifest):
            if not p.is_file():
                raise PretrainedError(f"{p} not found: a pretrained model is NAME.pt with its "
                                      f"manifest NAME.json beside it (written by `{REBUILD}`)")
        return files
    names = available()
    if name not in names:
        raise PretrainedError(f"no pretrained model {name!r}; available: "
                              f"{', '.join(names) or 'none'} (or give a path to NAME.pt)")
    return Files(name, PACKAGE_DIR / f"{name}.pt", PACKAGE_DIR / f"{name}.json")


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest as a dict, or a PretrainedError naming the file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PretrainedError(f"{path}: unreadable manifest ({type(e).__name__}); restore it "
                              f"(reinstall gankit) or rebuild it with `{REBUILD}`") from None
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str):
        raise PretrainedError(f"{path}: not a pretrained-model manifest (no sha256); rebuild "
                              f"it with `{REBUILD}`")
    return data


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(files: Files) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, contents of NAME.pt) after checking the bytes against the manifest's sha256."""
    manifest = read_manifest(files.manifest)
    data = files.weights.read_bytes()
    digest = sha256_bytes(data)
    if digest != manifest["sha256"]:
        raise PretrainedError(
            f"{files.weights}: sha256 {digest[:16]}... does not match its manifest "
            f"({manifest['sha256'][:16]}...): the file is damaged or was replaced; reinstall "
            f"gankit or rebuild it with `{REBUILD}`")
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise PretrainedError(f"{files.weights}: cannot be read ({type(e).__name__}); rebuild "
                              f"it with `{REBUILD}`") from None
    if not isinstance(blob, dict) or blob.get("kind") != KIND or \
            blob.get("format") != FORMAT_VERSION:
        raise PretrainedError(f"{files.weights}: not a gankit pretrained model of format "
                              f"{FORMAT_VERSION}; rebuild it with `{REBUILD}`")
    return manifest, blob


def load_pretrained(name: str, device: str = "cpu") -> Run:
    """A shipped (or given) pretrained generator as a `Run`: `G` in eval mode and float32,
    `D` None (only G ships), `path` the weights file. Refuses a file whose sha256 differs."""
    files = locate(name)
    manifest, blob = read_verified(files)
    cfg = from_dict(fast.with_legacy(blob["config"]))
    info = blob["data"]
    shape = tuple(int(s) for s in info["shape"])
    G, _ = build_models(cfg.model, shape, int(info["num_classes"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["G"].items()}
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        raise PretrainedError(f"{files.weights}: its weights do not fit the generator its config "
                              f"builds ({str(e).splitlines()[0][:160]}); rebuild it with "
                              f"`{REBUILD}`") from None
    G.to(device).eval()
    return Run(files.weights, cfg, G, None, shape, tuple(info.get("classes") or ()),
               int(blob.get("epoch", 0)))


def manifest_of(name: str) -> dict[str, Any]:
    """The manifest of a shipped (or given) pretrained model, unverified (for listing)."""
    return read_manifest(locate(name).manifest)
