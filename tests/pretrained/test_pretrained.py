"""The pretrained default that ships inside the package: its file, its samples, its refusals,
and the commands that use it (`--pretrained`)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.cli.main import main
from gankit.metrics.classifier import accuracy, load_classifier
from gankit.pretrained import PACKAGE_DIR, PretrainedError, available, load_pretrained
from gankit.pretrained.store import FORMAT_VERSION, KIND
from gankit.sampling import generate
from tests.cli.conftest import assert_one_line_error, gankit

SHIPPED = PACKAGE_DIR / "default.pt"
MANIFEST = json.loads((PACKAGE_DIR / "default.json").read_text())


def test_the_shipped_file_matches_its_manifest():
    assert "default" in available()
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == MANIFEST["sha256"]
    assert SHIPPED.stat().st_size == MANIFEST["bytes"] < 1_500_000
    blob = torch.load(SHIPPED, weights_only=True)
    assert blob["kind"] == KIND and blob["format"] == FORMAT_VERSION
    assert set(blob) >= {"config", "data", "G"} and "D" not in blob       # G alone ships
    assert {v.dtype for v in blob["G"].values() if v.is_floating_point()} == {torch.float16}
    assert MANIFEST["test"]["split"] == "test" and MANIFEST["test"]["n"] == 10_000
    assert MANIFEST["dtype_check"]["label_acc_stored"] >= MANIFEST["dtype_check"][
        "label_acc_float32"] - 0.002


def test_the_shipped_file_is_packaged():
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"pretrained/*.pt"' in text and '"pretrained/*.json"' in text


@pytest.mark.slow
def test_its_samples_are_the_digits_asked_for():
    """The shipped default's samples, measured afresh with the reference classifier: issue
    13's bar, label accuracy >= 0.98 on 1,000 samples (the shipped file measures 0.993 on its
    build's 1,000 and on the 10,000 of the test split; the earlier 10-epoch default, 0.979,
    failed this bar)."""
    run = load_pretrained("default")
    assert run.D is None and not run.G.training
    images, labels = generate(run.G, 1000, "balanced", seed=123, scale=run.cfg.data.scale)
    acc = accuracy(load_classifier("mnist").model, images, labels)
    assert acc >= 0.98, acc


def damaged_copy(tmp_path: Path, how: str) -> Path:
    for suffix in (".pt", ".json"):
        shutil.copy(PACKAGE_DIR / f"default{suffix}", tmp_path / f"mine{suffix}")
    pt = tmp_path / "mine.pt"
    data = bytearray(pt.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x01
    elif how == "truncate":
        data = data[: len(data) // 2]
    pt.write_bytes(bytes(data))
    return pt


def cli(capsys, *args: str) -> tuple[int, str]:
    """`gankit ARGS` in this process: (exit code, stderr)."""
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_tampered_copy_is_refused(tmp_path, capsys, how):
    pt = damaged_copy(tmp_path, how)
    with pytest.raises(PretrainedError, match=r"sha256 .* does not match its manifest"):
        load_pretrained(str(pt))
    code, err = cli(capsys, "sample", "--pretrained", str(pt), "--n", "10", "--out",
                    str(tmp_path / "s"))
    assert code == 2
    assert_one_line_error(code, err, "mine.pt", "damaged or was replaced",
                          "gankit pretrained build")
    assert not (tmp_path / "s.npz").exists()


@pytest.mark.slow
def test_a_tampered_copy_is_one_line_from_the_console_script(tmp_path):
    pt = damaged_copy(tmp_path, "flip")
    r = gankit("eval", "--pretrained", str(pt))
    assert r.returncode == 2
    assert_one_line_error(r.returncode, r.stderr, "mine.pt", "does not match its manifest")


def test_an_intact_copy_by_path_loads_and_a_lone_file_is_refused(tmp_path):
    pt = damaged_copy(tmp_path, "none")
    assert load_pretrained(str(pt)).G.num_classes == 10
    (tmp_path / "mine.json").unlink()
    with pytest.raises(PretrainedError, match="mine.json not found"):
        load_pretrained(str(pt))


@pytest.mark.slow
def test_unknown_names_list_the_available_ones(capsys):
    code, err = cli(capsys, "sample", "--pretrained", "nope", "--n", "10")
    assert_one_line_error(code, err, "no pretrained model 'nope'", "available: default")
    code, err = cli(capsys, "eval", "--pretrained", "default", "run-folder")
    assert_one_line_error(code, err, "give one of")


def test_sample_needs_no_training_data(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "cache"
    empty.mkdir()
    monkeypatch.setenv("GANKIT_CACHE", str(empty))
    monkeypatch.setenv("GANKIT_DATA", str(empty))
    out = tmp_path / "threes"
    code, err = cli(capsys, "sample", "--pretrained", "default", "--n", "100", "--label", "3",
                    "--out", str(out))
    assert code == 0, err
    data = np.load(out.with_suffix(".npz"))
    assert data["images"].shape == (100, 28, 28) and set(data["labels"].tolist()) == {3}
    assert out.with_suffix(".png").is_file() and not any(empty.iterdir())
    code, err = cli(capsys, "sample", "--pretrained", "default", "--n", "5", "--label", "10")
    assert_one_line_error(code, err, "--label '10'", "0-9")


@pytest.mark.slow
def test_eval_uses_the_test_split_and_writes_only_to_out(tmp_path, mnist_cache):
    r = gankit("eval", "--pretrained", "default", "--json", "--n", "500", "--out",
               str(tmp_path / "ev"))
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["split"] == "test" and record["pretrained"] == "default"
    assert record["metrics"]["label_acc"] >= 0.95
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert "pretrained-test-classifier" in saved


@pytest.mark.slow
def test_explore_writes_its_figures_without_a_discriminator(tmp_path):
    out = tmp_path / "ex"
    r = gankit("explore", "--pretrained", "default", "--out", str(out))
    assert r.returncode == 0, r.stderr
    index = json.loads((out / "index.json").read_text())
    assert len(index["figures"]) >= 5 and index["which"] == "pretrained"
    assert any("no discriminator" in n for n in index["notes"])


@pytest.mark.slow
def test_serve_shows_a_pretrained_model_without_scores():
    from starlette.testclient import TestClient

    from gankit.serve.app import create_app
    from gankit.serve.models import load_models
    models = load_models([], pretrained=["default"])
    with TestClient(create_app(models, max_samples=8)) as client:
        info = client.get("/api/info").json()
        assert info["models"][0]["name"] == "pretrained default"
        grid = client.get("/api/grid", params={"n": 4, "class": 3}).json()
    assert len(grid["runs"][0]["images"]) == 4 and grid["runs"][0]["scores"] == [None] * 4


@pytest.mark.slow
def test_build_writes_a_verified_model_with_its_test_metrics(tmp_path, mnist_cache):
    from gankit.pretrained.build import build_pretrained
    from gankit.training.loop import train
    from gankit.training.runs import load_run
    from tests.conftest import tiny
    cfg = tiny("default", data__name="mnist", epochs=1, eval__every=0, model__ngf=8,
               model__ndf=8)
    run = train(cfg, tmp_path / "run", progress=False)
    manifest = build_pretrained(run, name="tiny", out=tmp_path / "models", n=200,
                                log=lambda msg: None)
    pt = tmp_path / "models" / "tiny.pt"
    assert manifest["sha256"] == hashlib.sha256(pt.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "models" / "tiny.json").read_text()) == manifest
    assert "--set data.limit=256" in manifest["source"]["train_command"]
    assert manifest["source"]["weights"] == "EMA of G"
    assert manifest["test"]["n"] == 200 and 0 <= manifest["test"]["metrics"]["label_acc"] <= 1
    assert manifest["dtype_check"]["max_pixel_diff"] <= 2
    stored, original = load_pretrained(str(pt)).G, load_run(run).G
    z, y = torch.randn(8, stored.nz), torch.arange(8)
    with torch.no_grad():
        torch.testing.assert_close(stored(z, y), original(z, y), atol=0.01, rtol=0)
