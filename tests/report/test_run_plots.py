"""The report's class predictor for a run's figures (report/run_plots.py): the reference
classifier when the run's dataset has one, else the reason, which plots/run.py notes."""
from __future__ import annotations

from types import SimpleNamespace

from gankit.report.run_plots import _predictor


def _run(name: str, classes: list[str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(cfg=SimpleNamespace(data=SimpleNamespace(name=name, classes=classes)))


def test_a_subset_of_classes_or_an_unknown_dataset_has_no_predictor():
    assert _predictor(_run("mnist", ["0", "1"]))() == (
        None, "the run trains on a subset of the classes")
    predict, why = _predictor(_run("no-such-dataset"))()
    assert predict is None and why.startswith("no reference classifier for 'no-such-dataset'")
