"""model.truncation_psi: a trained G's samples use psi * z; training sees z as drawn."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.cli.main import main
from gankit.models.registry import build_models
from gankit.sampling import generate, set_truncation
from gankit.training.loop import Trainer
from gankit.training.runs import load_run
from gankit.training.validate import validate
from tests.conftest import tiny


def test_eval_mode_scales_z_and_train_mode_does_not() -> None:
    G, _ = build_models(tiny("default", model__truncation_psi=0.5).model, (1, 28, 28), 10)
    plain, _ = build_models(tiny("default", model__truncation_psi=1.0).model, (1, 28, 28), 10)
    plain.load_state_dict(G.state_dict())
    assert G.truncation_psi == 0.5 and plain.truncation_psi == 1.0
    z, y = torch.randn(6, G.nz), torch.arange(6)
    G.eval(), plain.eval()
    assert torch.equal(G(z, y), plain(0.5 * z, y))
    assert not torch.equal(G(z, y), plain(z, y))
    G.train(), plain.train()
    torch.manual_seed(0)
    a = G(z, y)
    torch.manual_seed(0)
    assert torch.equal(a, plain(z, y))  # training: BN in train mode, no psi


def test_psi_must_be_positive() -> None:
    with pytest.raises(Exception, match="model.truncation_psi"):
        validate(tiny("default", model__truncation_psi=0.0))
    G, _ = build_models(tiny("default", model__truncation_psi=1.0).model, (1, 28, 28), 10)
    with pytest.raises(Exception, match="--truncation -1.0: give a number > 0"):
        set_truncation(G, -1.0)
    assert set_truncation(G, None) == 1.0 and set_truncation(G, 0.7) == 0.7


def test_a_run_samples_with_its_psi_and_the_command_line_overrides_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(tiny("mlp-cgan-m4", epochs=1, data__limit=64, model__truncation_psi=0.8), run,
            progress=False).run()
    G = load_run(run).G
    assert G.truncation_psi == 0.8
    at_08, _ = generate(G, 20, seed=1)
    assert main(["sample", str(run), "--n", "20", "--seed", "1", "--out", str(tmp_path / "a")]) == 0
    assert np.array_equal(np.load(tmp_path / "a.npz")["images"], at_08[:, 0].numpy())
    assert main(["sample", str(run), "--n", "20", "--seed", "1", "--truncation", "1",
                 "--out", str(tmp_path / "b")]) == 0
    set_truncation(G, 1.0)
    at_1, _ = generate(G, 20, seed=1)
    assert np.array_equal(np.load(tmp_path / "b.npz")["images"], at_1[:, 0].numpy())
    assert not torch.equal(at_08, at_1)
