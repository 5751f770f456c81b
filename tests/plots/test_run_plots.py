"""All plots of a tiny run folder, and the sample figures on their own."""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from gankit.plots.run import read_index
from gankit.report.run_plots import write_run_plots
from gankit.metrics.classes import ClassifierUnavailable, reference_predictor
from gankit.plots.samples import class_distribution, real_vs_generated


def test_write_run_plots_conditional(cgan_run, tmp_path):
    out = tmp_path / "plots"
    index = write_run_plots(cgan_run, out=out, n_samples=100)
    assert json.loads((out / "index.json").read_text()) == index == read_index(out)
    names = [e["name"] for e in index["plots"]]
    for name in ("losses", "d_outputs", "d_accuracy", "grad_norms", "progress_gif",
                 "real_vs_generated"):
        assert name in names
    # no evaluation during training: no metric curves, and a note that says so
    assert "val_metrics" not in names
    assert any("eval" in n for n in index["notes"])
    # the class distribution needs gankit.metrics' reference classifier: drawn or explained
    assert "class_distribution" in names or any("class distribution" in n for n in index["notes"])
    for e in index["plots"]:
        with Image.open(out / e["file"]) as im:
            assert im.width > 50
        assert e["section"] in ("curves", "samples") and e["title"] and e["caption"]


def test_write_run_plots_without_a_checkpoint(uncond_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(uncond_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    index = write_run_plots(run)
    names = [e["name"] for e in index["plots"]]
    assert "losses" in names and "real_vs_generated" not in names
    assert any("checkpoints/best.pt" in n for n in index["notes"])
    assert (run / "plots" / "index.json").is_file()


def test_write_run_plots_of_an_empty_run(tmp_path):
    (tmp_path / "config.yaml").write_text("preset: x\n")
    index = write_run_plots(tmp_path)
    assert index["plots"] == [] and index["notes"]


class _G(torch.nn.Module):
    """A stand-in generator: image value = label * 20 (so a 'classifier' can read it back)."""
    def __init__(self, conditional=True):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.nz, self.num_classes, self.conditional = 4, (10 if conditional else 0), conditional

    def forward(self, z, y=None):
        v = (y.float() if y is not None else torch.full((len(z),), 3.0)) * 20 / 127.5 - 1
        return v[:, None, None, None].expand(-1, 1, 8, 8) + 0 * self.w


def _predict(images):
    return (images[:, 0, 0, 0].float() / 20).round().long().clamp(0, 9).numpy()


def test_class_distribution_counts_what_the_classifier_sees(tmp_path):
    real = (torch.arange(100) % 10 * 20).to(torch.uint8)[:, None, None, None].expand(-1, 1, 8, 8)
    path, info = class_distribution(_G(), _predict, real, tmp_path / "d.png", n=50)
    assert path.is_file()
    np.testing.assert_allclose(info["generated"], [0.1] * 10)
    np.testing.assert_allclose(info["real"], [0.1] * 10)
    assert info["label_acc"] == 1.0 and info["n"] == 50
    _, info = class_distribution(_G(conditional=False), _predict, real, tmp_path / "u.png", n=20)
    assert info["generated"][3] == 1.0 and "label_acc" not in info


def test_real_vs_generated_rows_per_class(tmp_path):
    labels = torch.arange(60) % 10
    real = torch.randint(0, 256, (60, 1, 8, 8), dtype=torch.uint8)
    p = real_vs_generated(_G(), real, labels, tmp_path / "r.png", per_class=4)
    with Image.open(p) as im:
        assert im.width > im.height
    p = real_vs_generated(_G(conditional=False), real, None, tmp_path / "u.png")
    assert p.is_file()


def test_reference_predictor_explains_an_unknown_dataset():
    try:
        reference_predictor("no-such-dataset")
    except ClassifierUnavailable as e:
        assert "no-such-dataset" in str(e) or "classifier" in str(e)
    else:
        raise AssertionError("expected ClassifierUnavailable")
