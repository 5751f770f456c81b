"""Tiny trained runs on the bundled `digits` set, shared by the exploration, plots and report
tests: each kind is trained once per test session (a few seconds) and then only read."""
from __future__ import annotations

from pathlib import Path

import pytest

TINY = {"data.name": "digits", "data.limit": 64, "epochs": 2, "val_diagnostics": 64,
        "batch_size": 32, "model.ngf": 16, "model.ndf": 16, "device": "cpu",
        "sample_every": 1, "checkpoint_every": 1}
KINDS = {
    # report 002's ResNet cGAN: a learnt label embedding in G
    "cgan": ("seed002-resnet-cgan", {"d_steps": 1}),
    # report 004's unconditional DCGAN (its widths are fixed by the report)
    "uncond": ("seed004-dcgan", {}),
}
_made: dict[str, Path] = {}


def tiny_run(kind: str, factory: pytest.TempPathFactory) -> Path:
    """The run folder of a tiny `kind` run, trained on first use."""
    if kind not in _made:
        from gankit.config import resolve
        from gankit.training.loop import Trainer
        preset, over = KINDS[kind]
        cfg = resolve(preset, {**TINY, **over})
        out = factory.mktemp(f"run-{kind}") / "run"
        Trainer(cfg, out, progress=False).run()
        _made[kind] = out
    return _made[kind]


# Fixtures, imported by the conftest.py of tests/exploration, tests/plots and tests/report.

@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: tiny models gain nothing from threads, and on a busy machine
    two threads that spin-wait for each other are many times slower than one."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _trained(kind: str, factory: pytest.TempPathFactory) -> Path:
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return tiny_run(kind, factory)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory) -> Path:
    """A tiny trained conditional run (report 002's ResNet cGAN, learnt label embedding)."""
    return _trained("cgan", tmp_path_factory)


@pytest.fixture(scope="session")
def uncond_run(tmp_path_factory) -> Path:
    """A tiny trained unconditional run (report 004's DCGAN)."""
    return _trained("uncond", tmp_path_factory)
