"""A bf16 function through a table of its 65,536 results (native/table.py,
csrc/table_bf16.c): torch's function bit for bit, at any length and number of threads."""
from __future__ import annotations

import pytest
import torch

from gankit.native import table
from gankit.training.mlp_step import MLPStep

needs_kernel = pytest.mark.skipif(table.kernel() is None,
                                  reason=f"native table kernel: {table.why_not()}")


@needs_kernel
def test_tanh_through_the_table_is_torchs_on_every_bf16_value() -> None:
    every = table.every_bf16()
    ours = every.clone()
    table.tanh_bf16().apply(ours)
    theirs = torch.tanh(every)
    finite = torch.isfinite(every)
    assert torch.equal(ours[finite], theirs[finite])
    assert torch.equal(torch.isnan(ours), torch.isnan(theirs))
    # the fused step's own call, as the ensemble makes it
    got = every[finite].clone()
    MLPStep._act_fwd(got, "tanh", table.tanh_bf16())
    assert torch.equal(got, theirs[finite])


@needs_kernel
@pytest.mark.parametrize("n", [1, 15, 16, 17, 16384 + 5, 3 * 16384])
def test_any_length_and_thread_count(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    x = (torch.randn(n, generator=g) * 3).bfloat16()
    square = table.Table(lambda v: v * v)
    threads = torch.get_num_threads()
    try:
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            y = x.clone()
            square.apply(y)
            assert torch.equal(y, x * x)
    finally:
        torch.set_num_threads(threads)


def test_what_a_table_refuses() -> None:
    with pytest.raises(ValueError, match="from bf16 to bf16"):
        table.Table(lambda v: v.float())
    t = table.Table(lambda v: v)
    with pytest.raises(ValueError, match="contiguous bf16 CPU"):
        t.apply(torch.zeros(4))
    with pytest.raises(ValueError, match="contiguous bf16 CPU"):
        t.apply(torch.zeros(4, 4, dtype=torch.bfloat16).mT)
