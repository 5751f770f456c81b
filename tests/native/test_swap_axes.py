"""native/swap_axes.py: a channels-last map's batch and channel axes swapped."""
from __future__ import annotations

import pytest
import torch

from gankit.native import swap_axes

CL = torch.channels_last
pytestmark = pytest.mark.skipif(swap_axes.kernel() is None,
                                reason=f"native kernel: {swap_axes.why_not()}")


def torch_swap(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(0, 1).contiguous(memory_format=CL)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.int16, torch.int32])
@pytest.mark.parametrize("shape", [
    (128, 64, 14, 14), (64, 128, 7, 7),  # whole blocks (`default`'s D)
    (128, 16, 13, 13),                   # fewer channels than a block (report 004's D)
    (33, 17, 3, 5), (48, 40, 2, 3),      # a batch and channels past whole blocks, odd channels
    (31, 31, 4, 4), (64, 7, 1, 1), (1, 1, 1, 1)])
def test_the_swap_is_torchs_transposed_copy(dtype: torch.dtype, shape: tuple) -> None:
    """Every element moved to its place, bit for bit (integers of 16 and 32 bits stand for
    any element of 2 and 4 bytes), the result channels-last."""
    torch.manual_seed(0)
    x = torch.randint(-30000, 30000, shape).to(dtype).contiguous(memory_format=CL)
    out = swap_axes.swap_batch_channels(x)
    assert out.shape == (shape[1], shape[0], *shape[2:])
    assert out.is_contiguous(memory_format=CL)
    assert torch.equal(out, torch_swap(x))


def test_other_layouts_and_types_take_torchs_copy() -> None:
    """A contiguous (NCHW) map and a float64 one: torch's copy, the same result."""
    x = torch.randn(4, 6, 3, 3)
    for t in (x, x.double().contiguous(memory_format=CL)):
        assert torch.equal(swap_axes.swap_batch_channels(t), torch_swap(t))


def test_where_it_cannot_run_one_line_and_torchs_copy(unavailable, capsys) -> None:
    """Where the kernel cannot be built (emulated: no C compiler) the swap says so once and
    is torch's copy."""
    assert "no C compiler" in unavailable(swap_axes)
    x = torch.randn(32, 16, 2, 2).contiguous(memory_format=CL)
    for _ in range(2):
        assert torch.equal(swap_axes.swap_batch_channels(x), torch_swap(x))
    err = capsys.readouterr().err
    assert err.count("batch and channel axes swapped by torch's copy (slower)") == 1
    assert len(err.strip().splitlines()) == 1
