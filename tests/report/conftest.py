"""A copy of the root conftest's tiny conditional run with an `eval/metrics.json`, and its
report written once for the report tests."""
from __future__ import annotations

import json
import shutil

import pytest

# The shape `gankit eval` writes: one record per "<which>-<split>-<features>" key, metrics
# under "metrics" (per-class keys as "<metric>/<class>"), null for a non-finite number.
EVAL = {
    "best-val-classifier": {
        "run": "x", "which": "best", "split": "val", "dataset": "digits",
        "features": "classifier", "n": 1000, "seed": 0, "time_s": 3.25,
        "metrics": {"fid": 123.456789012345, "kid": 0.012345678901, "kid_std": 0.00012345678,
                    "precision": 0.25, "recall": 0.0, "is": 1.9876543210, "modes": 7,
                    "label_acc": 0.3333333333333333, "intra_fid": None,
                    "label_acc/0": 0.5, "label_acc/3": 0.125, "share/9": 0.0999999999},
        "histogram": [0.1] * 10, "confusion": [[1] * 10] * 10},
    "best-test-classifier": {
        "which": "best", "split": "test", "n": 1000,
        "metrics": {"fid": 130.5, "kid": 1.5e-05, "is": 2.0}},
}


def expected_eval_values(data: dict = EVAL) -> dict[str, float | None]:
    """The data-key -> number the metrics table must show for EVAL (written out by hand, not
    with the library's flattening)."""
    out = {}
    for rec, body in data.items():
        for k, v in body["metrics"].items():
            out[f"eval/{rec}/{k}"] = v
    return out


@pytest.fixture(scope="session")
def reported_run(cgan_run, tmp_path_factory):
    """A copy of the tiny conditional run with eval/metrics.json, and its report.html."""
    from gankit.report.html import write_run_report
    run = tmp_path_factory.mktemp("reported") / "run"
    shutil.copytree(cgan_run, run, ignore=shutil.ignore_patterns("explore", "plots",
                                                                  "report.html"))
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps(EVAL, indent=2))
    return run, write_run_report(run, n_samples=100, d_per_class=3)
