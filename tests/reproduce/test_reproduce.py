"""`gankit reproduce`: the registry of the reports' experiments, the time estimates, and a
reproduction of report 004 end to end (at a tiny scale) with its REPRODUCTION.md."""
from __future__ import annotations

import json
import re
import shlex

import pytest

from gankit.cli.main import build_parser, main
from gankit.config import ConfigError
from gankit.training import estimate as speed
from gankit.reproduce.registry import SCALES, load_report, report_names, select
from gankit.training.estimate import SpeedMeter
from gankit.sweeps.tables import fmt

# What makes the stated short scale tiny for a test: the bundled 8x8 digits, one epoch.
TINY_SET = ["data.name=digits", "data.limit=256", "epochs=1", "val_diagnostics=64",
            "eval.n=200"]


@pytest.mark.slow
def test_registry_has_every_report_and_each_experiment_resolves() -> None:
    assert report_names() == ["000", "001", "002", "003", "004"]
    for report in select("all"):
        assert report.experiments, report.number
        for exp in report.experiments:
            for scale in SCALES:
                sweep = exp.load(scale)
                points = {r.point for r in sweep.runs}
                assert all(s.point in points for s in exp.stated), (report.number, exp.name)
            full, short = exp.load("full"), exp.load("short")
            full_steps = sum(r.cfg.epochs * (r.cfg.data.limit or 60_000) for r in full.runs)
            short_steps = sum(r.cfg.epochs * (r.cfg.data.limit or 60_000) for r in short.runs)
            assert short_steps < full_steps / 4, (report.number, exp.name)


def test_every_experiments_command_is_a_valid_gankit_command_line() -> None:
    """REPRODUCTION.md prints the command that runs each experiment alone: it must parse."""
    parser = build_parser()
    for report in select("all"):
        for exp in report.experiments:
            for scale in SCALES:
                argv = shlex.split(exp.command(scale, "out"))
                assert argv[0] == "gankit"
                args = parser.parse_args(argv[1:])  # argparse exits on a bad command line
                if exp.preset:
                    assert args.preset == exp.preset
    # --only NAME:POINTS ran some points: the command says which (it ran them all before)
    argv = shlex.split(load_report("001").experiments[0].command("full", "out", None, "0,1,4-6"))
    assert parser.parse_args(argv[1:]).points == "0,1,4-6"


def test_report_names_and_errors() -> None:
    assert load_report("4").number == load_report("r004").number == "004"
    with pytest.raises(ConfigError, match="no report '7' to reproduce; choose one of 000"):
        load_report("7")
    with pytest.raises(ConfigError, match="--scale 'long' is not valid"):
        load_report("004").experiments[0].load("long")


def test_estimate_is_step_time_times_batches(mnist_cache, monkeypatch) -> None:
    monkeypatch.setattr(speed, "_time_steps", lambda cfg: 0.5)
    cfg = load_report("004").experiments[0].load("full").runs[0].cfg
    meter = SpeedMeter()
    assert meter.images(cfg) == 60_000                       # train-full, as the report
    assert meter.epoch_seconds(cfg) == 469 * 0.5             # ceil(60000 / 128) batches
    assert meter.run_seconds(cfg) == 25 * 469 * 0.5


@pytest.mark.slow
def test_list_shows_every_report_with_times(mnist_cache, monkeypatch, capsys) -> None:
    monkeypatch.setattr(speed, "_time_steps", lambda cfg: 0.01)
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for n in report_names():
        assert f"report {n}:" in out
    assert re.search(r"^  configs +sweep r004-configs", out, re.M)
    assert "full " in out and "short " in out
    # the columns line up whatever the names' lengths (ourcgan-per-batch, the longest)
    starts = {line.index(" preset ") if " preset " in line else line.index(" sweep ")
              for line in out.splitlines() if line.startswith("  ")}
    assert len(starts) == 1, starts


def test_step_timing_warms_up_a_g_step_and_times_whole_cycles(mnist_cache, monkeypatch) -> None:
    """With 9 D steps per G step (report 002's OurCGAN) the warm-up is one whole cycle, G's
    step included: its first call builds kernels, and timed it made the estimate 1.5x too long."""
    calls: list[bool] = []
    monkeypatch.setattr(speed.Trainer, "train_step",
                        lambda self, x, y, do_g: calls.append(do_g))
    cfg = load_report("002").experiments[1].load("short", {"device": "cpu"}).runs[0].cfg
    assert cfg.d_steps == 9
    speed._time_steps(cfg)
    assert calls[:9] == [False] * 8 + [True]                # the warm-up: one cycle
    assert len(calls) == 27 and calls[9:] == calls[:9] * 2  # then two timed cycles


def test_a_stopped_runs_values_so_far(tmp_path) -> None:
    """An interrupted reproduction still fills REPRODUCTION.md: a stated epoch the run has
    passed is read, one it has not reached says where the run stopped (it used to read the
    last epoch's value as if it were the stated epoch's)."""
    from gankit.reproduce.registry import Stated
    from gankit.reproduce.run import our_value
    sweep = load_report("002").experiments[1].load("full")   # OurCGAN: 30 epochs
    run = tmp_path / sweep.runs[0].name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "step": 1563 * e, "val/is": 1.0 + e / 100}) + "\n"
        for e in (1, 2, 3)))
    at = {e: our_value(Stated("IS", "val/is", 1.02, epoch=e), sweep, tmp_path) for e in (2, 5)}
    assert (at[2].value, at[2].epoch) == (1.02, 2)
    assert at[5].value is None and "stopped with 3 of 30 epochs done" in at[5].why
    final = our_value(Stated("IS", "val/is", 1.02), sweep, tmp_path)   # the run's last value
    assert final.value is None and "run the same command again" in final.why


def test_list_applies_set_and_only(mnist_cache, monkeypatch, capsys) -> None:
    """`--list` estimates what the same command line would run: `--set` applied (it was
    ignored before), `--only` picking experiments and points."""
    monkeypatch.setattr(speed, "_time_steps", lambda cfg: 1.0)
    assert main(["reproduce", "004", "--list", "--only", "dcgan"]) == 0
    out = capsys.readouterr().out
    assert "dcgan " in out and "configs " not in out
    assert "full 3.3 h" in out                            # 25 epochs x 469 batches x 1 s
    assert main(["reproduce", "004", "--list", "--only", "dcgan", "--set", "epochs=5"]) == 0
    assert "full 39 min" in capsys.readouterr().out      # 5 x 469 x 1 s
    assert main(["reproduce", "004", "--list", "--only", "configs:1"]) == 0
    assert re.search(r"configs +sweep r004-configs +1 run\(s\)", capsys.readouterr().out)


def test_list_with_a_bad_only_or_set_is_one_line_before_any_output(mnist_cache,
                                                                    capsys) -> None:
    assert main(["reproduce", "all", "--list", "--only", "dcgan"]) == 2
    assert main(["reproduce", "004", "--list", "--set", "epochs"]) == 2
    assert main(["reproduce", "004", "--list", "--set", "nope=1"]) == 2
    assert main(["reproduce", "004", "--list", "--only", "configs:9"]) == 2
    out, err = capsys.readouterr()
    err = err.strip().splitlines()
    assert out == ""   # refused before the header and the first report's lines
    assert len(err) == 4 and all(e.startswith("gankit: error: ") for e in err)
    assert "--only picks experiments of one report" in err[0]
    assert "--only configs:9: the sweep has points 0..5, not 9" in err[3]


@pytest.mark.slow
def test_measured_step_time_is_positive(mnist_cache) -> None:
    cfg = load_report("004").experiments[0].load("short", {"device": "cpu"}).runs[0].cfg
    assert 0 < speed._time_steps(cfg) < 60


@pytest.mark.slow
def test_reproduce_004_end_to_end(tmp_path, capsys) -> None:
    out = tmp_path / "r004"
    args = ["reproduce", "004", "--scale", "short", "--out", str(out)]
    for s in TINY_SET:
        args += ["--set", s]
    assert main(args) == 0
    text = (out / "REPRODUCTION.md").read_text()
    assert text.startswith("# Report 004:")
    assert "reference classifier, not Inception-v3" in text
    # the report's table beside our epoch-1 losses, read back from each run's metrics
    for point, name in enumerate(["000-base", "001-batch_size=64"]):
        rec = json.loads((out / "configs" / name / "metrics.jsonl").read_text().splitlines()[-1])
        stated = ["0.0174", "0.0107"][point]
        row = next(ln for ln in text.splitlines() if f"| {stated} |" in ln)
        assert f"| {fmt(rec['train/d_loss'])} (epoch 1; this scale stops before epoch 10) |" in row
    assert "0.00096" in text and "(configs/000-base/grids/progression.png)" in text
    assert (out / "configs" / "summary.md").is_file()
    capsys.readouterr()
    assert main(args) == 0  # running it again resumes: every run is already finished
    assert "6 already finished" in capsys.readouterr().err


def test_only_picks_one_experiment_and_its_points() -> None:
    from gankit.errors import UserError
    from gankit.reproduce.run import parse_only
    r000, r002 = load_report("000"), load_report("002")
    assert [(e.name, p) for e, p in parse_only(r000, None)] == [("models", None)]
    assert [(e.name, p) for e, p in parse_only(r000, ["models:3"])] == [("models", "3")]
    assert [e.name for e, _ in parse_only(r002, ["ourcgan", "cgan-ref"])] == ["cgan-ref",
                                                                               "ourcgan"]
    with pytest.raises(UserError, match="no experiment 'm4'; choose one of models"):
        parse_only(r000, ["m4"])
    with pytest.raises(UserError, match="one preset, not a sweep"):
        parse_only(r002, ["cgan-ref:0"])


@pytest.mark.slow
def test_only_runs_the_chosen_points_and_says_so_for_the_others(tmp_path, capsys) -> None:
    out = tmp_path / "r004"
    base = ["reproduce", "004", "--scale", "short", "--out", str(out)]
    for s in TINY_SET:
        base += ["--set", s]
    assert main(base + ["--only", "configs:1"]) == 0
    assert sorted(p.name for p in (out / "configs").iterdir() if p.name[0].isdigit()) == \
        ["001-batch_size=64"]
    text = (out / "REPRODUCTION.md").read_text()
    assert "--only configs:1" in text and "## dcgan" not in text
    assert text.count("point not run this time (--only)") == 10    # 5 points x D and G loss
    rec = json.loads((out / "configs" / "001-batch_size=64" / "metrics.jsonl").read_text()
                     .splitlines()[-1])
    row = next(ln for ln in text.splitlines() if "| 0.0107 |" in ln)
    assert f"| {fmt(rec['train/d_loss'])} (epoch 1;" in row
    # another experiment into the same folder: REPRODUCTION.md keeps the first one's values
    assert main(base + ["--only", "dcgan"]) == 0
    text = (out / "REPRODUCTION.md").read_text()
    assert text.index("## dcgan") < text.index("## configs")    # the report's order
    assert "Run by an earlier invocation into this folder" in text
    row = next(ln for ln in text.splitlines() if "| 0.0107 |" in ln)
    assert f"| {fmt(rec['train/d_loss'])} (epoch 1;" in row
