"""`gankit report`: the run page and the comparison page, read back as HTML (no browser)."""
from __future__ import annotations

import json
import shutil
from urllib.parse import unquote

import pytest
import yaml

from gankit.cli.main import main
from gankit.data import DataError
from gankit.report.html import write_comparison, write_run_report
from gankit.report.metrics import exact, flatten_eval, format_value
from gankit.training.runs import RunPaths

from .conftest import EVAL, expected_eval_values
from .pagecheck import read_page


def cells_by_key(facts):
    out = {}
    for c in facts.cells:
        out.setdefault(c.key, []).append(c)
    return out


def assert_offline(facts, html: str) -> None:
    """No reference leaves the page's folder: no http(s), no protocol-relative URLs, no
    external stylesheets or scripts."""
    for ref in facts.imgs + facts.refs:
        assert not ref.startswith(("http:", "https:", "//")), ref
    assert "<link" not in html and "<script" not in html
    assert "@import" not in html and "url(" not in html


def test_run_page_shows_every_number_with_its_exact_value(reported_run):
    run, page = reported_run
    assert page == run / "report.html"
    html = page.read_text()
    facts = read_page(html)
    cells = cells_by_key(facts)
    last = RunPaths(run).read_metrics()[-1]
    expected = {k: v for k, v in last.items() if isinstance(v, (int, float))}
    expected.update(expected_eval_values())
    assert "eval/best-val-classifier/fid" in expected
    for key, value in expected.items():
        assert key in cells, f"{key} missing from the metrics table"
        cell = cells[key][0]
        if value is None:
            assert cell.value == "" and cell.text == "n/a"
            continue
        assert float(cell.value) == value, key                 # exact
        assert cell.text.strip() == format_value(key, value)
        assert float(cell.text) == pytest.approx(value, rel=5e-3, abs=1e-12), key
    # per-class keys are in their own table, also with data-key
    assert cells["eval/best-val-classifier/label_acc/3"][0].value == repr(0.125)


def test_run_page_sections_images_and_offline(reported_run):
    run, page = reported_run
    html = page.read_text()
    facts = read_page(html)
    for anchor in ("summary", "metrics", "curves", "samples", "exploration", "config", "notes"):
        assert anchor in facts.ids
    assert_offline(facts, html)
    assert len(facts.imgs) >= 10
    for src in facts.imgs:
        assert not src.startswith("/") and (page.parent / unquote(src)).is_file(), src
    srcs = {unquote(s) for s in facts.imgs}
    for must in ("grids/progression.png", "plots/losses.png", "plots/progress.gif",
                 "explore/interpolate_labels.png", "explore/noise.png"):
        assert must in srcs
    # the exploration ran because RUN/explore/index.json was missing
    index = json.loads((run / "explore" / "index.json").read_text())
    for f in index["figures"]:
        assert f"explore/{f['file']}" in srcs
        assert f["title"] in html
    # the config, escaped, and the preset in the header
    assert "resnet-cgan-r002" in html and "d_steps: 1" in html


def test_html_is_escaped(cgan_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(cgan_run, run, ignore=shutil.ignore_patterns("explore", "plots"))
    evil = "<img src=x onerror=alert(1)>"
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps({evil: {"metrics": {"a&b": 1.5}}}))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["notes"] = "</pre><b>bold</b>"
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    page = write_run_report(run, explore=False, plots=False)
    html = page.read_text()
    facts = read_page(html)
    assert "x" not in facts.imgs and evil not in html and "<b>bold</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert cells_by_key(facts)[f"eval/{evil}/a&b"][0].value == "1.5"


def test_no_explore_and_no_eval_are_explained(uncond_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(uncond_run, run, ignore=shutil.ignore_patterns("explore", "plots", "eval"))
    assert main(["report", str(run), "--no-explore", "--n-samples", "50"]) == 0
    assert f"wrote {run / 'report.html'}" in capsys.readouterr().out
    html = (run / "report.html").read_text()
    assert not (run / "explore").exists()
    assert "gankit explore RUN" in html and "gankit eval RUN" in html
    assert not [c for c in read_page(html).cells if c.key.startswith("eval/")]


def test_embed_makes_one_self_contained_file(reported_run, tmp_path):
    run, _ = reported_run
    page = write_run_report(run, out=tmp_path / "one.html", plots=False, embed=True)
    facts = read_page(page.read_text())
    assert facts.imgs and all(s.startswith(("data:image/png;base64,", "data:image/gif;base64,"))
                              for s in facts.imgs)


def test_out_folder_gets_paths_relative_to_it(reported_run, tmp_path):
    run, _ = reported_run
    out = tmp_path / "elsewhere"
    page = write_run_report(run, out=out / "report.html", plots=False, explore=False)
    facts = read_page(page.read_text())
    assert len(facts.imgs) >= 10
    for src in facts.imgs:
        assert (out / unquote(src)).resolve().is_file(), src


def test_comparison_page(reported_run, uncond_run, tmp_path):
    run, _ = reported_run
    out = tmp_path / "cmp"
    assert main(["report", str(run), str(uncond_run), "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    facts = read_page(html)
    assert_offline(facts, html)
    labels = {c.run for c in facts.cells}
    assert len(labels) == 2
    cells = cells_by_key(facts)
    # one cell per run for every key; the eval numbers of the first run are there
    assert len(cells["train/g_loss"]) == 2
    fid = [c for c in cells["eval/best-val-classifier/fid"] if c.value]
    assert len(fid) == 1 and float(fid[0].value) == EVAL["best-val-classifier"]["metrics"]["fid"]
    for src in facts.imgs:
        assert (out / unquote(src)).resolve().is_file(), src
    grids = [s for s in facts.imgs if "grids/epoch_" in unquote(s)]
    assert len(grids) == 2
    assert "model.arch" in html and "dcgan004" in html        # the config differences
    assert (out / "plots" / "compare_losses.png").is_file()


def test_comparison_labels_clashing_folder_names(cgan_run, uncond_run, tmp_path):
    page = write_comparison([cgan_run, uncond_run], tmp_path, embed=True)
    facts = read_page(page.read_text())
    assert len({c.run for c in facts.cells}) == 2        # both folders are named "run"
    assert all(s.startswith("data:") for s in facts.imgs)


def test_comparison_with_a_broken_config_is_one_line_and_writes_nothing(cgan_run, tmp_path,
                                                                         capsys):
    """A run whose config.yaml is not valid YAML: the comparison names the file and the line
    (it had shown that run's config as all missing, without a word) before writing a file."""
    broken = tmp_path / "broken"
    shutil.copytree(cgan_run, broken)
    (broken / "config.yaml").write_text("model: {arch: mlp\n")
    out = tmp_path / "cmp"
    assert main(["report", str(cgan_run), str(broken), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{broken / 'config.yaml'} is not valid YAML" in err and "line 2" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_flatten_eval_shapes():
    assert flatten_eval(EVAL) == expected_eval_values()
    flat = {"fid": 1.5, "n": 10, "ok": True, "name": "x", "per_class": {"label_acc": {"0": 0.9}},
            "hist": [1, 2], "nan": None}
    assert flatten_eval(flat) == {"eval/fid": 1.5, "eval/n": 10,
                                  "eval/per_class/label_acc/0": 0.9, "eval/nan": None}
    assert flatten_eval(None) == {} and flatten_eval([1, 2]) == {}


@pytest.mark.parametrize("key,value,text", [
    ("epoch", 3, "3"), ("val/fid", 123.456789, "123.46"), ("val/kid", 0.012345, "0.0123"),
    ("lr_g", 2e-4, "2.000e-04"), ("train/g_loss", 1.23456, "1.235"), ("val/is", 1.0000015, "1.000"),
    ("train/acc_real", 1.0, "1.000"), ("val/x", 10.85, "10.85"), ("x", 0.0, "0"),
    ("time_s", 12345.67, "12345.7"), ("eval/r/n", 1000.0, "1000"), ("val/fid", None, "n/a"),
    ("val/fid", float("nan"), "n/a"), ("x", -0.5, "-0.5000")])
def test_format_value(key, value, text):
    assert format_value(key, value) == text


def test_exact_round_trips():
    for v in (0.1, 1 / 3, 123.456789012345, 1e-300, 7):
        assert float(exact(v)) == v
    assert exact(None) == "" and exact(float("inf")) == ""


def test_report_of_a_run_without_checkpoints(uncond_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(uncond_run, run, ignore=shutil.ignore_patterns("checkpoints", "explore",
                                                                  "plots"))
    html = write_run_report(run).read_text()
    facts = read_page(html)
    assert "losses.png" in " ".join(facts.imgs)
    assert "no checkpoints/best.pt" in html and "once the run has a checkpoint" in html
    for src in facts.imgs:
        assert (run / unquote(src)).is_file()


def test_report_of_a_run_on_a_machine_without_its_data(cgan_run, tmp_path, monkeypatch):
    """A run copied to a machine without the dataset still gets its page; the plots that
    need real validation images are replaced by a note that says why."""
    run = tmp_path / "run"
    shutil.copytree(cgan_run, run, ignore=shutil.ignore_patterns("plots", "report.html"))

    def no_data(*args, **kwargs):
        raise DataError("no mnist files in any folder, the cache or the mirrors")
    monkeypatch.setattr("gankit.plots.run.load_dataset", no_data)
    assert main(["report", str(run), "--no-explore", "--n-samples", "50"]) == 0
    index = json.loads((run / "plots" / "index.json").read_text())
    assert not {"real_vs_generated", "class_distribution"} & {p["name"] for p in index["plots"]}
    assert any("validation data is not here" in n for n in index["notes"])
