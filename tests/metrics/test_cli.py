"""`gankit eval` and `gankit classifier check` through the CLI, with a stand-in run."""
import json
import sys
import types

import pytest

import gankit.metrics.evaluate as E
from gankit.cli.main import main
from gankit.config import TrainConfig
from gankit.data.arrays import DIGIT_CLASSES


@pytest.fixture(autouse=True)
def fewer_kid_subsets(monkeypatch):
    monkeypatch.setattr(E, "KID_SUBSETS", 5)


@pytest.fixture
def fake_runs(monkeypatch, memorizer):
    """gankit.training.runs.load_run replaced by a stand-in that returns the memoriser."""
    calls = []

    def load_run(path, which="best", device="cpu"):
        calls.append((str(path), which))
        data = types.SimpleNamespace(name="mnist", scale="-1,1", data_dir=None)
        return types.SimpleNamespace(cfg=types.SimpleNamespace(data=data), G=memorizer, D=None,
                                     shape=(1, 28, 28), classes=DIGIT_CLASSES, path=path)
    module = types.ModuleType("gankit.training.runs")
    module.load_run = load_run
    module.read_config = lambda path: TrainConfig()  # what `gankit eval` validates first
    monkeypatch.setitem(sys.modules, "gankit.training.runs", module)
    return calls


@pytest.mark.slow
def test_eval_run_writes_metrics_and_figures(tmp_path, fake_runs, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["eval", str(run), "--n", "1000", "--which", "last"]) == 0
    out = capsys.readouterr().out
    assert "FID" in out and "label accuracy" in out
    assert fake_runs == [(str(run), "last")]
    data = json.loads((run / "eval" / "metrics.json").read_text())
    rec = data["last-val-classifier"]
    assert rec["n"] == 1000 and rec["feature_space"].startswith("classifier-mnist-")
    assert rec["metrics"]["label_acc"] > 0.97 and len(rec["confusion"]) == 10
    for fig in ("class_images.png", "confusion.png", "class_histogram.png"):
        assert (run / "eval" / "last-val-classifier" / fig).is_file()
    # A second evaluation (test split) keeps the first one.
    assert main(["eval", str(run), "--n", "1000", "--split", "test", "--json"]) == 0
    data = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(data) == {"last-val-classifier", "best-test-classifier"}


@pytest.mark.slow
def test_eval_real_floor_table(capsys):
    assert main(["eval", "--real", "--n", "1000"]) == 0
    out = capsys.readouterr().out
    assert "real vs real" in out and "precision" in out


def test_eval_needs_run_or_real(capsys):
    assert main(["eval"]) == 2
    assert "RUN" in capsys.readouterr().err


def test_eval_errors_are_one_line(capsys):
    assert main(["eval", "--real", "--n", "100"]) == 2    # 100 samples, 128 feature dims
    assert "more samples than feature dimensions" in capsys.readouterr().err


def test_classifier_check(capsys):
    assert main(["classifier", "check", "--limit", "1000"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["recorded_test_acc"] >= 0.993 and rec["test_acc"] > 0.98 and rec["val_acc"] > 0.98
    assert rec["sha256"] == rec["sha256"].lower() and len(rec["sha256"]) == 64
