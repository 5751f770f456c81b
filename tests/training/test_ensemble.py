"""K seeds trained as one batched ensemble (training/ensemble.py): each member equals the same
seed trained alone, bit for bit on CPU, and its folder is an ordinary run."""
from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import pytest
import torch

from gankit.cli.main import main
from gankit.training.checkpoint import load_checkpoint
from gankit.training.ensemble import (Ensemble, member_dir, members_of, resume_seeds, train_seeds,
                                      why_not_batched)
from gankit.training.loop import Interrupted, Trainer, resume, train
from gankit.training.runs import load_run
from tests.conftest import tiny

SEEDS = [0, 3, 5]
# Narrow MLPs (the 1-wide logit layer included) step in milliseconds; eval off so that the
# process-wide caches of the first evaluation do not touch one run's RNG and not another's.
# step=autograd: the solo runs take the step the batched one equals bit for bit.
SMALL = {"model.g_hidden": [32, 48], "model.d_hidden": [48, 32], "eval.every": 0,
         "precision": "fp32", "step": "autograd"}


def cfg_of(**over):
    return tiny("mlp-cgan-m4", **{**SMALL, **{k.replace("__", "."): v for k, v in over.items()}})


def assert_same_state(a: Path, b: Path) -> None:
    """Two checkpoints hold the same weights, Adam states, RNG states, sums and position."""
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    for part in ("G", "D", "G_ema"):
        if sa[part] is None:
            assert sb[part] is None
            continue
        for key, value in sa[part].items():
            assert torch.equal(value, sb[part][key]), f"{part}.{key} differs"
    for part in ("opt_g", "opt_d"):
        assert sa[part]["state"].keys() == sb[part]["state"].keys()
        for i, st in sa[part]["state"].items():
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(st[key], sb[part]["state"][i][key]), f"{part} {i} {key}"
    for key in ("torch", "noise"):
        assert torch.equal(sa["rng"][key], sb["rng"][key]), f"rng {key}"
    assert torch.equal(sa["sums"]["d"], sb["sums"]["d"])
    assert torch.equal(sa["sums"]["g"], sb["sums"]["g"])
    assert (sa["epoch"], sa["batch"], sa["step"]) == (sb["epoch"], sb["batch"], sb["step"])


def solo(cfg, seed: int, out: Path) -> Path:
    return train(dataclasses.replace(cfg, seed=seed), out, progress=False)


VARIANTS = {
    "report000": {},
    "bf16-ema-clip-projection-embedding-dsteps2": {
        "precision": "bf16", "ema": 0.99, "grad_clip": 0.5, "model.d_cond": "projection",
        "model.g_cond": "embedding", "d_steps": 2},
    "unconditional-hinge-2-d-steps-per-batch": {"model.conditional": False,
                                                "loss.name": "hinge", "d_steps_per_batch": 2},
    "ema-warm-up": {"ema": 0.99, "ema_rampup": 0.5},
    "dropout-bf16": {"model.dropout": 0.3, "model.g_dropout": 0.2, "precision": "bf16"},
    "onehot-d-smoothing-average": {"model.d_cond": "onehot", "loss.label_smoothing": 0.1,
                                   "loss.d_average": True, "optim.schedule": "cosine"},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_member_equals_the_seed_trained_alone(tmp_path: Path, variant: str) -> None:
    cfg = cfg_of(**VARIANTS[variant])
    assert why_not_batched(cfg) is None
    outs = train_seeds(cfg, SEEDS, tmp_path / "ens", progress=False)
    assert outs == [member_dir(tmp_path / "ens", s) for s in SEEDS]
    for seed, out in zip(SEEDS, outs):
        alone = solo(cfg, seed, tmp_path / f"solo{seed}")
        for name in ("last", "best"):
            assert_same_state(out / "checkpoints" / f"{name}.pt",
                              alone / "checkpoints" / f"{name}.pt")
        ens_rows = [r for r in (out / "metrics.jsonl").read_text().splitlines()]
        solo_rows = [r for r in (alone / "metrics.jsonl").read_text().splitlines()]
        assert len(ens_rows) == len(solo_rows) == cfg.epochs
        assert sorted((out / "grids").iterdir()) != []


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["mlp-cgan-m1", "mlp-gan-r003"])
def test_report_widths_bit_identical(tmp_path: Path, preset: str) -> None:
    """The reports' own nets (report 000's widths, the GEMM shapes the benchmark times;
    report 003's with dropout), fp32 and bf16."""
    for precision in ("fp32", "bf16"):
        cfg = tiny(preset, **{"eval.every": 0, "precision": precision, "epochs": 1,
                          "step": "autograd"})
        assert why_not_batched(cfg) is None
        outs = train_seeds(cfg, [0, 1], tmp_path / precision, progress=False)
        for seed, out in zip([0, 1], outs):
            alone = solo(cfg, seed, tmp_path / f"solo-{precision}{seed}")
            assert_same_state(out / "checkpoints/last.pt", alone / "checkpoints/last.pt")


def stop_seed_at(monkeypatch: pytest.MonkeyPatch, seed: int, at: tuple[int, int]) -> None:
    """A SIGTERM arrives in the Trainer of `seed` after its step (epoch, batch) = at."""
    def hook(trainer: Trainer, epoch: int, batch: int) -> None:
        if (epoch, batch) == at:
            trainer._stop_signal = signal.SIGTERM

    init = Trainer.__init__

    def with_hook(self, *a, **k):
        init(self, *a, **k)
        if self.cfg.seed == seed:
            self.hooks.append(hook)
    monkeypatch.setattr(Trainer, "__init__", with_hook)


def test_interrupted_ensemble_resumes_to_the_same_runs(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = cfg_of()
    stop_seed_at(monkeypatch, SEEDS[0], (1, 2))  # epoch 1 (0-based), batch 2: mid-epoch
    with pytest.raises(Interrupted, match="--resume"):
        train_seeds(cfg, SEEDS, tmp_path / "ens", progress=False)
    monkeypatch.undo()
    for s in SEEDS:
        state = load_checkpoint(member_dir(tmp_path / "ens", s) / "checkpoints/last.pt")
        assert (state["epoch"], state["batch"]) == (1, 3)
    resume_seeds(tmp_path / "ens", progress=False)
    for s in SEEDS:
        alone = solo(cfg, s, tmp_path / f"solo{s}")
        assert_same_state(member_dir(tmp_path / "ens", s) / "checkpoints/last.pt",
                          alone / "checkpoints/last.pt")


def test_member_folder_is_an_ordinary_run(tmp_path: Path) -> None:
    """A member resumes alone and ends where its solo run does; load_run samples from it."""
    cfg = cfg_of(epochs=1)
    train_seeds(cfg, SEEDS[:2], tmp_path / "ens", progress=False)
    member = member_dir(tmp_path / "ens", SEEDS[1])
    resume(member, epochs=2, progress=False)
    alone = solo(dataclasses.replace(cfg, epochs=2), SEEDS[1], tmp_path / "solo")
    assert_same_state(member / "checkpoints/last.pt", alone / "checkpoints/last.pt")
    run = load_run(member)
    assert run.cfg.seed == SEEDS[1]
    with torch.no_grad():
        images = run.G(torch.randn(4, run.G.nz), torch.arange(4))
    assert images.shape == (4, *run.shape)


def test_penalties_and_augmentation_are_not_batched() -> None:
    assert "gradient penalty" in why_not_batched(cfg_of(loss__r1_gamma=1.0))
    assert "augment=translation" in why_not_batched(cfg_of(augment="translation"))


def test_families_without_a_batched_step_train_one_after_another(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tiny("dcgan-r004", **{"data.limit": 64, "epochs": 1, "eval.every": 0})
    assert "model.arch=dcgan" in why_not_batched(cfg)
    outs = train_seeds(cfg, [0, 1], tmp_path / "ens", progress=False)
    err = capsys.readouterr().err
    assert err.count("one after another") == 1 and "model.arch=dcgan" in err
    alone = solo(cfg, 1, tmp_path / "solo")
    assert_same_state(outs[1] / "checkpoints/last.pt", alone / "checkpoints/last.pt")


@pytest.mark.parametrize("over, reason", [
    ({"loss.name": "wgan-gp"}, "gradient penalty"),
    ({"adaptive_d_steps": True}, "adaptive_d_steps"),
    ({"model.spectral_norm": True}, "spectral norm"),
])
def test_why_not_batched(over: dict, reason: str) -> None:
    assert reason in why_not_batched(cfg_of(**over))


@pytest.mark.parametrize("step, batched", [("auto", "fused"), ("fused", "fused"),
                                           ("autograd", "autograd")])
def test_the_batched_step_is_the_step_the_members_resolve(tmp_path: Path, step: str,
                                                          batched: str) -> None:
    """Members whose step resolves to fused take the batched fused step
    (training/mlp_ensemble_step.py, tests/training/test_mlp_ensemble_step.py); the others,
    and what the fused step does not cover (grad_clip), the batched autograd step."""
    def build(cfg, name: str) -> Ensemble:
        assert why_not_batched(cfg) is None
        return Ensemble.build([(dataclasses.replace(cfg, seed=s), tmp_path / name / str(s))
                               for s in SEEDS[:2]], progress=False)
    ens = build(cfg_of(step=step), "a")
    assert (ens.fused is not None) == (batched == "fused")
    assert [m.cfg.step for m in ens.members] == [batched] * 2
    assert build(cfg_of(step=step, grad_clip=1.0), "b").fused is None


def test_cli_trains_and_resumes_an_ensemble(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ens"
    sets = ["--set", "data.name=digits", "--set", "data.limit=128", "--set", "epochs=1",
            "--set", "val_diagnostics=32", "--set", "eval.every=0", "--set", "batch_size=32",
            "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]"]
    # --jobs 1: in this process (tests/sweeps/test_seeds.py: the seeds over processes)
    assert main(["--quiet", "train", "--preset", "mlp-cgan-m1", "--seeds", "0-1", "--jobs", "1",
                 "--out", str(out), *sets]) == 0
    assert members_of(out) == [out / "seed000", out / "seed001"]
    assert capsys.readouterr().out.split() == [str(out / "seed000"), str(out / "seed001")]
    assert main(["--quiet", "train", "--resume", str(out), "--jobs", "1", "--set",
                 "epochs=2"]) == 0
    for d in members_of(out):
        assert load_checkpoint(d / "checkpoints/last.pt")["epoch"] == 2
    capsys.readouterr()
    # all trained: nothing to do, said once (and no worker processes started for it)
    saved = [(d / "checkpoints/last.pt").read_bytes() for d in members_of(out)]
    assert main(["--quiet", "train", "--resume", str(out)]) == 0
    assert "all 2 runs in" in capsys.readouterr().err
    # fewer epochs than trained: one line, nothing written
    assert main(["--quiet", "train", "--resume", str(out), "--set", "epochs=1"]) == 2
    assert "epochs=1 is fewer than the 2 epochs" in capsys.readouterr().err
    assert [(d / "checkpoints/last.pt").read_bytes() for d in members_of(out)] == saved
    assert all("epochs: 2" in (d / "config.yaml").read_text() for d in members_of(out))
    assert main(["train", "--seeds", "1,1", "--out", str(tmp_path / "x")]) == 2
    assert "repeats a seed" in capsys.readouterr().err
    assert main(["train", "--seeds", "a", "--out", str(tmp_path / "x")]) == 2
    capsys.readouterr()
    # a range given high to low was an empty list: nothing trained, exit 0
    assert main(["train", "--seeds", "5-2", "--out", str(tmp_path / "x")]) == 2
    assert "runs backwards" in capsys.readouterr().err and not (tmp_path / "x").exists()
