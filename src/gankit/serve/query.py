"""Every value a request may carry, checked before any tensor is made.

A request is a flat query string (so that downloads are plain links). Unknown names, values
that are not numbers, NaN or infinite, out of range, or more samples than the server allows
are a `ServeError` naming the parameter, its allowed range and what was given: the app turns
it into HTTP 400 with {"error": message}.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from gankit.serve.directions import BASES
from gankit.serve.errors import ServeError

MAX_SAMPLES = 64        # per grid; also the default of `gankit serve --max-samples`
MAX_STEPS = 32          # points on an interpolation path
SLIDER_LIMIT = 10.0     # |slider| in units of z's standard deviation
LABEL_T = (-1.0, 2.0)   # position on the label path a -> b; outside [0, 1] extrapolates
NOISE_LIMIT = 5.0       # eps of the noise added to z or to the label vector
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Limits:
    """What the served models allow: classes, sliders, runs, samples per grid."""
    num_classes: int            # 0 when no served model is conditional
    directions: int
    runs: int
    max_samples: int = MAX_SAMPLES


@dataclass(frozen=True)
class View:
    """One grid: n samples of class `label` from `seed`, moved along the sliders of `basis`,
    with the label vector at t on the way to class `to`, and noise on z and on the label."""
    label: int
    n: int = 16
    seed: int = 0
    basis: str = "principal"
    sliders: tuple[float, ...] = ()
    to: int | None = None
    t: float = 0.0
    z_noise: float = 0.0
    label_noise: float = 0.0


@dataclass(frozen=True)
class PathQuery:
    """An interpolation between samples a and b of a view's grid."""
    view: View
    a: int
    b: int
    steps: int = 9
    method: str = "slerp"


VIEW_KEYS = ("class", "n", "seed", "basis", "sliders", "to", "t", "z_noise", "label_noise")
PATH_KEYS = ("a", "b", "steps", "method")
RUN_KEY = "run"


def _check_keys(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ServeError(f"unknown parameter {unknown[0]!r}; this request takes "
                         f"{', '.join(allowed)}")


def _int(params: Mapping[str, str], key: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServeError(f"{key} must be a whole number in {lo}..{hi}, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise ServeError(f"{key} must be in {lo}..{hi}, got {value}")
    return value


def _float(raw: str, key: str, lo: float, hi: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ServeError(f"{key} must be a number in [{lo:g}, {hi:g}], got {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise ServeError(f"{key} must be a finite number in [{lo:g}, {hi:g}], got {raw[:40]!r}")
    if not lo <= value <= hi:
        raise ServeError(f"{key} must be in [{lo:g}, {hi:g}], got {value:g}")
    return value


def _choice(params: Mapping[str, str], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = params.get(key) or default
    if value not in choices:
        raise ServeError(f"{key} must be one of {', '.join(choices)}, got {value[:40]!r}")
    return value


def _label(params: Mapping[str, str], key: str, default: int | None, limits: Limits
           ) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    if limits.num_classes == 0:
        raise ServeError(f"{key}: the served models are unconditional (no classes); leave it out")
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not 0 <= value < limits.num_classes:
        raise ServeError(f"unknown label {key}={raw[:40]!r}: the classes are 0.."
                         f"{limits.num_classes - 1}")
    return value


def parse_view(params: Mapping[str, str], limits: Limits, extra: tuple[str, ...] = ()) -> View:
    """A checked View from query parameters (`extra`: other names the caller reads)."""
    _check_keys(params, VIEW_KEYS + extra)
    raw = params.get("sliders", "")
    parts = raw.split(",") if raw else []
    if len(parts) > limits.directions:
        raise ServeError(f"sliders takes at most {limits.directions} comma-separated values, "
                         f"got {len(parts)}")
    sliders = tuple(_float(p, f"slider {i + 1}", -SLIDER_LIMIT, SLIDER_LIMIT)
                    for i, p in enumerate(parts))
    t_raw = params.get("t")
    ln_raw, zn_raw = params.get("label_noise"), params.get("z_noise")
    return View(
        label=_label(params, "class", 0, limits),
        n=_int(params, "n", min(16, limits.max_samples), 2, limits.max_samples),
        seed=_int(params, "seed", 0, 0, MAX_SEED),
        basis=_choice(params, "basis", "principal", BASES),
        sliders=sliders,
        to=_label(params, "to", None, limits),
        t=_float(t_raw, "t", *LABEL_T) if t_raw else 0.0,
        z_noise=_float(zn_raw, "z_noise", 0.0, NOISE_LIMIT) if zn_raw else 0.0,
        label_noise=_float(ln_raw, "label_noise", 0.0, NOISE_LIMIT) if ln_raw else 0.0)


def parse_path(params: Mapping[str, str], limits: Limits, extra: tuple[str, ...] = ()
               ) -> PathQuery:
    """A checked PathQuery: a view plus the two sample indices, steps and method."""
    view = parse_view(params, limits, PATH_KEYS + extra)
    for key in ("a", "b"):
        if not params.get(key):
            raise ServeError(f"an interpolation needs {key}: the index of a sample in the grid "
                             f"(0..{view.n - 1})")
    return PathQuery(view, _int(params, "a", 0, 0, view.n - 1), _int(params, "b", 1, 0, view.n - 1),
                     _int(params, "steps", 9, 2, MAX_STEPS),
                     _choice(params, "method", "slerp", ("linear", "slerp")))


def parse_run(params: Mapping[str, str], limits: Limits) -> int:
    """Which served run a single-image download is for (0 or 1)."""
    return _int(params, RUN_KEY, 0, 0, limits.runs - 1)
