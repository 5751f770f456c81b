"""Image conversion: uint8 <-> float in either scale, exact at the ends and both ways."""
import pytest
import torch

from gankit.data.image import SCALES, to_float, to_uint8


@pytest.mark.parametrize("scale", list(SCALES))
def test_round_trip_is_exact(scale: str):
    u8 = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = to_float(u8, scale)
    low, high = SCALES[scale]
    assert x.dtype == torch.float32 and x.min() == low and x.max() == high
    assert torch.equal(to_uint8(x, scale), u8)


def test_out_of_range_values_are_clamped():
    x = torch.tensor([-1.5, -1.0, 1.0, 1.2]).reshape(1, 1, 2, 2)
    assert to_uint8(x).flatten().tolist() == [0, 0, 255, 255]


def test_unknown_scale_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"\['-1,1', '0,1'\].*'0,255'"):
        to_float(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), "0,255")
