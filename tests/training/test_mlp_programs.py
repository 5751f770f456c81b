"""The fused MLP step's recorded programs (training/mlp_step.py `_region`, native/program.py):
each half step's kernel calls replayed by one C call compute what the same calls made one by
one compute, bit for bit (the same kernels in the same order), through batch sizes, D-only
steps, rebound parameters and thread counts; where a half step has torch operations (dropout,
an ensemble's batched bias) it runs call by call."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from gankit.errors import GankitError
from gankit.native import mlp_parts, onednn, program
from gankit.native.build import on_threads
from gankit.training.ensemble import Ensemble
from gankit.training.loop import Trainer
from tests.conftest import tiny

pytestmark = pytest.mark.skipif(
    mlp_parts.kernel() is None or onednn.kernel() is None,
    reason=f"native kernels: {mlp_parts.why_not() or onednn.why_not()}")

VARIANTS = {
    "report000": {},
    "embedding-g-nonsaturating-smoothing-average-dsteps2": {
        "model.g_cond": "embedding", "loss.name": "nonsaturating", "loss.label_smoothing": 0.1,
        "loss.d_average": True, "d_steps": 2},
    "unconditional": {"model.conditional": False},
}


def cfg_of(precision: str, **over):
    # 256 images in batches of 48: five full batches and one of 16
    return tiny("mlp-cgan-m4", **{"precision": precision, "eval.every": 0, "data.limit": 256,
                                  "batch_size": 48, "step": "fused", **over})


def steps(tr: Trainer, n: int, start: int = 0) -> None:
    batches = tr.loader.epoch(0, start)
    for i in range(n):
        x, y = next(batches)
        tr.train_step(x, y, do_g=(tr.step + 1) % tr.d_steps == 0)
        tr.step += 1


def same_state(a: Trainer, b: Trainer) -> None:
    for net in ("G", "D"):
        for (n, p), q in zip(getattr(a, net).named_parameters(), getattr(b, net).parameters()):
            assert torch.equal(p, q), (net, n)
    assert torch.equal(a.d_sum, b.d_sum) and torch.equal(a.g_sum, b.g_sum)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_replayed_halves_are_the_calls_made_one_by_one(tmp_path: Path, variant: str,
                                                       precision: str) -> None:
    runs = {}
    for programs in (True, False):
        tr = Trainer(cfg_of(precision, **VARIANTS[variant]), tmp_path / str(programs),
                     progress=False)
        tr.fused.use_programs = programs
        steps(tr, 6)  # the last batch is smaller: a program of its own
        runs[programs] = tr
    a = runs[True].fused
    assert a._recordable() and len(a._programs) >= 3 and all(a._programs.values())
    assert not runs[False].fused._programs
    same_state(runs[True], runs[False])


def test_on_two_threads_the_paired_products_replay_too(tmp_path: Path) -> None:
    """On two threads each layer's weight and input gradients run as one pair (Matmuls.pair):
    recorded as one call, replayed to the same bits as made one by one."""
    runs = {}
    with on_threads(2):
        for programs in (True, False):
            tr = Trainer(cfg_of("bf16"), tmp_path / str(programs), progress=False)
            tr.fused.use_programs = programs
            steps(tr, 3)
            runs[programs] = tr
    for prog in runs[True].fused._programs.values():
        ops, i = [], 0
        while i < len(prog.words):
            ops.append(prog.words[i])
            i += 2 + prog.words[i + 1]
        assert program.MM2 in ops
    same_state(runs[True], runs[False])


def test_rebound_parameters_and_other_thread_counts_record_again(tmp_path: Path) -> None:
    """A loaded state that replaces the parameters' tensors (assign=True) drops the programs
    (they hold the old addresses); a new thread count records its own (oneDNN's primitives
    are made per thread count)."""
    runs = {}
    threads = torch.get_num_threads()
    for programs in (True, False):
        tr = Trainer(cfg_of("bf16"), tmp_path / str(programs), progress=False)
        tr.fused.use_programs = programs
        steps(tr, 2)
        for net in (tr.G, tr.D):
            net.load_state_dict({k: v.clone() * 0.5 for k, v in net.state_dict().items()},
                                assign=True)
        steps(tr, 2, start=2)
        torch.set_num_threads(1)
        try:
            steps(tr, 2, start=4)
        finally:
            torch.set_num_threads(threads)
        runs[programs] = tr
    keys = runs[True].fused._programs
    assert {k[3] for k in keys} == {1, threads} or threads == 1
    same_state(runs[True], runs[False])


def test_a_label_outside_the_classes_is_one_line(tmp_path: Path) -> None:
    tr = Trainer(cfg_of("bf16"), tmp_path, progress=False)
    x, y = next(tr.loader.epoch(0))
    tr.train_step(x, y, do_g=True)  # recorded and replayed
    assert tr.fused._programs
    y = y.clone()
    y[3] = 10
    with pytest.raises(GankitError, match="a label outside 0..9"):
        tr.train_step(x, y, do_g=True)


def test_dropout_runs_call_by_call(tmp_path: Path) -> None:
    tr = Trainer(cfg_of("bf16", **{"model.dropout": 0.3}), tmp_path / "drop", progress=False)
    steps(tr, 1)
    assert not tr.fused._recordable() and not tr.fused._programs


def ensemble_steps(ens: Ensemble, n: int) -> None:
    batches = ens._batches(0)
    for i in range(n):
        ens.step_stacked(*next(batches), do_g=True)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_an_ensembles_replayed_halves_are_its_calls_made_one_by_one(
        tmp_path: Path, precision: str) -> None:
    """The members' batched biases (written by the GEMM plans) and D's first-layer weight
    gradient (a torch call inside the program: `program.call`) replayed in place."""
    cfg = cfg_of(precision)
    runs = {}
    for programs in (True, False):
        ens = Ensemble.build([(dataclasses.replace(cfg, seed=s), tmp_path / f"{programs}{s}")
                              for s in (0, 1, 2)], progress=False)
        ens.fused.use_programs = programs
        ensemble_steps(ens, 6)
        runs[programs] = ens
    recorded = runs[True].fused._programs
    assert recorded and all(recorded.values()) and not runs[False].fused._programs
    assert any(prog.calls for prog in recorded.values())  # the wide gradient's torch call
    for a, b in zip(runs[True].members, runs[False].members):
        same_state(a, b)
