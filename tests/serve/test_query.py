"""Request validation: every value checked before any tensor is made."""
from __future__ import annotations

import pytest

from gankit.errors import GankitError
from gankit.serve.errors import ServeError
from gankit.serve.query import Limits, PathQuery, View, parse_path, parse_run, parse_view

LIM = Limits(num_classes=10, directions=5, runs=2, max_samples=32)
UNCOND = Limits(num_classes=0, directions=5, runs=1, max_samples=32)


def test_defaults_and_a_full_view():
    assert parse_view({}, LIM) == View(label=0, n=16, seed=0)
    v = parse_view({"class": "7", "n": "9", "seed": "123", "basis": "z", "sliders": "1.5,-2,0",
                    "to": "1", "t": "0.25", "z_noise": "0.5", "label_noise": "1"}, LIM)
    assert v == View(7, 9, 123, "z", (1.5, -2.0, 0.0), 1, 0.25, 0.5, 1.0)


def test_service_errors_are_gankit_errors():
    assert issubclass(ServeError, GankitError)


@pytest.mark.parametrize("params, message", [
    ({"class": "10"}, "unknown label class='10': the classes are 0..9"),
    ({"class": "-1"}, "unknown label class='-1'"),
    ({"class": "seven"}, "unknown label class='seven'"),
    ({"to": "12"}, "unknown label to='12'"),
    ({"n": "33"}, "n must be in 2..32, got 33"),
    ({"n": "1"}, "n must be in 2..32, got 1"),
    ({"n": "4.5"}, "n must be a whole number in 2..32, got '4.5'"),
    ({"seed": "-3"}, "seed must be in 0..2147483647"),
    ({"seed": "99999999999999999999"}, "seed must be in 0..2147483647"),
    ({"sliders": "nan"}, "slider 1 must be a finite number in [-10, 10], got 'nan'"),
    ({"sliders": "0,inf"}, "slider 2 must be a finite number"),
    ({"sliders": "0,0,1e308"}, "slider 3 must be in [-10, 10], got 1e+308"),
    ({"sliders": "1,2,3,4,5,6"}, "sliders takes at most 5 comma-separated values, got 6"),
    ({"sliders": "1,,2"}, "slider 2 must be a number"),
    ({"t": "NaN"}, "t must be a finite number in [-1, 2]"),
    ({"t": "5"}, "t must be in [-1, 2], got 5"),
    ({"z_noise": "-0.1"}, "z_noise must be in [0, 5]"),
    ({"label_noise": "1e9"}, "label_noise must be in [0, 5]"),
    ({"basis": "pca"}, "basis must be one of principal, z, got 'pca'"),
    ({"clas": "3"}, "unknown parameter 'clas'; this request takes class, n, seed"),
])
def test_bad_view_values(params, message):
    with pytest.raises(ServeError) as e:
        parse_view(params, LIM)
    assert message in str(e.value)


def test_unconditional_models_take_no_class():
    assert parse_view({"n": "4"}, UNCOND).n == 4
    with pytest.raises(ServeError, match="unconditional"):
        parse_view({"class": "3"}, UNCOND)


def test_paths():
    q = parse_path({"n": "4", "a": "0", "b": "3", "steps": "5", "method": "linear"}, LIM)
    assert q == PathQuery(View(0, 4), 0, 3, 5, "linear")
    for params, message in [({"a": "0"}, "needs b"),
                            ({"n": "4", "a": "0", "b": "4"}, "b must be in 0..3, got 4"),
                            ({"a": "0", "b": "1", "steps": "1000"}, "steps must be in 2..32"),
                            ({"a": "0", "b": "1", "method": "cubic"}, "method must be one of")]:
        with pytest.raises(ServeError, match=message):
            parse_path(params, LIM)


def test_run_index():
    assert parse_run({"run": "1"}, LIM) == 1
    with pytest.raises(ServeError, match="run must be in 0..1, got 2"):
        parse_run({"run": "2"}, LIM)
