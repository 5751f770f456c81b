"""The speed settings (training/fast.py): precision, compile and the direct fused Adam step."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gankit.config import ConfigError, resolve, to_dict
from gankit.training import fast
from gankit.training.adam import adam_step
from gankit.training.loop import Interrupted, Trainer, resume
from tests.conftest import tiny
from tests.training.test_resume import final_weights, same_state, stop_at

needs_bf16 = pytest.mark.skipif(not fast.cpu_has_native_bf16(),
                                reason="this CPU has no native bf16 (AVX512-BF16/AMX)")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_auto_precision_is_resolved_and_recorded(tmp_path: Path) -> None:
    cfg = tiny("mlp-cgan-m4", epochs=1)
    assert cfg.precision == "auto" and cfg.compile == "auto"
    Trainer(cfg, tmp_path / "run", progress=False).run()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["precision"] == ("bf16" if fast.cpu_has_native_bf16() else "fp32")
    assert saved["compile"] == "off"  # auto compiles on CUDA only


def test_a_runs_first_line_says_how_its_steps_compute(monkeypatch) -> None:
    cfg, cpu = tiny("default", epochs=1), torch.device("cpu")
    before = torch.get_num_threads()
    monkeypatch.setattr(fast, "cpu_bf16_hardware", lambda: "AMX")
    try:
        torch.set_num_threads(1)
        cfg.precision, cfg.step, cfg.compile = "bf16", "autograd", "off"
        assert fast.describe(cfg, cpu) == "bf16 on AMX, 1 thread"
        torch.set_num_threads(2)
        cfg.precision, cfg.step = "fp32", "fused"
        assert fast.describe(cfg, cpu) == "fp32, 2 threads, fused step"
        monkeypatch.setattr(fast, "cpu_bf16_hardware", lambda: None)
        cfg.precision, cfg.step = "bf16", "autograd"   # --set precision=bf16 without the hardware
        assert fast.describe(cfg, cpu) == "bf16, 2 threads"
        cfg.compile = "on"
        assert fast.describe(cfg, torch.device("cuda")) == "bf16, compiled"
    finally:
        torch.set_num_threads(before)


# A real `gankit train` on two threads, with a check before and after it: 1e-40 is a
# denormal float32, and x * 1.5 is 0 only in a thread that flushes denormals. Torch splits the
# 4M elements between the two threads, so the count covers the pool's worker too.
FLUSH_CHECK = """
import sys, torch
from gankit.cli.main import main
torch.set_num_threads(2)
def unflushed():
    return int((torch.full((1 << 22,), 1e-40) * 1.5).count_nonzero())
before = unflushed()
main(["train", "--preset", "mlp-gan-r003", "--out", sys.argv[1], "--quiet", "--set",
      "data.name=digits", "--set", "data.limit=128", "--set", "epochs=1", "--set", "threads=2"])
print(before, unflushed())
"""


def test_a_training_process_flushes_denormals_in_every_thread(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", FLUSH_CHECK, str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    before, after = map(int, out.stdout.split()[-2:])
    assert before == 1 << 22     # the check sees denormals where nothing flushes them
    assert after == 0


def test_auto_precision_is_bf16_where_the_cpu_has_it() -> None:
    cpu = torch.device("cpu")
    native = "bf16" if fast.cpu_has_native_bf16() else "fp32"
    assert fast.resolve_precision("auto", cpu) == native
    assert fast.resolve_precision("bf16", cpu) == "bf16"  # asked for, it is kept
    assert fast.resolve_precision("fp32", cpu) == "fp32"


@pytest.mark.parametrize("flags, capability, want", [
    ({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, "AMX", "bf16"),  # Intel Xeon
    ({"avx512f", "avx512_bf16"}, "AVX512_BF16", "bf16"),               # AMD EPYC Zen 4
    ({"avx2"}, "AVX2", "fp32")])                                       # no native bf16
def test_auto_precision_by_cpu(monkeypatch, flags: set, capability: str, want: str) -> None:
    monkeypatch.setattr(fast, "cpu_flags", lambda: flags)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert fast.resolve_precision("auto", torch.device("cpu")) == want
    assert fast.cpu_bf16_hardware() == {"AMX": "AMX", "AVX512_BF16": "AVX512-BF16"}.get(capability)


def test_unknown_precision_and_compile_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16"):
        fast.resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(ConfigError, match="compile must be one of auto, on, off"):
        fast.resolve_compile("yes", torch.device("cpu"))


def test_compile_without_a_compiler_falls_back_with_one_message(monkeypatch, capsys) -> None:
    monkeypatch.setattr(fast.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    assert fast.resolve_compile("on", torch.device("cpu")) is False
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no C++ compiler" in err[0]


def test_adam_step_is_torch_fused_adam_bit_for_bit() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1))
    twin = copy.deepcopy(net)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-2, betas=(0.5, 0.999), fused=True)
            for m in (net, twin)]
    for _ in range(5):
        x = torch.randn(8, 5)
        for m, opt, step in ((net, opts[0], opts[0].step),
                             (twin, opts[1], lambda o=opts[1]: adam_step(o))):
            opt.zero_grad(set_to_none=True)
            m(x).pow(2).mean().backward()
            step()
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b)
    sa, sb = opts[0].state_dict(), opts[1].state_dict()
    for k in sa["state"]:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa["state"][k][name], sb["state"][k][name]), name


def _grads_after_one_step(preset: str, precision: str, tmp: Path) -> dict[str, torch.Tensor]:
    # step=autograd: the gradients land in p.grad (the fused step keeps its own buffers)
    t = Trainer(tiny(preset, precision=precision, step="autograd"), tmp / precision,
                progress=False)
    x, y = next(t.loader.epoch(0))
    t.train_step(x, y, do_g=True)
    # After a step, D's parameters hold the D step's gradients and G's the G step's.
    return {**{f"G.{n}": p.grad.clone() for n, p in t.G.named_parameters()},
            **{f"D.{n}": p.grad.clone() for n, p in t.D.named_parameters()}}


@needs_bf16
@pytest.mark.parametrize("preset", ["mlp-cgan-m4", "default"])
def test_bf16_and_fp32_steps_agree(tmp_path: Path, preset: str) -> None:
    """bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%) on the inputs of each
    GEMM/convolution, which accumulate in fp32; through a few layers and their backward the
    gradient of D stays within 5% (relative L2) of fp32's. G's gradient passes through the D
    just updated with those gradients (Adam's first step moves each weight by about
    lr * sign(g), so weights whose gradient is near 0 can move either way): within 10%."""
    g32 = _grads_after_one_step(preset, "fp32", tmp_path)
    g16 = _grads_after_one_step(preset, "bf16", tmp_path)
    assert g32.keys() == g16.keys()
    for which, tol in (("G.", 0.10), ("D.", 0.05)):
        a = torch.cat([v.flatten() for k, v in g32.items() if k.startswith(which)])
        b = torch.cat([v.flatten() for k, v in g16.items() if k.startswith(which)])
        assert a.dtype == b.dtype == torch.float32  # fp32 master weights get fp32 gradients
        rel = float((a - b).norm() / a.norm())
        assert rel < tol, f"{which} gradients differ by {rel:.3f}"
        assert not torch.equal(a, b)  # bf16 really ran


@needs_bf16
@pytest.mark.parametrize("preset,over", [("mlp-cgan-m4", {}), ("default", {"data__limit": 128}),
                                         ("dcgan-r004", {"data__limit": 128})])
def test_bf16_run_resumes_bit_identically(tmp_path: Path, preset: str, over: dict) -> None:
    cfg = tiny(preset, precision="bf16", **over)
    Trainer(cfg, tmp_path / "a", progress=False).run()
    t = Trainer(tiny(preset, precision="bf16", **over), tmp_path / "b", progress=False)
    t.hooks.append(stop_at(1, 1))
    with pytest.raises(Interrupted):
        t.run()
    resume(tmp_path / "b", progress=False)
    same_state(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))
    saved = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert saved["precision"] == "bf16"


@needs_cuda
def test_cuda_bf16_step_matches_fp32(tmp_path: Path) -> None:
    cfg32 = tiny("default", device="cuda", precision="fp32")
    cfg16 = tiny("default", device="cuda", precision="bf16")
    grads = []
    for cfg in (cfg32, cfg16):
        t = Trainer(cfg, tmp_path / cfg.precision, progress=False)
        x, y = next(t.loader.epoch(0))
        t.train_step(x, y, do_g=True)
        grads.append(torch.cat([p.grad.flatten() for p in t.D.parameters()]))
    assert float((grads[0] - grads[1]).norm() / grads[0].norm()) < 0.05


def test_a_run_from_before_the_settings_resumes_in_fp32(tmp_path: Path) -> None:
    """Runs saved without `precision`/`compile` trained in fp32, uncompiled: they resume so."""
    run = tmp_path / "old"
    t = Trainer(tiny("mlp-cgan-m4", precision="fp32"), run, progress=False)
    t.hooks.append(stop_at(0, 1))
    with pytest.raises(Interrupted):
        t.run()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["precision"], saved["compile"]
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    ckpt = run / "checkpoints" / "last.pt"
    state = torch.load(ckpt, weights_only=False)
    del state["config"]["precision"], state["config"]["compile"]
    torch.save(state, ckpt)
    resume(run, progress=False)
    assert yaml.safe_load((run / "config.yaml").read_text())["precision"] == "fp32"


def _conv_weights(*modules: torch.nn.Module) -> list[torch.Tensor]:
    return [p for m in modules for p in m.parameters() if p.dim() == 4]


def test_channels_last_lays_out_g_d_and_ema_and_computes_the_same_step(tmp_path: Path) -> None:
    """channels_last changes the convolution kernels oneDNN picks, not the step: after one
    fp32 step the gradients match the contiguous run's to float rounding (measured 1.4e-6
    relative here at ndf 32; bound 1e-4). At ndf 64 they differ by 7e-4: G's gradients pass
    through the D that Adam's first step just moved by +-lr per weight, and a near-zero D
    gradient's sign can flip with rounding (see test_bf16_and_fp32_steps_agree)."""
    grads, layouts = {}, {}
    for fmt in ("contiguous", "channels_last"):
        t = Trainer(tiny("default", precision="fp32", memory_format=fmt, model__ndf=32),
                    tmp_path / fmt, progress=False)
        layouts[fmt] = [(w.is_contiguous(memory_format=torch.channels_last), w.is_contiguous())
                        for w in _conv_weights(t.G, t.D, t.ema.shadow)]
        x, y = next(t.loader.epoch(0))
        t.train_step(x, y, do_g=True)
        grads[fmt] = torch.cat([p.grad.flatten() for p in [*t.G.parameters(),
                                                             *t.D.parameters()]])
    assert all(cl for cl, _ in layouts["channels_last"])
    assert sum(not c for _, c in layouts["channels_last"]) >= 6  # all but C=1 / 1x1 shapes
    assert all(c for _, c in layouts["contiguous"])
    a, b = grads["contiguous"], grads["channels_last"]
    assert float((a - b).norm() / a.norm()) < 1e-4


@pytest.mark.parametrize("preset", ["default", pytest.param("resnet-cgan-r002",
                                                              marks=pytest.mark.slow),
                                    "mlp-cgan-m4"])
@pytest.mark.parametrize("r1", [0.0, 0.1])
def test_activations_in_place_compute_the_same_steps(tmp_path: Path, preset: str,
                                                     r1: float) -> None:
    """fast.setup runs ReLU/LeakyReLU in place; out of place (as gankit 0.1's modules ran) two
    steps give the same weights and gradients, bit for bit. With R1 (a double backward through
    them) autograd takes another path for the in-place op's second derivative: the same
    function, rounded differently (measured 1.4e-5 after two steps at lr 2e-4; bound lr / 4)."""
    over = dict(precision="fp32", step="autograd", loss__r1_gamma=r1, loss__r1_every=1)
    if preset == "default":
        over["model__ndf"] = 16
    out = {}
    for on in (True, False):
        t = Trainer(tiny(preset, **over), tmp_path / str(on), progress=False)
        acts = [m for net in (t.G, t.D) for m in net.modules()
                if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))]
        assert acts and all(m.inplace for m in acts)
        fast.activations_in_place([t.G, t.D], on)
        batches = t.loader.epoch(0)
        for _ in range(2):
            x, y = next(batches)
            t.train_step(x, y, do_g=True)
            t.step += 1
        params = [*t.G.parameters(), *t.D.parameters()]
        out[on] = ([p.detach().clone() for p in params], [p.grad for p in params])
    (weights, grads), (weights0, grads0) = out[True], out[False]
    if r1 == 0:
        assert all(torch.equal(a, b) for a, b in zip(weights + grads, weights0 + grads0))
    else:
        lr = t.cfg.optim.g_lr
        assert all((a - b).abs().max() <= lr / 4 for a, b in zip(weights, weights0))


def test_match_layouts_gives_loaded_adam_state_its_parameters_layout() -> None:
    """Fused Adam reads a parameter and its moments as flat memory: moments of another layout
    would be applied to the wrong weights (checked: max error 0.8 after one step here)."""
    torch.manual_seed(0)
    w = torch.randn(6, 4, 3, 3)
    ref = torch.nn.Parameter(w.clone())
    p = torch.nn.Parameter(w.clone().contiguous(memory_format=torch.channels_last))
    opt_ref = torch.optim.Adam([ref], lr=0.1, fused=True)
    opt = torch.optim.Adam([p], lr=0.1, fused=True)
    ref.grad = torch.randn(6, 4, 3, 3)
    adam_step(opt_ref)
    opt.load_state_dict(copy.deepcopy(opt_ref.state_dict()))  # contiguous moments
    p.data.copy_(ref.data)
    fast.match_layouts(opt)
    assert opt.state[p]["exp_avg"].stride() == p.stride()
    g = torch.randn(6, 4, 3, 3)
    ref.grad, p.grad = g.clone(), g.clone().contiguous(memory_format=torch.channels_last)
    adam_step(opt_ref)
    adam_step(opt)
    assert torch.equal(ref, p)


def test_a_contiguous_run_resumes_channels_last(tmp_path: Path) -> None:
    """memory_format is resumable: a run saved contiguous (as every run before the setting)
    continues channels_last and ends where the uninterrupted run ends, to rounding."""
    # kernels plain: the planes route's image convolution (1 channel) rounds differently in
    # the two layouts (the runs end 1e-4 apart), which would hide what this test looks for
    over = {"precision": "fp32", "data__limit": 128, "model__ndf": 32,  # the width measured
            "kernels": "plain"}
    Trainer(tiny("default", memory_format="contiguous", **over), tmp_path / "a",
            progress=False).run()
    t = Trainer(tiny("default", memory_format="contiguous", **over), tmp_path / "b",
                progress=False)
    t.hooks.append(stop_at(1, 1))
    with pytest.raises(Interrupted):
        t.run()
    resume(tmp_path / "b", progress=False,
           cfg=tiny("default", memory_format="channels_last", **over))
    a, b = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    va = torch.cat([v.flatten().float() for v in a.values()])
    vb = torch.cat([v.flatten().float() for v in b.values()])
    assert float((va - vb).norm() / va.norm()) < 1e-5  # measured 1e-8; 3e-3 when mismatched
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())[
        "memory_format"] == "channels_last"


@pytest.mark.slow
def test_compiled_run_trains_and_is_recorded(tmp_path: Path) -> None:
    """compile=on compiles G and D in place: same modules, same state_dict keys."""
    if not fast.compiler_available():
        pytest.skip("no C++ compiler for torch.compile's CPU backend")
    cfg = tiny("mlp-cgan-m4", compile="on", epochs=1)
    t = Trainer(cfg, tmp_path / "run", progress=False)
    keys = set(t.G.state_dict())
    t.run()
    assert set(t.G.state_dict()) == keys and not any("_orig_mod" in k for k in keys)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["compile"] == "on"
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["G"].values())


def test_adam_step_shares_equal_step_counts_and_keeps_unequal_ones_apart() -> None:
    """Parameters stepped together share one step tensor (one add per step); counts loaded
    as separate tensors are joined when equal, and each advances alone when they are not."""
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    net(torch.randn(4, 3)).sum().backward()
    adam_step(opt)
    w, b = net.weight, net.bias
    assert opt.state[w]["step"] is opt.state[b]["step"]
    opt.state[w]["step"] = torch.tensor(5.0)
    opt.state[b]["step"] = torch.tensor(5.0)
    adam_step(opt)
    assert opt.state[w]["step"] is opt.state[b]["step"] and float(opt.state[w]["step"]) == 6
    opt.state[b]["step"] = torch.tensor(2.0)
    adam_step(opt)
    assert (float(opt.state[w]["step"]), float(opt.state[b]["step"])) == (7, 3)


def test_compile_with_a_gradient_penalty_is_refused_or_left_off(tmp_path: Path) -> None:
    """torch.compile's autograd does not differentiate twice (R1, WGAN-GP): compile=on is one
    config error that says so, auto (which compiles on CUDA) trains such a loss uncompiled."""
    with pytest.raises(ConfigError, match="compile=on cannot train this loss.*compile=off"):
        Trainer(tiny("default", compile="on"), tmp_path / "a", progress=False)
    assert fast.resolve_compile("auto", torch.device("cuda"), penalty=True) is False
    with pytest.raises(ConfigError, match="compile=on cannot"):  # a saved config dict too
        fast.comparable(to_dict(resolve("default", {"compile": "on"})))
