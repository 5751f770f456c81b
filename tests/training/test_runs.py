"""Run folders: RunPaths' one reader of metrics.jsonl and the atomic-write helper."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gankit.errors import GankitError
from gankit.fileio import atomic_path, atomic_write
from gankit.training.runs import RunFolderError, RunPaths, progress

RECORDS = [{"epoch": 1, "val/fid": 30.0}, {"epoch": 2, "val/fid": 20.0}]


def write_metrics(root: Path, tail: str = "") -> RunPaths:
    paths = RunPaths(root)
    root.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + tail)
    return paths


def test_torn_last_line_is_skipped_with_one_warning(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    paths = write_metrics(tmp_path, '{"epoch": 3, "val/f')  # killed while writing epoch 3
    assert paths.read_metrics() == RECORDS
    assert paths.last_record() == RECORDS[-1]
    err = capsys.readouterr().err
    assert err.count("warning") == 2 and "metrics.jsonl" in err and "cut short" in err


def test_torn_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    paths.metrics.write_text('{"epoch": 1}\n{"epoch": 2, "va\n{"epoch": 3}\n')
    with pytest.raises(RunFolderError, match=r"metrics\.jsonl, line 2: not a JSON record"):
        paths.read_metrics()
    assert issubclass(RunFolderError, GankitError)


def test_resume_drops_later_epochs_and_a_torn_tail(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    paths = write_metrics(tmp_path, '{"epoch": 3, "val/f')
    paths.truncate_metrics(2)
    assert paths.metrics.read_text() == "".join(json.dumps(r) + "\n" for r in RECORDS)
    paths.truncate_metrics(1)
    assert paths.read_metrics() == RECORDS[:1]
    assert "warning" not in capsys.readouterr().err  # resuming repairs it silently


def test_no_metrics_file_is_no_records(tmp_path: Path) -> None:
    assert RunPaths(tmp_path).read_metrics() == [] and RunPaths(tmp_path).last_record() == {}


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="not a run folder"):
        RunPaths(tmp_path).require_run()


def test_resume_candidates(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    assert [p.name for p in paths.resume_candidates("last")] == ["last.pt", "last.prev.pt",
                                                                  "best.pt"]
    assert paths.resume_candidates("best") == [paths.checkpoint("best")]
    other = tmp_path / "elsewhere.pt"
    assert paths.resume_candidates(str(other)) == [other]


def test_a_checkpoint_name_is_found_in_the_run(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`--which last.prev` names checkpoints/last.prev.pt; a name found nowhere is taken in
    checkpoints/ (its error then lists what the run holds, not the working folder)."""
    monkeypatch.chdir(tmp_path)
    paths = RunPaths(tmp_path / "run")
    paths.checkpoints.mkdir(parents=True)
    paths.checkpoint("last.prev").write_bytes(b"")
    assert paths.resume_candidates("last.prev") == [paths.checkpoint("last.prev")]
    assert paths.resume_candidates("last.prev.pt") == [paths.checkpoint("last.prev")]
    assert paths.resume_candidates("foo") == [paths.checkpoints / "foo"]
    (tmp_path / "mine.pt").write_bytes(b"")  # a file in the working folder is taken as given
    assert paths.resume_candidates("mine.pt") == [Path("mine.pt")]


def test_progress_from_records_and_checkpoints(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    assert progress(paths, [], 2) == "pending"
    assert progress(paths, RECORDS[:1], 2) == "partial"       # a record, no checkpoint yet
    assert progress(paths, RECORDS, 2) == "partial"           # every epoch, but no checkpoint
    paths.checkpoints.mkdir()
    paths.checkpoint("last").write_bytes(b"x")
    assert progress(paths, [], 2) == "partial"                # stopped inside its first epoch
    assert progress(paths, RECORDS[:1], 2) == "partial"
    assert progress(paths, RECORDS, 2) == "done"
    assert progress(paths, RECORDS, 3) == "partial"           # resumed with more epochs
    assert progress(paths, RECORDS, None) == "partial"        # no epoch count to reach


def test_atomic_write_replaces_whole_files_only(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"              # a failed write leaves the old file
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["f.txt"]   # no temporary file left behind


def test_a_run_saved_before_newer_settings_loads_with_their_defaults(cgan_run, tmp_path):
    """Settings a run predates (here the recipe blocks: d_norm, R1, augment, EMA warm-up)
    take their defaults, which are the behaviour before they existed."""
    import shutil

    import torch
    import yaml

    from gankit.training.runs import load_run
    run = tmp_path / "old"
    shutil.copytree(cgan_run, run)
    newer = {"model": ("d_norm",), "loss": ("r1_gamma", "r1_every"), "": ("augment",
                                                                        "ema_rampup")}

    def strip(cfg: dict) -> dict:
        for section, names in newer.items():
            for n in names:
                (cfg[section] if section else cfg).pop(n)
        return cfg
    cfg = strip(yaml.safe_load((run / "config.yaml").read_text()))
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    ckpt = run / "checkpoints" / "last.pt"
    state = torch.load(ckpt, weights_only=True)
    state["config"] = strip(state["config"])
    torch.save(state, ckpt)
    loaded = load_run(run, which="last")
    assert loaded.cfg.model.d_norm == "auto" and loaded.cfg.augment == "none"
    assert loaded.cfg.loss.r1_gamma == 0 and loaded.cfg.ema_rampup == 0


@pytest.mark.parametrize("text, kind", [("x\n", "str"), ("", "NoneType"), ("- 1\n", "list")])
def test_a_config_that_holds_no_mapping_is_one_error_everywhere(tmp_path: Path, text: str,
                                                                kind: str) -> None:
    from gankit.config import ConfigError
    from gankit.report.html import write_run_report
    from gankit.training.runs import read_config
    (tmp_path / "config.yaml").write_text(text)
    want = f"config.yaml holds no config mapping (a {kind}); restore the file"
    for read in (RunPaths(tmp_path).config_dict, lambda: read_config(tmp_path),
                 lambda: write_run_report(tmp_path, plots=False, explore=False)):
        with pytest.raises(ConfigError, match=want.replace("(", r"\(").replace(")", r"\)")):
            read()
    assert not (tmp_path / "report.html").exists()
    assert RunPaths(tmp_path / "absent").config_dict() == {}
