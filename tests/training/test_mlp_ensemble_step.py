"""The fused step batched over an ensemble's members (training/mlp_ensemble_step.py): each
member computes what its seed's solo fused run computes, within the rounding of batched
against solo GEMMs; everything drawn at random is drawn bit for bit as in the solo run.

Tolerances. A solo fused run computes its hidden layers with oneDNN's fused inner product,
the batched step with `bmm`/`baddbmm`, which sum in another order. fp32: the first step's
gradients agree to 1e-5 of each tensor's largest entry. bf16: two bf16 steps that round
differently are both held to the fp32 step, as tests/training/test_mlp_step.py holds the
fused step to autocast's: each tensor of the batched step's gradients at most twice as far
(relative L2) from the fp32 solo step's as the solo bf16 step's, plus 0.01. Over whole runs,
as tests/training/test_mlp_step.py holds the fused step to the autograd one: losses within
1e-3 (fp32) or 2e-2 (bf16) relative, every weight within 2 lr x steps (Adam's first steps
move a weight by about +-lr whatever its gradient's size, so rounding noise in a near-zero
gradient can flip an update) and, in fp32, 98% of them within 0.05 lr x steps. The random draws (noise, dropout masks, data order) are exact: the RNG
states at the end are equal.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from gankit.training.checkpoint import load_checkpoint
from gankit.training.ensemble import (Ensemble, member_dir, resume_seeds, train_seeds,
                                      why_not_batched)
from gankit.training.loop import Interrupted, NonFiniteLoss, Trainer, train
from gankit.training.runs import read_config
from tests.conftest import tiny
from tests.training.test_ensemble import assert_same_state, stop_seed_at

SEEDS = [0, 3]
VARIANTS = {
    "report000-fp32": {"precision": "fp32"},
    "report000-bf16": {"precision": "bf16"},
    "dropout-embedding-nonsaturating-smoothing-average-dsteps2-ema-bf16": {
        "precision": "bf16", "model.g_dropout": 0.3, "model.dropout": 0.3,
        "model.g_cond": "embedding", "loss.name": "nonsaturating",
        "loss.label_smoothing": 0.1, "loss.d_average": True, "d_steps": 2, "ema": 0.99},
    "unconditional-fp32": {"precision": "fp32", "model.conditional": False},
    "onehot-d-embedding-g-fp32": {"precision": "fp32", "model.d_cond": "onehot",
                                  "model.g_cond": "embedding", "ema": 0.9, "ema_rampup": 0.5},
}


def cfg_of(**over):
    return tiny("mlp-cgan-m4", **{"eval.every": 0, "data.limit": 256, "step": "fused",
                                  **over})


def solo_step(cfg, seed: int, tmp: Path) -> Trainer:
    """A solo run of `seed`, one step taken (learning rates 0)."""
    tr = Trainer(dataclasses.replace(cfg, seed=seed), tmp, progress=False)
    for opt in (tr.opt_g, tr.opt_d):
        opt.param_groups[0]["lr"] = 0.0
    x, y = next(tr.loader.epoch(0))
    tr.train_step(x, y, do_g=True)
    return tr


def first_step(cfg, tmp: Path) -> tuple[Ensemble, dict[int, Trainer]]:
    """One step (learning rates 0) of an ensemble of SEEDS and of each seed alone."""
    ens = Ensemble.build([(dataclasses.replace(cfg, seed=s), tmp / f"ens{s}") for s in SEEDS],
                         progress=False)
    assert ens.fused is not None
    for opt in (ens.opt_g, ens.opt_d):
        opt.param_groups[0]["lr"] = 0.0
    batches = [next(m.loader.epoch(0)) for m in ens.members]
    ens.step(batches, do_g=True)
    # built after the ensemble: the process RNG is where the member's was (dropout masks)
    return ens, {s: solo_step(cfg, s, tmp / f"solo{s}") for s in SEEDS}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_first_step_gradients_and_sums_are_each_seed_s_alone(tmp_path: Path,
                                                              variant: str) -> None:
    cfg = cfg_of(**{**VARIANTS[variant], "d_steps": 1})
    ens, solos = first_step(cfg, tmp_path)
    for k, s in enumerate(SEEDS):
        solo = solos[s].fused
        ref = (solo_step(dataclasses.replace(cfg, precision="fp32"), s, tmp_path / f"ref{s}")
               .fused if cfg.precision == "bf16" else None)
        assert solo is not None
        mine, theirs = ens.fused.gradients(), solo.gradients()
        assert mine.keys() == theirs.keys()
        for n, g in theirs.items():
            got = mine[n][k]
            assert g.abs().max() > 0, n  # a gradient the update read
            if ref is None:
                err = ((got - g).abs().max() / g.abs().max().clamp_min(1e-12)).item()
                assert err <= 1e-5, (n, err)
            else:
                r = ref.gradients()[n]
                dist = lambda t: ((t - r).norm() / r.norm().clamp_min(1e-12)).item()  # noqa: E731
                assert dist(got) <= 2 * dist(g) + 0.01, (n, dist(got), dist(g))
        tol = 1e-5 if cfg.precision == "fp32" else 2e-2
        m = ens.members[k]
        torch.testing.assert_close(m.d_sum, solos[s].d_sum, rtol=tol, atol=tol)
        torch.testing.assert_close(m.g_sum, solos[s].g_sum, rtol=tol, atol=tol)
        assert torch.equal(m.noise_gen.get_state(), solos[s].noise_gen.get_state())


def losses(run: Path) -> list[tuple[float, float]]:
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["train/d_loss"], r["train/g_loss"]) for r in rows]


@pytest.mark.parametrize("variant", ["report000-fp32",
                                     "dropout-embedding-nonsaturating-smoothing-average-dsteps2-ema-bf16"])
def test_member_trains_what_its_seed_trains_alone(tmp_path: Path, variant: str) -> None:
    cfg = cfg_of(**VARIANTS[variant])
    assert why_not_batched(cfg) is None
    outs = train_seeds(cfg, SEEDS, tmp_path / "ens", progress=False)
    for seed, out in zip(SEEDS, outs):
        assert read_config(out).step == "fused"       # what trained it, recorded
        alone = train(dataclasses.replace(cfg, seed=seed), tmp_path / f"solo{seed}",
                      progress=False)
        a, b = load_checkpoint(out / "checkpoints/last.pt"), load_checkpoint(
            alone / "checkpoints/last.pt")
        assert (a["epoch"], a["batch"], a["step"]) == (b["epoch"], b["batch"], b["step"])
        for key in ("torch", "noise"):
            assert torch.equal(a["rng"][key], b["rng"][key]), key
        rtol = 1e-3 if cfg.precision == "fp32" else 2e-2
        for (dl, gl), (dl2, gl2) in zip(losses(out), losses(alone)):
            assert dl == pytest.approx(dl2, rel=rtol) and gl == pytest.approx(gl2, rel=rtol)
        o = cfg.optim
        steps = a["step"]
        for net, lr in (("G", o.g_lr), ("D", o.d_lr)):
            for key, w in a[net].items():
                diff = (w - b[net][key]).abs()
                assert diff.max() <= 2.01 * lr * steps, f"{net}.{key}"
                if cfg.precision == "fp32":
                    assert (diff > 0.05 * lr * steps).float().mean() <= 0.02, f"{net}.{key}"
        print(variant, seed, steps, max((a[n][k] - b[n][k]).abs().max().item() / (lr * steps)
                                        for n, lr in (("G", o.g_lr), ("D", o.d_lr))
                                        for k in a[n]))


def test_a_member_s_nan_loss_stops_the_ensemble_and_names_its_folder(tmp_path: Path) -> None:
    cfg = cfg_of(precision="fp32", epochs=2)
    jobs = [(dataclasses.replace(cfg, seed=s), tmp_path / f"s{s}") for s in SEEDS]
    ens = Ensemble.build(jobs, progress=False)

    def plant(tr: Trainer, epoch: int, batch: int) -> None:  # member 1's D head turns NaN
        if (epoch, batch) == (1, 0):
            with torch.no_grad():
                ens.D.params["head.bias"][1].fill_(float("nan"))
    ens.members[1].hooks.append(plant)
    with pytest.raises(NonFiniteLoss, match=f"D loss became nan in epoch 2 .*{tmp_path / 's3'}"):
        ens.run()
    for _, path in jobs:  # the last good checkpoints: epoch 1's
        assert load_checkpoint(path / "checkpoints/last.pt")["epoch"] == 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_an_interrupted_fused_ensemble_resumes_bit_identically(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    """Stopped mid-epoch and resumed, each member ends where the same ensemble trained
    without a stop ends: weights, Adam state, RNG states and sums, bit for bit."""
    cfg = cfg_of(precision=precision, ema=0.99)
    stop_seed_at(monkeypatch, SEEDS[0], (1, 2))
    with pytest.raises(Interrupted, match="--resume"):
        train_seeds(cfg, SEEDS, tmp_path / "stopped", progress=False)
    monkeypatch.undo()
    resume_seeds(tmp_path / "stopped", progress=False)
    train_seeds(cfg, SEEDS, tmp_path / "whole", progress=False)
    for s in SEEDS:
        assert_same_state(member_dir(tmp_path / "stopped", s) / "checkpoints/last.pt",
                          member_dir(tmp_path / "whole", s) / "checkpoints/last.pt")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_wide_weight_gradient_from_a_contiguous_transpose_is_the_same(dtype) -> None:
    """The batched step copies the output gradient's transpose contiguous for a layer of over
    512 inputs (a speed route): oneDNN's product is the same to the bit either way."""
    torch.manual_seed(0)
    for k, rows, out, inputs in ((4, 128, 256, 794), (8, 128, 256, 794), (2, 32, 64, 600)):
        dh = torch.randn(k, rows, out).to(dtype)
        x = torch.randn(k, rows, inputs).to(dtype)
        assert torch.equal(torch.bmm(dh.mT, x), torch.bmm(dh.mT.contiguous(), x))
