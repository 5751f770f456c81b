"""d_steps_per_batch: K D updates on each batch, then G's (report 002's other reading of its
"discriminator advantage"), in the single run's step and the ensemble's."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from gankit.training.loop import Trainer
from tests.conftest import tiny


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Two state dicts hold the same bits (tensors) and values (the rest)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("step", ["autograd", "fused"])
def test_k_updates_on_a_batch_are_k_steps_with_g_after_the_last(tmp_path: Path,
                                                                step: str) -> None:
    """One step at d_steps_per_batch=3 is three D steps on that batch, fresh noise each, and
    G's step after the third: the same bits as three steps at 1 (do_g False, False, True)."""
    once = Trainer(tiny(d_steps_per_batch=3, step=step), tmp_path / "a", progress=False)
    thrice = Trainer(tiny(step=step), tmp_path / "b", progress=False)
    x, y = next(once.loader.epoch(0))
    d0 = [p.detach().clone() for p in once.D.parameters()]
    once.train_step(x, y, do_g=True)
    for do_g in (False, False, True):
        thrice.train_step(x, y, do_g=do_g)
    sa, sb = once.state_dict(), thrice.state_dict()
    assert sa.pop("config")["d_steps_per_batch"] == 3  # the one difference, by construction
    sb.pop("config")
    assert_same(sa, sb)
    assert sa["sums"]["d_count"] == 3 and sa["sums"]["g_count"] == 1
    assert any(not torch.equal(p, q) for p, q in zip(d0, once.D.parameters()))


def test_a_run_counts_k_d_updates_per_batch(tmp_path: Path) -> None:
    """A whole run: D's Adam counts K updates a batch, G's one; the epoch is one pass."""
    cfg = tiny(d_steps_per_batch=2, epochs=1, data__limit=64, step="autograd")
    Trainer(cfg, tmp_path, progress=False).run()
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    batches = 64 // cfg.batch_size
    assert state["step"] == batches
    assert {int(s["step"]) for s in state["opt_d"]["state"].values()} == {2 * batches}
    assert {int(s["step"]) for s in state["opt_g"]["state"].values()} == {batches}
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert row["step"] == batches
