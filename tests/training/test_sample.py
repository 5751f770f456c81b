"""`gankit sample` writes a PNG grid and an .npz of uint8 28x28 images with labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankit.cli.main import main
from gankit.data import datasets
from gankit.training.loop import Trainer
from gankit.training.runs import load_run
from gankit.sampling import generate
from tests.conftest import tiny


def test_sample_cli_and_determinism(tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(tiny("mlp-cgan-m4", epochs=1, data__limit=64), run, progress=False).run()
    assert main(["sample", str(run), "--n", "200", "--out", str(tmp_path / "s")]) == 0
    data = np.load(tmp_path / "s.npz")
    assert data["images"].shape == (200, 28, 28) and data["images"].dtype == np.uint8
    assert np.bincount(data["labels"]).tolist() == [20] * 10
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["sample", str(run), "--n", "30", "--labels", "7", "--out",
                 str(tmp_path / "sevens")]) == 0
    assert set(np.load(tmp_path / "sevens.npz")["labels"].tolist()) == {7}
    # a seed identifies a sample, whatever the batch size: the same noise and labels; GEMMs
    # on another number of rows may round differently (MKL on an Intel Xeon with AMX), which
    # moves a pixel next to a rounding boundary by one level (measured: 1 of 39,200)
    G = load_run(run).G
    a, _ = generate(G, 50, seed=3, batch_size=7)
    b, _ = generate(G, 50, seed=3, batch_size=50)
    d = (a.int() - b.int()).abs()
    assert d.max() <= 1 and (d > 0).float().mean() < 1e-3


def test_sample_needs_no_training_data(tmp_path: Path, monkeypatch) -> None:
    """The image shape and classes come from the checkpoint: with no data reachable (empty
    GANKIT_DATA and GANKIT_CACHE, every dataset load failing), sampling still works."""
    run = tmp_path / "run"
    Trainer(tiny("mlp-cgan-m4", epochs=1, data__limit=64, data__name="mnist"), run,
            progress=False).run()
    (tmp_path / "data").mkdir()
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))

    def no_data(*args, **kwargs):
        raise AssertionError("sampling loaded a dataset")
    monkeypatch.setattr(datasets, "load_arrays", no_data)
    assert main(["sample", str(run), "--n", "20", "--out", str(tmp_path / "s")]) == 0
    assert np.load(tmp_path / "s.npz")["images"].shape == (20, 28, 28)
    r = load_run(run)
    assert r.shape == (1, 28, 28) and r.classes == tuple(str(i) for i in range(10))


def test_old_checkpoint_without_data_fields_reads_the_dataset(tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(tiny("mlp-cgan-m4", epochs=1, data__limit=64), run, progress=False).run()
    best = run / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    del state["data"]
    torch.save(state, best)
    r = load_run(run)
    assert r.shape == (1, 28, 28) and len(r.classes) == 10 and r.G.num_classes == 10
