"""`gankit explore RUN` on tiny trained runs: the PNGs and index.json it writes."""
from __future__ import annotations

import json

import torch
from PIL import Image

from gankit.cli.main import main
from gankit.exploration.run import read_index

COND = ["class_diversity", "class_means", "interpolate_z", "from_mean", "interpolate_labels",
        "noise", "out_of_range_labels"]


def check_index(out, index):
    on_disk = json.loads((out / "index.json").read_text())
    assert on_disk == index
    for f in index["figures"]:
        path = out / f["file"]
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 100 and im.height > 50
        assert f["title"] and f["caption"] and "\n" not in f["caption"]
    return [f["name"] for f in index["figures"]]


def test_explore_conditional_run(cgan_run, tmp_path, capsys):
    out = tmp_path / "explore"
    assert main(["explore", str(cgan_run), "--out", str(out), "--d-per-class", "4",
                 "--seed", "1"]) == 0
    index = read_index(out)
    names = check_index(out, index)
    assert names[:7] == COND
    assert index["conditional"] is True and index["label_encoding"] == "embedding"
    assert index["seed"] == 1 and index["which"] == "best" and index["epoch"] == 2
    # report 002's Table 3 as a chart, or a note saying why it is missing
    assert "d_accuracy_per_class" in names or any("discriminator" in n for n in index["notes"])
    printed = capsys.readouterr().out
    assert "wrote" in printed and "index.json" in printed


def test_figures_are_deterministic_for_a_seed(cgan_run):
    from gankit.exploration import all_figures
    from gankit.training.runs import load_run
    G = load_run(cgan_run).G
    a, b, c = all_figures(G, seed=3), all_figures(G, seed=3), all_figures(G, seed=4)
    for fa, fb in zip(a, b):
        assert fa.caption == fb.caption and fa.data == fb.data
        for pa, pb in zip(fa.panels, fb.panels):
            assert torch.equal(pa.images, pb.images)
    assert not torch.equal(a[0].panels[0].images, c[0].panels[0].images)


def test_explore_unconditional_run_default_folder(uncond_run):
    assert main(["explore", str(uncond_run), "--d-per-class", "0"]) == 0
    out = uncond_run / "explore"
    index = read_index(out)
    assert check_index(out, index) == ["interpolate_z", "noise"]
    assert index["conditional"] is False and index["label_encoding"] is None
    assert any("unconditional" in n for n in index["notes"])


def test_explore_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["explore", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_read_index_tolerates_absent_and_broken_files(tmp_path):
    assert read_index(tmp_path) is None
    (tmp_path / "index.json").write_text("{not json")
    assert read_index(tmp_path) is None
