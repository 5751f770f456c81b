"""native/col2im.py: the scatter of a transposed convolution's windows into its output map."""
from __future__ import annotations

import itertools

import pytest
import torch

from gankit.native import col2im

pytestmark = pytest.mark.skipif(col2im.kernel() is None,
                                reason=f"native kernel: {col2im.why_not()}")


def scattered(cols: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int],
              padding: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """The definition, one window row at a time (N, C, HO, WO)."""
    n, h, w, kh, kw, c = cols.shape
    out = torch.zeros(n, *size, c, dtype=torch.float64)
    if bias is not None:
        out += bias.double()
    for i, j, a, b in itertools.product(range(h), range(w), range(kh), range(kw)):
        y, x = stride[0] * i + a - padding[0], stride[1] * j + b - padding[1]
        if 0 <= y < size[0] and 0 <= x < size[1]:
            out[:, y, x] += cols[:, i, j, a, b].double()
    return out.permute(0, 3, 1, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kernel,stride,padding,size", [
    ((4, 4), (1, 1), (0, 0), (6, 6)), ((3, 3), (2, 2), (0, 0), (13, 13)),
    ((4, 3), (2, 1), (1, 0), (7, 8)),     # non-square; an output row past every tap
    ((5, 5), (3, 3), (1, 1), (11, 11))])  # taps of several input pixels overlap nowhere
def test_each_output_is_the_bias_plus_the_windows_that_reach_it(
        dtype: torch.dtype, kernel: tuple, stride: tuple, padding: tuple, size: tuple) -> None:
    """Small integers: every sum exact in fp32 and in bf16 (below 256), so the C kernel's
    fp32 sums rounded once equal the definition's exactly; with a bias and without; C = 19
    channels (a vector and a tail)."""
    torch.manual_seed(0)
    cols = torch.randint(-3, 4, (2, 3, 4, *kernel, 19)).to(dtype)
    for bias in (torch.randint(-5, 6, (19,)).float(), None):
        out = col2im.col2im(cols, bias, stride, padding, size)
        assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(out.double(), scattered(cols, bias, stride, padding, size))


def test_it_refuses_what_it_does_not_take() -> None:
    cols = torch.zeros(1, 2, 2, 3, 3, 4)
    with pytest.raises(ValueError, match="contiguous fp32 or bf16 CPU windows"):
        col2im.col2im(cols.double(), None, (1, 1), (0, 0), (4, 4))
    with pytest.raises(ValueError, match="contiguous fp32 or bf16 CPU windows"):
        col2im.col2im(cols.transpose(1, 2), None, (1, 1), (0, 0), (4, 4))
    with pytest.raises(ValueError, match="one value per channel"):
        col2im.col2im(cols, torch.zeros(3), (1, 1), (0, 0), (4, 4))


def test_where_it_cannot_run_one_line_and_onednns_layer(unavailable, capsys) -> None:
    """Where the kernel cannot be built (emulated: no C compiler) a small input's transposed
    convolution says so once and runs oneDNN's layer, the plain layer's numbers."""
    import copy

    from torch import nn

    from gankit.models import kernels
    assert "no C compiler" in unavailable(col2im)
    torch.manual_seed(0)
    plain = nn.ConvTranspose2d(6, 8, 4, 1)
    fast = copy.deepcopy(plain)
    kernels.use([fast], "fast")
    x = torch.randn(2, 6, 3, 3)
    for _ in range(2):
        out = fast(x.requires_grad_())
        assert type(out.grad_fn).__name__ != "_GemmTransposedBackward"
        torch.testing.assert_close(out, plain(x), rtol=1e-6, atol=1e-6)
    err = capsys.readouterr().err
    assert err.count("small inputs through oneDNN") == 1, err
