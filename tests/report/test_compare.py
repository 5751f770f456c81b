"""The comparison page a sweep ends with (report/compare.py), and `gankit sweep` handing it
to the runner unless `--no-report`."""
from __future__ import annotations

from pathlib import Path

import pytest

from gankit.cli.main import main
from gankit.report.compare import compare_runs


def test_compare_runs_writes_the_page_of_the_run_folders_only(cgan_run, tmp_path):
    line = compare_runs([cgan_run, tmp_path / "not-a-run"], tmp_path / "report")
    page = tmp_path / "report" / "report.html"
    assert line == f"report: {page}" and page.is_file()
    assert compare_runs([tmp_path / "not-a-run"], tmp_path / "none") == \
        "report: no run folders to compare"
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("flag, given", [((), True), (("--no-report",), False)])
def test_gankit_sweep_gives_the_runner_the_comparison_unless_told_not_to(
        tmp_path, monkeypatch, capsys, flag, given):
    seen = {}

    def fake_run_sweep(sweep, out, jobs=1, compare=None, **_):
        from gankit.sweeps.runner import SweepResult
        seen["compare"] = compare
        return SweepResult(Path(out), [], summary="")
    monkeypatch.setattr("gankit.sweeps.runner.run_sweep", fake_run_sweep)
    spec = tmp_path / "s.yaml"
    spec.write_text("preset: default\npoints: [{epochs: 1}]\n")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--no-estimate",
                 *flag]) == 0
    assert (seen["compare"] is compare_runs) == given and (seen["compare"] is None) != given
