"""Interrupted and resumed runs end bit-identical to uninterrupted ones (CPU)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from gankit.cli.main import main
from gankit.metrics import features
from gankit.training.loop import Interrupted, Trainer, resume
from gankit.training.runs import load_run
from tests.conftest import tiny


def same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def final_weights(run: Path) -> dict:
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    return {**{f"G.{k}": v for k, v in state["G"].items()},
            **{f"D.{k}": v for k, v in state["D"].items()}}


def stop_at(epoch: int, batch: int):
    def hook(trainer: Trainer, e: int, b: int) -> None:
        if (e, b) == (epoch, batch):
            trainer._stop_signal = signal.SIGINT  # what the SIGINT handler does
    return hook


@pytest.mark.parametrize("preset,over", [
    ("mlp-cgan-m4", {}),                                        # MLP cGAN, saturating loss
    ("mlp-gan-r003", {"data__limit": 128}),                 # dropout: global RNG state
    pytest.param("default", {"data__limit": 128},            # conv, BN, EMA, label planes
                 marks=pytest.mark.slow),
    pytest.param("resnet-cgan-r002", {"data__limit": 96, "d_steps": 3, "model__ngf": 16,
                                         "model__ndf": 16},    # spectral norm, D steps
                 marks=pytest.mark.slow),
])
def test_resume_mid_epoch_is_bit_identical(tmp_path: Path, preset: str, over: dict) -> None:
    cfg = tiny(preset, **over)
    Trainer(cfg, tmp_path / "a", progress=False).run()

    t = Trainer(cfg, tmp_path / "b", progress=False)
    t.hooks.append(stop_at(1, 1))  # second epoch, second batch
    with pytest.raises(Interrupted, match="gankit train --resume"):
        t.run()
    assert not (tmp_path / "b" / "grids" / "epoch_0002.png").exists()
    resume(tmp_path / "b", progress=False)
    same_state(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))
    a = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    b = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(a) == len(b) == cfg.epochs
    for ra, rb in zip(a, b):
        ra, rb = json.loads(ra), json.loads(rb)
        for k in ra:
            if k != "time_s":
                assert ra[k] == rb[k], k


def test_resume_then_evaluations_are_bit_identical(tmp_path: Path) -> None:
    """A resumed process builds its metrics' feature space anew at its first evaluation (an
    uninterrupted one built it at its first): the evaluation must not draw from the training's
    RNG, which D's dropout uses (report 003's MLP diverged after a resume, 2026-12-06)."""
    cfg = tiny("mlp-gan-r003", data__limit=128, epochs=3, eval__every=1)
    features._space.cache_clear()
    Trainer(cfg, tmp_path / "a", progress=False).run()
    features._space.cache_clear()
    t = Trainer(cfg, tmp_path / "b", progress=False)
    t.hooks.append(stop_at(1, 1))
    with pytest.raises(Interrupted):
        t.run()
    features._space.cache_clear()       # as in a new process
    resume(tmp_path / "b", progress=False)
    same_state(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))


@pytest.mark.slow
def test_sigint_to_a_real_process_then_resume(tmp_path: Path) -> None:
    """A real `gankit train` process gets SIGINT, saves, exits 130; resuming ends identical."""
    over = ["--set", "data.name=digits", "--set", "data.limit=512", "--set", "epochs=3",
            "--set", "batch_size=16", "--set", "val_diagnostics=64", "--set", "device=cpu"]
    cmd = [sys.executable, "-m", "gankit.cli.main", "train", "--preset", "mlp-cgan-m4", "--quiet"]
    ref = tmp_path / "ref"
    subprocess.run(cmd + over + ["--out", str(ref)], check=True, capture_output=True)
    run = tmp_path / "run"
    p = subprocess.Popen(cmd + over + ["--out", str(run)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.fail("training finished before the signal arrived; make the run longer")
    assert p.returncode == 130, err
    assert "checkpoint saved" in err
    r = subprocess.run([sys.executable, "-m", "gankit.cli.main", "train", "--resume", str(run),
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    same_state(final_weights(ref), final_weights(run))


@pytest.mark.slow
def test_load_run_gives_sampling_generator(tmp_path: Path) -> None:
    cfg = tiny("default", data__limit=64, epochs=1)
    Trainer(cfg, tmp_path / "r", progress=False).run()
    r = load_run(tmp_path / "r")
    assert not r.G.training and r.epoch == 1 and r.classes[3] == "3"


def test_a_trained_run_is_not_resumed_past_or_short_of_its_epochs(tmp_path: Path,
                                                                  capsys) -> None:
    """Resuming a run that has trained all its epochs does nothing and says so; asking for
    fewer epochs than it has trained is one error line, and its config and checkpoint stay
    as they were (the config used to be rewritten to the smaller number)."""
    from gankit.cli.main import main
    out = tmp_path / "r"
    Trainer(tiny("mlp-cgan-m4", data__limit=64, epochs=2), out, progress=False).run()
    config, last = (out / "config.yaml").read_text(), (out / "checkpoints/last.pt").read_bytes()
    assert resume(out, progress=False) == out
    assert "has trained all its 2 epochs: nothing to do" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--set", "epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "epochs=1 is fewer than the 2 epochs" in err and "N > 2" in err
    assert (out / "config.yaml").read_text() == config
    assert (out / "checkpoints/last.pt").read_bytes() == last


def test_a_one_thread_run_goes_on_with_two(tmp_path: Path) -> None:
    """`threads` may change on resume (the same step up to rounding): a run started on one
    core beside other work continues on both once they are free (it was refused)."""
    Trainer(tiny(epochs=1, data__limit=64, threads=1), tmp_path, progress=False).run()
    try:
        assert main(["train", "--resume", str(tmp_path), "--set", "threads=2", "--set",
                     "epochs=2", "--quiet"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)   # the suite's one thread per process (tests/conftest.py)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["threads"] == 2
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
