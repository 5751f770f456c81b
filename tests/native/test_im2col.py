"""native/im2col.py: a channels-last map's convolution windows, one row per output pixel."""
from __future__ import annotations

import itertools

import pytest
import torch

from gankit.native import im2col

CL = torch.channels_last
pytestmark = pytest.mark.skipif(im2col.kernel() is None,
                                reason=f"native kernel: {im2col.why_not()}")


def defined(x: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple,
            size: tuple) -> torch.Tensor:
    """The definition, one window element at a time."""
    n, c, h, w = x.shape
    out = torch.zeros(n, *size, *kernel, c, dtype=x.dtype)
    for p, q, a, b in itertools.product(range(size[0]), range(size[1]), *map(range, kernel)):
        y, z = stride[0] * p + a - padding[0], stride[1] * q + b - padding[1]
        if 0 <= y < h and 0 <= z < w:
            out[:, p, q, a, b] = x[:, :, y, z]
    return out.view(n * size[0] * size[1], -1)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.int16, torch.int32])
@pytest.mark.parametrize("shape,kernel,stride,padding,size", [
    ((2, 5, 14, 14), (4, 4), (2, 2), (1, 1), (7, 7)),    # `default`'s D layer, shrunk
    ((3, 4, 13, 13), (5, 5), (2, 2), (0, 0), (5, 5)),    # no padding (report 004's D)
    ((2, 3, 9, 13), (3, 4), (2, 3), (1, 0), (5, 4)),     # non-square
    ((1, 2, 11, 11), (6, 6), (3, 3), (2, 2), (4, 4)),    # rows past the map on both sides
    ((2, 3, 7, 7), (4, 4), (2, 2), (1, 1), (3, 3))])     # the last rows never read
def test_the_windows_are_their_definition_and_torchs(dtype, shape, kernel, stride, padding,
                                                     size) -> None:
    """Every element in its place, zeros in the padding, bit for bit (integers of 16 and 32
    bits stand for any element of 2 and 4 bytes); torch's copy of the window view the same."""
    torch.manual_seed(0)
    x = torch.randint(-30000, 30000, shape).to(dtype).contiguous(memory_format=CL)
    got = im2col.windows(x, kernel, stride, padding, size)
    assert torch.equal(got, defined(x, kernel, stride, padding, size))
    if dtype.is_floating_point:
        lib = im2col.kernel
        try:
            im2col.kernel = lambda: None
            assert torch.equal(im2col.windows(x, kernel, stride, padding, size), got)
        finally:
            im2col.kernel = lib


def test_it_takes_channels_last_maps_only() -> None:
    with pytest.raises(ValueError, match="channels-last map"):
        im2col.windows(torch.zeros(2, 3, 5, 5), (3, 3), (1, 1), (0, 0), (3, 3))


def test_where_it_cannot_run_one_line_and_torchs_copy(unavailable, capsys) -> None:
    """Where the kernel cannot be built (emulated: no C compiler) the windows say so once and
    are torch's copy of the window view."""
    assert "no C compiler" in unavailable(im2col)
    x = torch.randn(2, 3, 6, 6).contiguous(memory_format=CL)
    for _ in range(2):
        got = im2col.windows(x, (4, 4), (2, 2), (1, 1), (3, 3))
        assert torch.equal(got, defined(x, (4, 4), (2, 2), (1, 1), (3, 3)))
    err = capsys.readouterr().err
    assert err.count("convolution windows copied by torch (slower)") == 1
    assert len(err.strip().splitlines()) == 1
