"""Sweep files: grids, points, presets per point, seeds, names, and bad input caught early."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.cli.main import main
from gankit.config import ConfigError
from gankit.models import build_models
from gankit.sweeps import load_sweep, parse_sweep, shipped_names
from tests.sweeps.conftest import TINY, write_yaml


def test_grid_is_the_product_in_file_order_with_stable_names() -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": TINY,
                     "grid": {"batch_size": [32, 64], "model.nz": [8, 16]}}, name="g")
    assert [r.name for r in s.runs] == ["000-batch_size=32-model.nz=8",
                                        "001-batch_size=32-model.nz=16",
                                        "002-batch_size=64-model.nz=8",
                                        "003-batch_size=64-model.nz=16"]
    assert [(r.cfg.batch_size, r.cfg.model.nz) for r in s.runs] == [(32, 8), (32, 16),
                                                                    (64, 8), (64, 16)]
    assert all(r.cfg.data.name == "digits" and r.cfg.epochs == 1 for r in s.runs)
    assert s.varied == ["batch_size", "model.nz"]
    again = parse_sweep({"preset": "mlp-cgan-m4", "set": TINY,
                         "grid": {"batch_size": [32, 64], "model.nz": [8, 16]}}, name="g")
    assert [r.name for r in again.runs] == [r.name for r in s.runs]


def test_points_may_change_the_preset_and_command_line_set_wins() -> None:
    s = parse_sweep({"preset": "mlp-cgan-m1", "set": {**TINY, "epochs": 3},
                     "points": [{}, {"preset": "mlp-cgan-m4", "epochs": 5},
                                {"optim": {"g_lr": 1e-3}}]},
                    extra=["epochs=2", "model.nz=7"])
    names = [r.name for r in s.runs]
    assert names == ["000-base", "001-preset=mlp-cgan-m4-epochs=5", "002-optim.g_lr=0.001"]
    a, b, c = (r.cfg for r in s.runs)
    assert (a.preset, b.preset, c.preset) == ("mlp-cgan-m1", "mlp-cgan-m4", "mlp-cgan-m1")
    assert a.optim.g_lr == 1e-4 and b.optim.g_lr == 1.5e-4 and c.optim.g_lr == 1e-3
    assert b.optim.schedule == "piecewise"
    assert a.epochs == b.epochs == c.epochs == 2       # --set applies last, to every point
    assert a.model.nz == 7 and a.data.limit == 64


def test_seeds_repeat_every_point() -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": TINY, "grid": {"model.nz": [8, 16]},
                     "seeds": [0, 1, 2]})
    assert [r.name for r in s.runs][:3] == ["000-model.nz=8-seed=0", "000-model.nz=8-seed=1",
                                            "000-model.nz=8-seed=2"]
    assert [(r.point, r.cfg.seed) for r in s.runs] == [(0, 0), (0, 1), (0, 2),
                                                        (1, 0), (1, 1), (1, 2)]


@pytest.mark.parametrize("data,match", [
    ({"grid": {"optim.glr": [1e-4]}}, "unknown config key 'optim.glr'; did you mean optim.g_lr"),
    ({"set": {"epoch": 2}, "grid": {"batch_size": [32]}}, "did you mean epochs"),
    ({"grid": {}}, "grid: is empty"),
    ({"grid": {"batch_size": []}}, "list of values is empty"),
    ({"grid": {"batch_size": 64}}, "expected a list of values"),
    ({}, "exactly one of grid:"),
    ({"grid": {"batch_size": [32]}, "points": [{}]}, "exactly one of grid:"),
    ({"points": []}, "non-empty list"),
    ({"points": [{}, {"model.nx": 3}]}, "point 001: unknown config key 'model.nx'"),
    ({"grids": {"batch_size": [32]}}, "did you mean grid"),
    ({"grid": {"epochs": ["many"]}}, r"point 000-epochs=many: epochs: expected an integer"),
    ({"grid": {"preset": ["mlp-cgan-m9"]}}, "no preset named 'mlp-cgan-m9'"),
    ({"points": [{}], "seeds": [0, 1], "set": {"seed": 3}}, "cannot also be set"),
    ({"points": [{}], "seeds": []}, "non-empty list of integers"),
    ({"points": [{}], "set": {"preset": "default"}}, "goes at the top"),
    # the same run twice (the second written another way): one line, not a second training
    ({"points": [{"epochs": 1}, {"model.nz": 8}, {"epochs": 1.0}]},
     "points 000-epochs=1 and 002-epochs=1.0 resolve to the same config"),
    ({"grid": {"model.nz": [8, 8]}}, "points 000-model.nz=8 and 001-model.nz=8"),
])
def test_bad_sweep_files_fail_with_a_clear_message(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_sweep({"preset": "mlp-cgan-m4", **data}, name="bad")


def test_bad_command_line_set_is_caught() -> None:
    with pytest.raises(ConfigError, match="did you mean optim.d_lr"):
        parse_sweep({"points": [{}]}, extra=["optim.dlr=1"])


def test_cli_reports_bad_input_before_anything_runs(tmp_path: Path, capsys) -> None:
    bad = write_yaml(tmp_path / "bad.yaml", {"preset": "mlp-cgan-m4", "set": TINY,
                                             "grid": {"batch_size": [32], "modle.nz": [8]}})
    out = tmp_path / "out"
    assert main(["sweep", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'modle.nz'" in err and "did you mean model.nz" in err
    assert not out.exists()
    assert main(["sweep", "r004-config", "--out", str(out)]) == 2
    assert "shipped sweeps with a close name: r004-configs" in capsys.readouterr().err
    assert not out.exists()


def test_shipped_sweep_files_all_resolve() -> None:
    assert {"r000-models", "r001-ablations", "r004-configs"} <= set(shipped_names())
    for name in shipped_names():
        s = load_sweep(name)          # resolves every point: unknown keys would raise here
        assert s.runs and all(r.cfg.eval.every > 0 for r in s.runs), name


def test_r002_d_norm_crosses_bn_in_d_with_two_schedules() -> None:
    s = load_sweep("r002-d-norm")
    got = [(r.cfg.model.d_norm, r.cfg.d_steps, r.cfg.optim.g_lr, r.cfg.optim.d_lr, r.cfg.epochs)
           for r in s.runs]
    assert got == [("auto", 9, 2e-5, 2e-4, 30), ("none", 9, 2e-5, 2e-4, 30),
                   ("auto", 1, 2e-4, 2e-4, 3), ("none", 1, 2e-4, 2e-4, 3)]
    built = [build_models(r.cfg.model, (1, 28, 28), 10)[1] for r in (s.runs[0], s.runs[1])]
    assert [any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules()) for d in built] == [
        True, False]


def test_r004_is_the_reports_six_configurations() -> None:
    s = load_sweep("r004-configs")
    got = [(r.cfg.batch_size, r.cfg.model.nz, r.cfg.optim.g_lr, r.cfg.optim.d_lr, r.cfg.epochs)
           for r in s.runs]
    assert got == [(128, 64, 2e-4, 2e-4, 10), (64, 64, 2e-4, 2e-4, 10), (256, 64, 2e-4, 2e-4, 10),
                   (128, 32, 2e-4, 2e-4, 10), (128, 128, 2e-4, 2e-4, 10),
                   (128, 64, 1e-4, 1e-4, 10)]
    assert {r.cfg.preset for r in s.runs} == {"dcgan-r004"}


def test_r000_and_r001_match_the_reports() -> None:
    m = load_sweep("r000-models").runs
    assert [r.cfg.preset for r in m] == [f"mlp-cgan-m{i}" for i in (1, 2, 3, 4)]
    assert [(r.cfg.epochs, r.cfg.optim.g_lr, r.cfg.optim.d_lr) for r in m] == [
        (1500, 1e-4, 1.5e-4), (2000, 5e-5, 7e-5), (1500, 1e-4, 1.618e-4), (1800, 1.5e-4, 2.427e-4)]
    r = [x.cfg for x in load_sweep("r001-ablations").runs]
    assert [(c.epochs, c.model.ngf, c.model.ndf, c.model.init, c.model.nz) for c in r] == [
        (5, 32, 32, "dcgan", 100), (30, 32, 32, "dcgan", 100), (5, 1000, 32, "dcgan", 100),
        (5, 32, 1000, "dcgan", 100), (5, 32, 32, "default", 100), (5, 32, 32, "dcgan", 10),
        (5, 32, 32, "dcgan", 1000)]


def test_points_picks_runs_and_keeps_their_names() -> None:
    from gankit.sweeps.spec import select_points
    sweep = load_sweep("r004-configs")
    picked = select_points(sweep, "0,2-3")
    assert [r.name for r in picked.runs] == [sweep.runs[i].name for i in (0, 2, 3)]
    with pytest.raises(ConfigError, match=r"the sweep has points 0..5, not 9"):
        select_points(sweep, "1,9")
    with pytest.raises(ConfigError, match="give point numbers 0..5"):
        select_points(sweep, "a")
