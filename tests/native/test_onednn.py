"""GEMMs as kept oneDNN primitives (native/onednn.py, csrc/onednn_matmul.c): torch's
products within rounding for every layout the fused MLP step passes, the bias and each
activation applied, a primitive reused on new data, and one line where oneDNN is missing.

Tolerances: fp32 to 1e-5 of the largest entry (summation order), 1e-4 with tanh (oneDNN's
tanh post-op is an approximation within ~3e-5, as in torch's own fused `_linear_pointwise`);
bf16 results are rounded from fp32 sums, so they are held to torch's bf16 product to two bf16
steps (2^-6 relative: the activation is applied before or after the rounding)."""
from __future__ import annotations

import pytest
import torch

from gankit.native import onednn
from gankit.native.build import on_threads

needs_onednn = pytest.mark.skipif(onednn.kernel() is None,
                                  reason=f"oneDNN matmul: {onednn.why_not()}")
ACTS = {None: lambda t: t, "relu": torch.relu, "lrelu": lambda t: torch.nn.functional.leaky_relu(
    t, 0.2), "tanh": torch.tanh}


def close(ours: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, fp32_tol=1e-5) -> None:
    tol = fp32_tol if dtype == torch.float32 else 2 ** -6
    scale = ref.abs().max().clamp_min(1e-12)
    assert (ours.float() - ref.float()).abs().max() <= tol * scale


def operands(m: int, k: int, n: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(m, k, generator=g).to(dtype), torch.randn(n, k, generator=g).to(dtype),
            torch.randn(n, generator=g).to(dtype))


@needs_onednn
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("shape", [(64, 138, 128), (128, 794, 256), (3, 5, 7), (1, 1, 1)])
def test_a_linear_layer_is_torchs(shape, act, dtype) -> None:
    """act(x w^T + b) into a given buffer, w^T read in place (a transposed view)."""
    x, w, b = operands(*shape, dtype)
    out = torch.empty(shape[0], shape[2], dtype=dtype)
    got = onednn.Matmuls()(x, w.mT, out, b, act)
    assert got is out
    close(out, ACTS[act](torch.addmm(b.float(), x.float(), w.float().mT)).to(dtype), dtype,
          1e-4 if act == "tanh" else 1e-5)


@needs_onednn
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_backward_layouts(dtype) -> None:
    """The weight gradient dh^T a (a transposed operand), the input gradient dh w, and
    through a column slice of w (D's image columns): torch's products."""
    mm = onednn.Matmuls()
    a, w, _ = operands(64, 794, 256, dtype)
    dh = torch.randn(64, 256).to(dtype)
    close(mm(dh.mT, a), torch.mm(dh.mT, a), dtype)
    close(mm(dh, w), torch.mm(dh, w), dtype)
    sliced = w[:, :784]
    assert not sliced.is_contiguous()
    close(mm(dh, sliced), torch.mm(dh, sliced), dtype)


@needs_onednn
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_batch_of_products(dtype) -> None:
    """K members' layers at once (the fused ensemble step): each member's bias and product,
    a strided batch of rows (D's fake half) and of columns (D's image columns) read in place."""
    mm = onednn.Matmuls()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 2 * 16, 40, generator=g).to(dtype)[:, 16:]   # rows 16-31 of each
    w = torch.randn(4, 24, 44, generator=g).to(dtype)[..., :40]     # 40 of 44 columns
    b = torch.randn(4, 24, generator=g).to(dtype)
    got = mm(x, w.mT, bias=b, act="lrelu")
    ref = torch.nn.functional.leaky_relu(torch.baddbmm(b.float().unsqueeze(1), x.float(),
                                                       w.float().mT), 0.2)
    close(got, ref.to(dtype), dtype)
    dh = torch.randn(4, 16, 24, generator=g).to(dtype)
    close(mm(dh.mT, x), torch.bmm(dh.mT, x), dtype)
    close(mm(dh, w), torch.bmm(dh, w), dtype)


@needs_onednn
def test_a_kept_primitive_reads_each_calls_data() -> None:
    """The second call of a shape reuses the first's primitive, on the new addresses."""
    mm = onednn.Matmuls()
    for seed in range(3):
        x, w, b = operands(16, 24, 8, torch.bfloat16, seed)
        close(mm(x, w.mT, bias=b, act="relu"),
              torch.relu(torch.addmm(b.float(), x.float(), w.float().mT)).bfloat16(),
              torch.bfloat16)
    assert len(mm._plans) == 1


@needs_onednn
def test_another_thread_count_makes_another_primitive() -> None:
    mm = onednn.Matmuls()
    x, w, _ = operands(32, 48, 40, torch.float32)
    for t in (1, 2):
        with on_threads(t):
            close(mm(x, w.mT), x @ w.mT, torch.float32)
    assert len(mm._plans) == 2


@needs_onednn
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("members", [0, 3])
def test_a_pair_runs_its_two_products_side_by_side(dtype, members) -> None:
    """A layer's weight and input gradients as one pair on two threads: each the product its
    one-thread primitive makes alone, bit for bit (each thread runs its own primitive on its
    own scratchpad), and torch's product within rounding; one run's and a batch of members'."""
    lead = (members,) if members else ()
    g = torch.Generator().manual_seed(1)
    dh, a, w = (torch.randn(*lead, *s, generator=g).to(dtype)
                for s in ((64, 256), (64, 138), (256, 138)))
    mm = onednn.Matmuls()
    with on_threads(2):
        dw, dx = mm.pair((dh.mT, a), (dh, w))
    with on_threads(1):
        alone = onednn.Matmuls()
        assert torch.equal(dw, alone(dh.mT, a)) and torch.equal(dx, alone(dh, w))
    close(dw, dh.mT.float() @ a.float(), dtype)
    close(dx, dh.float() @ w.float(), dtype)
    assert sorted(k[-1] for k in mm._plans) == [0, 1]  # two primitives, one per side


@needs_onednn
def test_on_one_thread_a_pair_is_two_calls() -> None:
    mm = onednn.Matmuls()
    x, w, b = operands(16, 24, 8, torch.bfloat16)
    with on_threads(1):
        h, y = mm.pair((x, w.mT, None, b, "relu"), (x, w.mT))
    assert torch.equal(h, mm(x, w.mT, bias=b, act="relu")) and torch.equal(y, mm(x, w.mT))
    assert [k[-1] for k in mm._plans] == [None, None]


@needs_onednn
def test_what_it_refuses() -> None:
    mm = onednn.Matmuls()
    x = torch.randn(4, 5)
    with pytest.raises(ValueError, match="2-D"):
        mm(x, torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="fp32/bf16 CPU tensors"):
        mm(x, torch.randn(6, 3))
    with pytest.raises(ValueError, match="fp32/bf16"):
        mm(x.double(), torch.randn(5, 3).double())


def test_missing_onednn_is_one_line(monkeypatch, capsys) -> None:
    """Without oneDNN's package: why_not names it and how to install it; the step's message is
    one line, once."""
    from gankit.native import build
    monkeypatch.setattr(onednn.KERNEL, "extra", lambda: ((), "oneDNN's library is not "
                                                         "installed (pip install x)"))
    build._build.cache_clear()  # the build is cached per Kernel object
    try:
        assert onednn.kernel() is None and "pip install" in onednn.why_not()
        with pytest.raises(RuntimeError, match="not available"):
            onednn.Matmuls()
        onednn.report_unavailable.cache_clear()
        onednn.report_unavailable()
        onednn.report_unavailable()
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "GEMMs through torch" in err and "pip install" in err
    finally:
        onednn.report_unavailable.cache_clear()
        build._build.cache_clear()


@needs_onednn
def test_it_needs_no_avx512(monkeypatch) -> None:
    """The file has no vector code of its own (oneDNN picks its code at run time), so a CPU
    without AVX-512 keeps the kept primitives where the AVX-512 kernels step aside."""
    from gankit.native import adam, build
    monkeypatch.setattr(build, "cpu_flags", lambda: set())
    build._build.cache_clear()
    try:
        assert "avx512" in adam.why_not()
        assert onednn.why_not() is None
        assert "-mavx512f" not in build.flags(avx512=False)
    finally:
        build._build.cache_clear()


def test_where_it_cannot_run_it_says_so_before_asking_for_the_package(monkeypatch) -> None:
    """On another system or processor the reason is the platform, not a package to install
    (the package is only a dependency on Linux x86-64)."""
    from gankit.native import build
    monkeypatch.setattr(build.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(onednn.KERNEL, "extra", lambda: ((), "pip install x"))
    build._build.cache_clear()
    try:
        why = onednn.why_not()
        assert "Linux on x86-64" in why and "pip install" not in why
    finally:
        build._build.cache_clear()


@needs_onednn
def test_a_product_onednn_cannot_make_goes_through_torch(monkeypatch, capsys) -> None:
    """Where oneDNN makes no primitive (oneDNN 3.2 has no bf16 matmul without AVX-512): torch's
    product, bias and activation, and one line per reason."""
    mm = onednn.Matmuls()
    monkeypatch.setattr(mm.lib, "gankit_mm_make", lambda *args: None)
    onednn.report_fallback.cache_clear()
    for dtype in (torch.float32, torch.bfloat16):
        x, w, b = operands(16, 24, 8, dtype)
        ref = torch.nn.functional.leaky_relu(torch.addmm(b.float(), x.float(), w.float().mT), 0.2)
        close(mm(x, w.mT, bias=b, act="lrelu"), ref.to(dtype), dtype)
        xs = torch.stack([x, x])
        close(mm(xs, torch.stack([w, w]).mT, bias=torch.stack([b, b]), act="lrelu"),
              torch.stack([ref, ref]).to(dtype), dtype)
    assert mm.impl(x, w.mT) == "torch (no oneDNN primitive)"
    err = capsys.readouterr().err
    assert err.count("GEMMs through torch") == 2 and "Traceback" not in err  # fp32, bf16
