"""The fused MLP step (training/mlp_step.py, `step: fused`) trains what the autograd step
trains: same losses, gradients and weights within stated tolerances, a bit-identical resume,
and the autograd step (with one message) for what it does not cover.

Tolerances. fp32: the gradients of one step (learning rates 0, so that both G steps meet the
same D) agree to 1e-5 of the largest entry (both compute the same GEMMs; only the loss
gradient's closed form and summation order round differently). After several steps the
losses and gradient norms agree to 1e-3 relative, every weight within 2 lr x steps and 98%
of them within 0.05 lr x steps: Adam's first steps move each weight by about +-lr whatever
the gradient's size, so rounding noise in a near-zero gradient can flip one update. bf16: the
fused step rounds differently from autocast (oneDNN's fused bias and activation, D's head in
fp32), so its first step's gradients are held to the fp32 autograd step's: each tensor at
most twice as far from them (relative L2) as the autograd bf16 step's, plus 0.01 (measured:
0.6-1.8x, the autograd bf16 step's own distance 0.3-7.5%); over steps, the losses agree to
2e-2 relative.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from gankit.training.checkpoint import load_checkpoint
from gankit.training.loop import Trainer, resume, train
from gankit.training.mlp_step import MLPStep
from tests.conftest import tiny

VARIANTS = {
    "report000": {},
    "dropout-embedding-nonsaturating-smoothing-average-dsteps2-ema": {
        "model.g_dropout": 0.3, "model.dropout": 0.3, "model.g_cond": "embedding",
        "loss.name": "nonsaturating", "loss.label_smoothing": 0.1, "loss.d_average": True,
        "d_steps": 2, "ema": 0.99},
    "unconditional-onehot-d": {"model.conditional": False},
}


def cfg_of(precision: str = "fp32", **over):
    return tiny("mlp-cgan-m4", **{"precision": precision, "eval.every": 0, "data.limit": 256,
                                  **{k.replace("__", "."): v for k, v in over.items()}})


def pair(cfg, tmp: Path) -> dict[str, Trainer]:
    out = {}
    for step in ("autograd", "fused"):
        tr = Trainer(dataclasses.replace(cfg, step=step), tmp / step, progress=False)
        assert (tr.fused is not None) == (step == "fused")
        out[step] = tr
    return out


def run_steps(tr: Trainer, n: int, seed: int = 7) -> None:
    torch.manual_seed(seed)  # dropout masks: both draw them from the process RNG
    batches = tr.loader.epoch(0)
    for i in range(n):
        x, y = next(batches)
        tr.train_step(x, y, do_g=(i + 1) % tr.d_steps == 0)
        tr.step += 1


def grads(tr: Trainer) -> dict[str, torch.Tensor]:
    if tr.fused is not None:
        return tr.fused.gradients()
    return {**{f"G.{k}": p.grad for k, p in tr.G.named_parameters()},
            **{f"D.{k}": p.grad for k, p in tr.D.named_parameters()}}


def trio(cfg, tmp: Path) -> dict[str, Trainer]:
    """`pair`, and in bf16 the fp32 autograd step as the reference both are held to."""
    trs = pair(cfg, tmp)
    if cfg.precision == "bf16":
        trs["fp32"] = Trainer(dataclasses.replace(cfg, precision="fp32", step="autograd"),
                              tmp / "fp32", progress=False)
    return trs


def assert_same_gradients(trs: dict[str, Trainer]) -> None:
    """The fused step's gradients are the autograd step's: in fp32 to 1e-5 of the largest
    entry, in bf16 at most twice as far from the fp32 step's as autocast's, plus 0.01."""
    ga, gf = grads(trs["autograd"]), grads(trs["fused"])
    assert ga.keys() == gf.keys()
    for k in ga:
        if "fp32" in trs:
            ref = grads(trs["fp32"])[k]
            dist = lambda g: ((g - ref).norm() / ref.norm().clamp_min(1e-12)).item()  # noqa: E731
            assert dist(gf[k]) <= 2 * dist(ga[k]) + 0.01, (k, dist(gf[k]), dist(ga[k]))
        else:
            scale = ga[k].abs().max().clamp_min(1e-12)
            assert (ga[k] - gf[k]).abs().max() <= 1e-5 * scale, k


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_first_step_gradients(tmp_path: Path, variant: str, precision: str) -> None:
    over = VARIANTS[variant]
    if over.get("d_steps"):
        over = {**over, "d_steps": 1}  # a G step in the first step
    trs = trio(cfg_of(precision, **over), tmp_path)
    for tr in trs.values():
        for opt in (tr.opt_g, tr.opt_d):  # the G step then meets the same D in both
            opt.param_groups[0]["lr"] = 0.0
        run_steps(tr, 1)
    assert_same_gradients(trs)
    tol = 1e-5 if precision == "fp32" else 1e-2
    torch.testing.assert_close(trs["fused"].d_sum, trs["autograd"].d_sum, rtol=tol, atol=tol)
    torch.testing.assert_close(trs["fused"].g_sum, trs["autograd"].g_sum, rtol=tol, atol=tol)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_without_onednn_the_same_gradients(tmp_path: Path, precision: str) -> None:
    """The route where oneDNN's fused inner product is missing (CUDA, builds without
    oneDNN): addmm, in-place activations and torch's elementwise work, held to the same
    bounds."""
    over = {**VARIANTS["dropout-embedding-nonsaturating-smoothing-average-dsteps2-ema"],
            "d_steps": 1}
    trs = trio(cfg_of(precision, **over), tmp_path)
    trs["fused"].fused.onednn = False
    trs["fused"].fused.gemm = trs["fused"].fused.parts = None
    for tr in trs.values():
        for opt in (tr.opt_g, tr.opt_d):
            opt.param_groups[0]["lr"] = 0.0
        run_steps(tr, 1)
    assert_same_gradients(trs)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_kept_onednn_primitives_the_same_gradients(tmp_path: Path, precision: str) -> None:
    """One run's GEMMs as kept oneDNN primitives (`kernels: fast`, native/onednn.py) and as
    torch's calls (`kernels: plain`): the same gradients, to 1e-5 in fp32 and to bf16's
    rounding (2^-7 of the largest entry) in bf16."""
    from gankit.native import onednn
    if onednn.kernel() is None:
        pytest.skip(f"oneDNN matmul: {onednn.why_not()}")
    over = {**VARIANTS["dropout-embedding-nonsaturating-smoothing-average-dsteps2-ema"],
            "d_steps": 1}
    trs = {}
    for kernels in ("fast", "plain"):
        tr = Trainer(dataclasses.replace(cfg_of(precision, **over), step="fused",
                                         kernels=kernels), tmp_path / kernels, progress=False)
        assert (tr.fused.gemm is not None) == (kernels == "fast")
        for opt in (tr.opt_g, tr.opt_d):
            opt.param_groups[0]["lr"] = 0.0
        run_steps(tr, 1)
        trs[kernels] = tr.fused.gradients()
    tol = 1e-5 if precision == "fp32" else 2 ** -7
    for k, ref in trs["plain"].items():
        assert (trs["fast"][k] - ref).abs().max() <= tol * ref.abs().max().clamp_min(1e-12), k


def test_bf16_tanh_through_fp32_rounds_as_torch_bf16_tanh() -> None:
    """The step's bf16 tanh (computed in fp32, faster) is torch's bf16 tanh on every finite
    bf16 value."""
    every = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    every = every[torch.isfinite(every)]
    ours = every.clone()
    MLPStep._act_fwd(ours, "tanh")
    assert every.numel() == 65280 and torch.equal(ours, torch.tanh(every))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_several_steps(tmp_path: Path, variant: str, precision: str) -> None:
    cfg = cfg_of(precision, **VARIANTS[variant])
    trs = pair(cfg, tmp_path)
    n = 4 * cfg.d_steps
    for tr in trs.values():
        run_steps(tr, n)
    a, f = trs["autograd"], trs["fused"]
    assert (a.d_count, a.g_count) == (f.d_count, f.g_count)
    rtol = 1e-3 if precision == "fp32" else 2e-2
    torch.testing.assert_close(f.d_sum, a.d_sum, rtol=rtol, atol=rtol)
    torch.testing.assert_close(f.g_sum, a.g_sum, rtol=rtol, atol=rtol)
    if precision == "fp32":
        o = cfg.optim
        for net, lr, steps in (("G", o.g_lr, a.g_count), ("D", o.d_lr, a.d_count)):
            pa = dict(getattr(a, net).named_parameters())
            for k, p in getattr(f, net).named_parameters():
                diff = (p.detach() - pa[k].detach()).abs()
                assert diff.max() <= 2.01 * lr * steps, f"{net}.{k}"  # at worst flipped updates
                assert (diff > 0.05 * lr * steps).float().mean() <= 0.02, f"{net}.{k}"
        if cfg.ema:
            for p, q in zip(a.ema.shadow.parameters(), f.ema.shadow.parameters()):
                assert (p - q).abs().max() <= 2.01 * o.g_lr * a.g_count


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_weights_bound_once_and_again_after_their_data_is_replaced(tmp_path: Path,
                                                                  precision: str) -> None:
    """In bf16 each net's fp32 weights are views of one buffer (one copy casts them all). A
    parameter whose data is replaced afterwards (`p.data = ...`) is bound again, so the
    step still computes the autograd step's gradients with the new values."""
    trs = trio(cfg_of(precision), tmp_path)
    f = trs["fused"]
    if precision == "bf16":
        ptrs = [p.data_ptr() for p in f.D.parameters()]
        assert sorted(ptrs) == ptrs
        assert ptrs[-1] - ptrs[0] < 4 * sum(p.numel() for p in f.D.parameters())
    for tr in trs.values():
        for p in list(tr.D.parameters()) + list(tr.G.parameters()):
            p.data = p.data.clone() * 1.5  # not a view of the buffer any more
        for opt in (tr.opt_g, tr.opt_d):
            opt.param_groups[0]["lr"] = 0.0
        run_steps(tr, 1)
    assert_same_gradients(trs)


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    cfg = cfg_of("bf16", epochs=2, **{"data.limit": 160, "batch_size": 64})  # 3 batches, 32 last
    whole = train(cfg, tmp_path / "whole", progress=False)
    half = train(dataclasses.replace(cfg, epochs=1), tmp_path / "half", progress=False)
    resume(half, epochs=2, progress=False)
    sa = load_checkpoint(whole / "checkpoints" / "last.pt")
    sb = load_checkpoint(half / "checkpoints" / "last.pt")
    assert sa["config"]["step"] == "fused"
    for part in ("G", "D"):
        for key, value in sa[part].items():
            assert torch.equal(value, sb[part][key]), f"{part}.{key}"
    for part in ("opt_g", "opt_d"):
        for i, st in sa[part]["state"].items():
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(st[key], sb[part]["state"][i][key]), f"{part} {i} {key}"
    assert torch.equal(sa["sums"]["d"], sb["sums"]["d"])
    assert torch.equal(sa["rng"]["noise"], sb["rng"]["noise"])


def test_auto_is_fused_for_report000(tmp_path: Path) -> None:
    tr = Trainer(cfg_of(), tmp_path / "r", progress=False)
    assert tr.cfg.step == "fused" and tr.fused is not None


@pytest.mark.parametrize("over, reason", [
    ({"loss.name": "wgan-gp"}, "loss.name=wgan-gp"),
    ({"loss.r1_gamma": 1.0}, "R1"),
    ({"augment": "translation"}, "augment"),
    ({"model.spectral_norm": True}, "spectral"),
    ({"model.d_cond": "projection"}, "projection"),
])
def test_falls_back_with_a_reason(tmp_path: Path, capsys, over, reason) -> None:
    tr = Trainer(cfg_of(step="fused", **over), tmp_path / "r", progress=False)
    assert tr.fused is None and tr.cfg.step == "autograd"
    err = capsys.readouterr().err
    assert "step=fused: training with the autograd step" in err and reason in err
    run_steps(tr, 1)  # and it trains


def test_auto_falls_back_silently_for_other_families(tmp_path: Path, capsys) -> None:
    tr = Trainer(tiny("dcgan-r004", **{"data.limit": 64, "eval.every": 0}), tmp_path / "r",
                 progress=False)
    assert tr.fused is None and tr.cfg.step == "autograd"
    assert "step=fused" not in capsys.readouterr().err


@pytest.mark.slow
def test_forced_bf16_without_a_bf16_inner_product_trains(tmp_path: Path) -> None:
    """precision=bf16 on a CPU whose oneDNN has no bf16 inner product (no AVX-512; emulated
    with ONEDNN_MAX_CPU_ISA=AVX2, which both oneDNN copies obey): the fused step takes addmm
    instead of `_linear_pointwise` (which fails there) in both `kernels` settings."""
    import os
    import subprocess
    import sys
    code = (
        "import dataclasses, pathlib, sys\n"
        "from tests.training.test_mlp_step import Trainer, cfg_of, run_steps\n"
        "for kernels in ('plain', 'fast'):\n"
        "    cfg = dataclasses.replace(cfg_of('bf16'), step='fused', kernels=kernels)\n"
        "    tr = Trainer(cfg, pathlib.Path(sys.argv[1]) / kernels, progress=False)\n"
        "    assert tr.fused is not None and not tr.fused.onednn\n"
        "    run_steps(tr, 2)\n"
        "print('trained')\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, text=True,
                          capture_output=True, timeout=300,
                          env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert done.returncode == 0 and "trained" in done.stdout, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
