"""The bf16 Adam kernel in C (native/adam.py, csrc/adam_bf16.c; built by native/build.py):
torch's fused Adam and bf16 cast bit for bit on one thread, the fused bf16 step with it equal
to the step with torch's passes (`kernels: plain`) bit for bit, and a clean fallback where it
cannot be built."""
from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import pytest
import torch

from gankit.native import adam as native
from gankit.native import build
from gankit.native.cpu import cpu_flags
from gankit.training.ensemble import Ensemble
from gankit.training.loop import Trainer
from tests.conftest import tiny

needs_kernel = pytest.mark.skipif(native.kernel() is None,
                                  reason=f"native Adam kernel: {native.why_not()}")


def torch_update(p, m, v, g32, step, lr, betas, eps, k):
    """torch's fused Adam on each member's slice (as the step calls it), then the bf16 cast."""
    torch._fused_adam_([p[i] for i in range(k)], [g32[i] for i in range(k)],
                       [m[i] for i in range(k)], [v[i] for i in range(k)], [], [step] * k,
                       lr=lr, beta1=betas[0], beta2=betas[1], weight_decay=0.0, eps=eps,
                       amsgrad=False, maximize=False)
    return p.bfloat16()


@needs_kernel
@pytest.mark.parametrize("beta1", [0.5, 0.9, 0.0])   # exp_avg's lerp from either end
@pytest.mark.parametrize("grad_dtype", ["bf16", "fp32"])
def test_kernel_is_torch_fused_adam_and_cast_bit_for_bit(beta1: float, grad_dtype: str) -> None:
    torch.manual_seed(0)
    # every tail length (the vector loop takes 16, torch's compiled tail 8 then 1 at a time)
    sizes = [16 * 3 + r for r in range(16)] + [1, 7, 8, 9, 1000]
    for k in (1, 3):
        rows, ref = [], []
        shared = torch.zeros(())  # the step count of the first rows: advanced once a step
        for i, n in enumerate(sizes):
            p = torch.randn(k, n) * 0.05
            rows.append([p, torch.zeros(k, n), torch.zeros(k, n), None, None,
                         torch.empty(k, n, dtype=torch.bfloat16),
                         shared if i < 4 else torch.zeros(())])
            ref.append([p.clone(), torch.zeros(k, n), torch.zeros(k, n), torch.zeros(())])
        adam = native.AdamBF16(k)
        stats = torch.zeros(k, 6)
        for s in range(5):
            grads = [torch.randn(k, n) * 10.0 ** -s for n in sizes]
            for row, r, g in zip(rows, ref, grads):
                low = g.bfloat16()
                row[3], row[4] = (low, g) if grad_dtype == "bf16" else (None, g)
                r[3].add_(1)
                r.append(low.float() if grad_dtype == "bf16" else g)
            sums = adam.step([tuple(row) for row in rows], 2e-4, (beta1, 0.999), 1e-8,
                             stats[:, 5])  # the norms into a column, as the step's statistics
            for t, (row, r) in enumerate(zip(rows, ref)):
                g_read = r.pop()
                low = torch_update(r[0], r[1], r[2], g_read, r[3], 2e-4, (beta1, 0.999), 1e-8, k)
                for mine, theirs, what in ((row[0], r[0], "weight"), (row[1], r[1], "exp_avg"),
                                           (row[2], r[2], "exp_avg_sq"),
                                           (row[5], low, "bf16 copy"), (row[6], r[3], "step")):
                    assert torch.equal(mine, theirs), (k, sizes[t], s, what)
                torch.testing.assert_close(sums[t], g_read.pow(2).sum(1), rtol=1e-5, atol=0)
            total = torch.zeros(k)
            for t in range(len(sizes)):  # the tensors' sums added in order, in fp32
                total = total + sums[t]
            assert torch.equal(stats[:, 5], total.sqrt()) and not stats[:, :5].any()


@needs_kernel
def test_kernel_results_do_not_depend_on_the_number_of_threads() -> None:
    """It cuts the work into fixed pieces (16,384 elements) whatever the threads, so two
    threads compute what one does, the squared sums too, and so torch's one-thread update."""
    torch.manual_seed(1)
    n, k = 3 * 16384 + 21, 2
    out = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(1)
            p, m, v = torch.randn(k, n) * 0.05, torch.zeros(k, n), torch.zeros(k, n)
            w, step = torch.empty(k, n, dtype=torch.bfloat16), torch.zeros(())
            adam, norms = native.AdamBF16(k), torch.empty(k)
            for s in range(3):
                g = torch.randn(k, n) * 10.0 ** -s
                sums = adam.step([(p, m, v, g.bfloat16(), g, w, step)], 1e-3, (0.5, 0.999), 1e-8,
                                 norms)
            out[threads] = (p, m, v, w, sums.clone(), norms.clone(), step.clone())
    finally:
        torch.set_num_threads(before)
    for a, b in zip(out[1], out[2]):
        assert torch.equal(a, b)


def cfg_of(**over):
    return tiny("mlp-cgan-m4", **{"eval.every": 0, "data.limit": 256, "step": "fused",
                                  "precision": "bf16", **over})


def train_steps(tr, n: int) -> None:
    batches = tr.loader.epoch(0)
    for i in range(n):
        x, y = next(batches)
        tr.train_step(x, y, do_g=(i + 1) % tr.d_steps == 0)
        tr.step += 1


VARIANTS = {"report000": {},
            "embeddings-dsteps2": {"model.g_cond": "embedding", "d_steps": 2, "ema": 0.99,
                                   "loss.name": "nonsaturating"}}


def replace_state(opt: torch.optim.Adam, how: str) -> None:
    """New moment tensors: all of them as a loaded checkpoint brings them, or one parameter's
    state dict put in anew (as the ensemble and adam._advance do)."""
    if how == "load":
        opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    else:
        p = list(opt.state)[-1]
        opt.state[p] = {key: t.clone() for key, t in opt.state[p].items()}


@needs_kernel
@pytest.mark.parametrize("replace", ["load", "one-dict"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_step_with_the_kernel_is_the_step_with_torch_passes(tmp_path: Path, variant: str,
                                                            replace: str) -> None:
    """Weights, Adam states and bf16 weight copies bit for bit; the logged gradient norms
    (summed in another order) to 1e-5. Midway the optimisers' states are replaced (new
    tensors: the kernel must follow them, where the step keeps its Adam rows from step to step
    while the state dicts stay). Both take their GEMMs and elementwise work from
    torch (`kernels: fast` would also keep the GEMMs as oneDNN primitives and run the rest
    through native/mlp_parts.py, which round differently: test_onednn.py, test_mlp_parts.py)."""
    runs = {}
    for kernels in ("fast", "plain"):
        tr = Trainer(cfg_of(kernels=kernels, **VARIANTS[variant]), tmp_path / kernels,
                     progress=False)
        assert (tr.fused.native is not None) == (kernels == "fast")
        tr.fused.gemm = tr.fused.parts = None
        train_steps(tr, 3)
        kept = tr.fused._adam_kept.get("D")
        for opt in (tr.opt_g, tr.opt_d):
            replace_state(opt, replace)
        train_steps(tr, 3)
        if kernels == "fast":  # kept from step to step, made anew after the replacement
            assert kept is not None and tr.fused._adam_kept["D"] is not kept
            rows = tr.fused._adam_kept["D"][1]
            train_steps(tr, 1)
            assert tr.fused._adam_kept["D"][1] is rows
        else:
            train_steps(tr, 1)
        runs[kernels] = tr
    a, b = runs["fast"], runs["plain"]
    for net in ("G", "D"):
        for (n, p), q in zip(getattr(a, net).named_parameters(), getattr(b, net).parameters()):
            assert torch.equal(p, q), (net, n)
    for oa, ob in ((a.opt_g, b.opt_g), (a.opt_d, b.opt_d)):
        for pa, pb in zip(oa.param_groups[0]["params"], ob.param_groups[0]["params"]):
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(oa.state[pa][key], ob.state[pb][key]), key
    b.fused._cast("G"), b.fused._cast("D")
    for low_a, low_b in ((a.fused.gW, b.fused.gW), (a.fused.dW, b.fused.dW)):
        for n in low_a:
            assert torch.equal(low_a[n], low_b[n]), n
    torch.testing.assert_close(a.d_sum, b.d_sum, rtol=1e-5, atol=0)
    torch.testing.assert_close(a.g_sum, b.g_sum, rtol=1e-5, atol=0)
    assert torch.equal(a.d_sum[:5], b.d_sum[:5])   # the losses and D statistics themselves


@needs_kernel
def test_ensemble_step_with_the_kernel_is_the_step_with_torch_passes(tmp_path: Path) -> None:
    ens = {}
    for kernels in ("fast", "plain"):
        cfg = cfg_of(kernels=kernels)
        e = Ensemble.build([(dataclasses.replace(cfg, seed=s), tmp_path / f"{kernels}{s}")
                            for s in (0, 5)], progress=False)
        assert (e.fused.native is not None) == (kernels == "fast")
        e.fused.gemm = e.fused.parts = None  # torch's GEMMs and elementwise work, as above
        batches = e._batches(0)
        for _ in range(4):
            e.step_stacked(*next(batches), do_g=True)
        ens[kernels] = e
    a, b = ens["fast"], ens["plain"]
    for net in ("G", "D"):
        for n, p in getattr(a, net).params.items():
            assert torch.equal(p, getattr(b, net).params[n]), (net, n)
    for ma, mb in zip(a.members, b.members):
        torch.testing.assert_close(ma.d_sum, mb.d_sum, rtol=1e-5, atol=0)
        torch.testing.assert_close(ma.g_sum, mb.g_sum, rtol=1e-5, atol=0)


def test_without_a_compiler_one_line_and_torch_passes(tmp_path: Path, monkeypatch,
                                                      capsys) -> None:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "no-such-cc")
    native.report_unavailable.cache_clear()
    build._build.cache_clear()
    try:
        reason = native.why_not()
        if cpu_flags() >= build.NEEDED_FLAGS:
            assert reason == "no C compiler (no-such-cc) on the PATH"
        assert native.kernel() is None
        tr = Trainer(cfg_of(), tmp_path / "run", progress=False)
        assert tr.fused is not None and tr.fused.native is None
        train_steps(tr, 2)
        Trainer(cfg_of(), tmp_path / "run2", progress=False)  # said once per process
        err = capsys.readouterr().err
        assert err.count("bf16 Adam through torch's separate passes") == 1, err
        assert reason in err
    finally:
        build._build.cache_clear()


@needs_kernel
def test_a_failed_build_is_one_line_naming_the_compiler(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "false")        # a "compiler" that fails
    build._build.cache_clear()
    try:
        assert native.kernel() is None
        assert native.why_not().startswith("false could not build adam_bf16.c")
        assert list((tmp_path / "cache" / "native").iterdir()) == []   # nothing half-written
    finally:
        build._build.cache_clear()


@needs_kernel
def test_a_damaged_library_in_the_cache_is_built_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    build._build.cache_clear()
    lib = build.library_path(native.NAME, os.environ.get("CC", "cc"))
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"not a library")           # e.g. left by a disk that filled up
    try:
        assert native.kernel() is not None, native.why_not()
        assert lib.stat().st_size > 1000
    finally:
        build._build.cache_clear()


@needs_kernel
def test_an_unwritable_cache_is_one_line(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "file"))   # a file where a folder goes
    build._build.cache_clear()
    try:
        assert native.kernel() is None
        assert native.why_not().startswith("could not build adam_bf16.c into ")
    finally:
        build._build.cache_clear()


@pytest.mark.slow
def test_not_used_where_torch_runs_other_than_its_avx512_kernels(tmp_path: Path) -> None:
    """Its numbers are torch's AVX-512 kernel's: where torch picks its AVX2 ones, the step
    keeps torch's passes (and so torch's numbers)."""
    import subprocess
    import sys
    code = ("from gankit.native import adam as native; import torch; "
            "print(torch.backends.cpu.get_cpu_capability()); print(native.why_not())")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "GANKIT_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "AVX2"
    if cpu_flags() >= build.NEEDED_FLAGS:
        assert out[1] == "torch runs its AVX2 kernels here (ATEN_CPU_CAPABILITY)"
    else:
        assert out[1].startswith("this CPU has no ")
