"""The fused MLP step's elementwise work in C (native/mlp_parts.py, csrc/mlp_parts.c) against
the torch operations training/mlp_step.py runs without it.

Elementwise results (the dropout mask, each activation's backward, the head's outer product)
round as torch's operations round them: bit for bit. Sums (bias and head gradients, logits,
the loss and its statistics) add in another order: fp32 to 1e-5 of the largest entry, a bf16
bias gradient to one bf16 step (2^-7 relative). K stacked members give each member's own
results bit for bit."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit.native import mlp_parts
from gankit.training.mlp_step import MLPStep

pytestmark = pytest.mark.skipif(mlp_parts.kernel() is None,
                                reason=f"the MLP step's C parts: {mlp_parts.why_not()}")
DTYPES = [torch.float32, torch.bfloat16]
ACTS = [None, "relu", "lrelu", "tanh"]


def act_fwd(x: torch.Tensor, act: str | None) -> torch.Tensor:
    if act == "relu":
        return torch.relu(x)
    if act == "lrelu":
        return F.leaky_relu(x, 0.2)
    if act == "tanh":
        return torch.tanh(x.float()).to(x.dtype)
    return x


act_bwd = MLPStep._act_bwd  # the torch route's activation backward (torch's kernels)


def rand(*shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def mask_of(shape, dtype, seed=1) -> torch.Tensor:
    """A dropout mask as torch draws it (keep 0.7, scaled by 1/0.7), in the step's type."""
    m = torch.empty(shape).bernoulli_(0.7, generator=torch.Generator().manual_seed(seed))
    return m.to(dtype).div_(0.7)


def close(ours: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
    scale = ref.float().abs().max().clamp_min(1e-12)
    assert (ours.float() - ref.float()).abs().max() <= tol * scale


def sum_tol(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float32 else 2 ** -7


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("masked", [False, True])
def test_a_layers_backward_is_torchs(dtype, act, masked) -> None:
    """Mask and activation backward bit for bit, in place or into a contiguous output; the
    bias gradient to its sum's rounding; rows read at a stride (G's output gradient, a column
    slice) and written so."""
    y = act_fwd(rand(37, 53, dtype=dtype, seed=2), act)
    mask = mask_of((37, 53), dtype) if masked else None
    full = rand(37, 60, dtype=dtype, seed=3)
    dh = full[:, :53]
    assert not dh.is_contiguous()
    ref = dh.clone()
    if mask is not None:
        ref.mul_(mask)
    ref = act_bwd(ref, y, act)
    db = torch.empty(53, dtype=dtype)
    untouched = full[:, 53:].clone()
    before = dh.clone()
    out = torch.full((37, 53), float("nan"), dtype=dtype)
    out_db = torch.empty(53, dtype=dtype)
    # into a contiguous buffer (G's output gradient, whose GEMMs then read contiguous rows):
    # the same values, dh untouched
    assert mlp_parts.act_bwd(dh, y, mask, act, out_db, out) is out
    assert torch.equal(out, ref) and torch.equal(dh, before)
    assert mlp_parts.act_bwd(dh, y, mask, act, db) is dh
    assert torch.equal(dh, ref) and torch.equal(db, out_db)
    assert torch.equal(full[:, 53:], untouched)
    close(db, ref.float().sum(0), sum_tol(dtype))


def torch_head_d(h, w, bias, wd, mask, act, t_real, scale):
    """mlp_step.py's torch route from D's last hidden features to that layer's gradients."""
    b = h.shape[0] // 2
    l32 = torch.addmm(bias, h.float(), w.mT).squeeze(-1)
    target = torch.cat([torch.full((b,), t_real), torch.zeros(b)])
    sign = torch.cat([torch.ones(b), -torch.ones(b)])
    sig = torch.sigmoid(l32)
    stats = torch.stack([
        (F.softplus(l32) - target * l32).sum() * scale, sig[:b].mean(), sig[b:].mean(),
        (l32 * sign).gt(0)[:b].float().mean(), (l32 * sign).gt(0)[b:].float().mean()])
    dl = (sig - target) * scale
    gw, gb = (dl[None] @ h.float()), dl.sum(0, keepdim=True)
    dh = torch.mul(dl.to(h.dtype).unsqueeze(-1), wd)
    if mask is not None:
        dh.mul_(mask)
    dh = act_bwd(dh, h, act)
    return l32, stats, gw, gb, dh, dh.float().sum(0)


def head_inputs(dtype, act, masked, rows=2 * 24, n=40, seed=0):
    h = act_fwd(rand(rows, n, dtype=dtype, seed=seed), act)
    w, bias = rand(1, n, seed=seed + 1) / 3, rand(1, seed=seed + 2)
    mask = mask_of((rows, n), dtype, seed + 3) if masked else None
    return h, w, bias, w.to(dtype), mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("masked", [False, True])
def test_d_head_loss_and_gradients_are_torchs(dtype, act, masked) -> None:
    """Logits, the loss and statistics, the head's gradients, the gradient back through the
    last hidden layer and its bias gradient, with label smoothing and d_average's scale."""
    h, w, bias, wd, mask = head_inputs(dtype, act, masked)
    b, n = h.shape[0] // 2, h.shape[1]
    t_real, scale = 0.9, 0.5 / b
    l32, stats, gw, gb = torch.empty(2 * b), torch.empty(6), torch.empty(1, n), torch.empty(1)
    dh, db = torch.empty(2 * b, n, dtype=dtype), torch.empty(n, dtype=dtype)
    mlp_parts.head_d(h, w, bias, wd, mask, act, t_real, scale, l32, stats, gw, gb, dh, db)
    ref = torch_head_d(h, w, bias, wd, mask, act, t_real, scale)
    close(l32, ref[0], 1e-5)
    torch.testing.assert_close(stats[:5], ref[1], rtol=1e-5, atol=1e-6)
    close(gw, ref[2], 1e-5)
    close(gb, ref[3], 1e-5)
    # dh is elementwise from the logits' gradient, itself to float rounding: in bf16 the
    # rounding of dl may land one step apart
    close(dh, ref[4], 1e-5 if dtype == torch.float32 else 2 ** -7)
    close(db, ref[5], sum_tol(dtype) * 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("minimax", [True, False])
def test_g_head_loss_and_gradient_are_torchs(dtype, minimax) -> None:
    h, w, bias, wd, mask = head_inputs(dtype, "lrelu", True, rows=24)
    b = h.shape[0]
    l = torch.empty(2 * b)[b:]
    loss, dh = torch.empty(()), torch.empty(b, h.shape[1], dtype=dtype)
    mlp_parts.head_g(h, w, bias, wd, mask, "lrelu", minimax, l, loss, dh)
    ref_l = torch.addmm(bias, h.float(), w.mT).squeeze(-1)
    if minimax:
        ref_loss, dl = -F.softplus(ref_l).mean(), torch.sigmoid(ref_l) * (-1.0 / b)
    else:
        ref_loss, dl = F.softplus(-ref_l).mean(), (torch.sigmoid(ref_l) - 1) * (1.0 / b)
    ref_dh = act_bwd(torch.mul(dl.to(dtype).unsqueeze(-1), wd).mul_(mask), h, "lrelu")
    close(l, ref_l, 1e-5)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    close(dh, ref_dh, 1e-5 if dtype == torch.float32 else 2 ** -7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_gradient_is_torchs(dtype) -> None:
    """Rows summed per label, times the columns of the weight that read the embedding (a
    strided view): mlp_step.py's index_add and GEMM."""
    dh, y = rand(48, 30, dtype=dtype, seed=4), torch.randint(0, 7, (48,))
    w = rand(30, 25, dtype=dtype, seed=5)
    cols = w[:, 20:]
    g = torch.empty(7, 5)
    mlp_parts.embed_grad(dh, y, cols, g)
    per = torch.zeros(7, 30).index_add_(0, y, dh.float())
    close(g, per @ cols.float(), 1e-5)


def test_members_are_each_run_alone() -> None:
    """K stacked members (the ensemble's lead dimension) give each member's own results,
    bit for bit, in every function."""
    dtype, K, b, n = torch.bfloat16, 3, 16, 24
    ins = [head_inputs(dtype, "lrelu", True, rows=2 * b, n=n, seed=10 * k) for k in range(K)]
    h, w, bias, wd, mask = (torch.stack(t) for t in zip(*ins))
    l32, stats = torch.empty(K, 2 * b), torch.empty(K, 6)
    gw, gb = torch.empty(K, 1, n), torch.empty(K, 1)
    dh, db = torch.empty(K, 2 * b, n, dtype=dtype), torch.empty(K, n, dtype=dtype)
    mlp_parts.head_d(h, w, bias, wd, mask, "lrelu", 1.0, 1 / b, l32, stats, gw, gb, dh, db)
    gl, gloss = torch.empty(K, 2 * b), torch.empty(K, 2)
    gdh = torch.empty(K, b, n, dtype=dtype)
    mlp_parts.head_g(h[:, :b].contiguous(), w, bias, wd, mask[:, :b].contiguous(), "lrelu",
                     True, gl[:, b:], gloss[:, 0], gdh)
    y = torch.randint(0, 5, (K, 2 * b))
    cols = rand(K, n, 9, dtype=dtype, seed=7)[..., 4:]
    g = torch.empty(K, 5, 5)
    mlp_parts.embed_grad(dh, y, cols, g)
    lay, lay_db = dh.clone(), torch.empty(K, n, dtype=dtype)
    mlp_parts.act_bwd(lay, h, mask, "tanh", lay_db)
    wide = torch.cat([dh, torch.zeros(K, 2 * b, 3, dtype=dtype)], -1)  # members' strided rows
    into = torch.empty(K, 2 * b, n, dtype=dtype)
    mlp_parts.act_bwd(wide[..., :n], h, mask, "tanh", None, into)
    assert torch.equal(into, lay)
    for k in range(K):
        one = (torch.empty(2 * b), torch.empty(6), torch.empty(1, n), torch.empty(1),
               torch.empty(2 * b, n, dtype=dtype), torch.empty(n, dtype=dtype))
        mlp_parts.head_d(h[k], w[k], bias[k], wd[k], mask[k], "lrelu", 1.0, 1 / b, *one)
        for got, want in zip((l32, stats[:, :5], gw, gb, dh, db), (*one[:1], one[1][:5], *one[2:])):
            assert torch.equal(got[k], want)
        gone = (torch.empty(b), torch.empty(()), torch.empty(b, n, dtype=dtype))
        mlp_parts.head_g(h[k, :b], w[k], bias[k], wd[k], mask[k, :b], "lrelu", True, *gone)
        assert torch.equal(gl[k, b:], gone[0]) and torch.equal(gloss[k, 0], gone[1])
        assert torch.equal(gdh[k], gone[2])
        ge = torch.empty(5, 5)
        mlp_parts.embed_grad(dh[k], y[k], cols[k], ge)
        assert torch.equal(g[k], ge)
        lk, lk_db = dh[k].clone(), torch.empty(n, dtype=dtype)
        mlp_parts.act_bwd(lk, h[k], mask[k], "tanh", lk_db)
        assert torch.equal(lay[k], lk) and torch.equal(lay_db[k], lk_db)


def test_refuses_other_types_and_layouts() -> None:
    with pytest.raises(ValueError, match="fp32 or bf16 CPU"):
        mlp_parts.act_bwd(torch.zeros(4, 4, dtype=torch.float16),
                          torch.zeros(4, 4, dtype=torch.float16), None, "relu", None)
    with pytest.raises(ValueError, match="an output of their shape and type"):
        mlp_parts.act_bwd(torch.zeros(4, 4), torch.zeros(4, 4), None, "relu", None,
                          torch.zeros(4, 4, dtype=torch.bfloat16))
    h = torch.zeros(2, 8, 4)
    with pytest.raises(ValueError, match="contiguous"):
        mlp_parts.head_g(h[:, :4], torch.zeros(2, 1, 4), torch.zeros(2, 1), torch.zeros(2, 1, 4),
                         None, "relu", True, torch.zeros(2, 4), torch.zeros(2),
                         torch.zeros(2, 4, 4))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label", ["onehot", "embedding", "none"])
def test_inputs_are_torchs(dtype, label) -> None:
    """G's [z | label vector] and D's [real; fake] | label vector, with y2 = [y; y]: what
    mlp_step.py's torch route copies (bf16: each value rounded once, as copy_ rounds it)."""
    K, b, nz, img, C, E = 2, 5, 7, 12, 4, 3
    z, x = rand(K, b, nz, seed=1), rand(K, b, 1, 3, 4, seed=2)
    fake = rand(K, b, img, dtype=dtype, seed=3)
    y = torch.randint(0, C, (K, b), generator=torch.Generator().manual_seed(4))
    table = rand(K, C, E, seed=5) if label == "embedding" else None
    width = {"onehot": C, "embedding": E, "none": 0}[label]
    if table is not None:
        vec = torch.stack([table[k][y[k]] for k in range(K)])
    else:
        vec = F.one_hot(y, C).float()[..., :width]
    xg = torch.empty(K, b, nz + width, dtype=dtype)
    mlp_parts.g_input(z, None if label == "none" else y, table, C, xg)
    assert torch.equal(xg, torch.cat([z, vec], -1).to(dtype))
    xd, y2 = torch.empty(K, 2 * b, img + width, dtype=dtype), torch.empty(K, 2 * b,
                                                                          dtype=torch.int64)
    mlp_parts.d_input(x, fake, None if label == "none" else y, table, C, xd, y2)
    want = torch.cat([torch.cat([x.reshape(K, b, img).to(dtype), fake], 1),
                      torch.cat([vec, vec], 1).to(dtype)], -1)
    assert torch.equal(xd, want)
    if width:
        assert torch.equal(y2, torch.cat([y, y], 1))


def test_a_label_out_of_range_is_one_line() -> None:
    from gankit.errors import GankitError
    y = torch.tensor([[0, 4]])
    with pytest.raises(GankitError, match=r"a label outside 0..3 .* 4 classes"):
        mlp_parts.g_input(torch.zeros(1, 2, 3), y, None, 4, torch.zeros(1, 2, 7))
    xd = torch.full((1, 4, 6), 7.0)
    with pytest.raises(GankitError, match="outside"):
        mlp_parts.d_input(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), y, None, 4, xd,
                          torch.zeros(1, 4, dtype=torch.int64))
    assert (xd == 7).all()  # nothing written


def test_where_it_cannot_run_one_line_and_torchs_operations(tmp_path, monkeypatch,
                                                            capsys) -> None:
    """On a CPU without AVX-512 (emulated: no CPU flags) the fused step says so once and
    trains with torch's operations, in fp32 (its other C kernels need no AVX-512 or are not
    used in fp32)."""
    from gankit.native import build
    from gankit.training.loop import Trainer
    from tests.conftest import tiny
    monkeypatch.setattr(build, "cpu_flags", lambda: set())
    build._build.cache_clear()
    mlp_parts.report_unavailable.cache_clear()
    try:
        assert "avx512" in mlp_parts.why_not()
        cfg = tiny("mlp-cgan-m4", **{"eval.every": 0, "data.limit": 256, "step": "fused",
                                     "precision": "fp32"})
        for run in ("a", "b"):
            tr = Trainer(cfg, tmp_path / run, progress=False)
            assert tr.fused is not None and tr.fused.parts is None
            batches = tr.loader.epoch(0)
            for _ in range(2):
                tr.train_step(*next(batches), do_g=True)
                tr.step += 1
            assert torch.isfinite(tr.d_sum).all() and tr.d_count == 2
        err = capsys.readouterr().err
        assert err.count("elementwise work through torch") == 1, err
    finally:
        build._build.cache_clear()
        mlp_parts.report_unavailable.cache_clear()
