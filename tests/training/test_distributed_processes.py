"""Real distributed runs: 2 processes under torchrun (gloo, CPU, 127.0.0.1), started by
`gankit train --nproc 2` as a user starts them.

Tolerance of "equal to one process": the two processes run the same arithmetic on halves of
each batch, but DDP averages the two halves' gradients (a sum in another order than one
process's batch mean, and GEMMs on 16 rows instead of 32), so gradients agree to float32
rounding (~1e-7 relative); Adam's normalised steps and 20 steps of feedback through the game
let that grow. Measured on this machine: largest parameter difference 4.4e-7 (MLP, 20 steps)
against weights moved by up to 4.7e-3 in the second epoch; the test allows 1e-5 absolute.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from gankit.training.loop import Trainer, resume
from tests.conftest import TINY, tiny

pytestmark = pytest.mark.slow
ATOL = 1e-5
# A collective that waits longer than this fails the run with a message (exit 4) instead of
# leaving the test to its subprocess timeout: nothing in these tiny runs waits that long.
TIMEOUT = {"GANKIT_DDP_TIMEOUT": "300"}


def weights(run: Path, name: str = "last") -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoints" / f"{name}.pt", weights_only=True)
    return {**{f"G.{k}": v for k, v in state["G"].items()},
            **{f"D.{k}": v for k, v in state["D"].items()}}


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a
               if a[k].is_floating_point())


def sets(over: dict) -> list[str]:
    return [arg for k, v in {**TINY, **over}.items() for arg in ("--set", f"{k}={v}")]


def gankit(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **TIMEOUT}
    return subprocess.run([sys.executable, "-m", "gankit.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def train_2(preset: str, out: Path, over: dict) -> subprocess.CompletedProcess:
    r = gankit("train", "--preset", preset, "--nproc", "2", "--quiet", "--out", str(out),
               *sets(over))
    assert r.returncode == 0, r.stderr
    return r


def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    # 320 images, global batch 32: 10 steps an epoch, 20 steps in all; 16 images per process.
    over = {"data.limit": 320, "precision": "fp32", "eval.every": 0,
            "step": "autograd"}  # the step DDP takes (the fused one does not all-reduce)
    Trainer(tiny("mlp-cgan-m4", **over), tmp_path / "one", progress=False).run()
    r = train_2("mlp-cgan-m4", tmp_path / "two", over)
    assert "2 processes (DistributedDataParallel, gloo)" in r.stderr
    assert r.stdout.strip() == str(tmp_path / "two")  # rank 0 alone prints
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    moved = max_difference(one, weights(tmp_path / "one", "last.prev"))
    assert max_difference(one, two) < ATOL < moved / 10
    rows = [[json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("one", "two")]
    assert [r["step"] for r in rows[1]] == [10, 20]
    for a, b in zip(*rows):  # rank 0 logs the means of both ranks: the global batch's
        for k in ("train/d_loss", "train/g_loss", "train/d_real", "train/grad_norm_d",
                  "val/d_loss", "val/g_loss"):
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k
    # Rank 0 wrote the run: one grid per epoch, a checkpoint holding both ranks' RNG states.
    assert len(list((tmp_path / "two" / "grids").glob("epoch_*.png"))) == 2
    state = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]["ranks"]) == 2
    assert not torch.equal(state["rng"]["ranks"][0]["torch"], state["rng"]["ranks"][1]["torch"])


def test_sync_bn_dcgan_runs_and_resumes_bit_identically(tmp_path: Path) -> None:
    """Report 004's DCGAN (BatchNorm in G and D, rotation) with model.sync_bn: equal to one
    process to the tolerance above (the BatchNorm statistics are the global batch's), and a
    copy resumed from its epoch-1 checkpoint on 2 processes ends bit-identical."""
    over = {"data.limit": 128, "precision": "fp32", "eval.every": 0, "model.sync_bn": "true",
            "memory_format": "contiguous", "kernels": "plain"}
    train_2("dcgan-r004", tmp_path / "two", over)
    Trainer(tiny("dcgan-r004", **{k.replace(".", "__"): v for k, v in over.items()
                                  if k != "model.sync_bn"}, model__sync_bn=True),
            tmp_path / "one", progress=False).run()
    # Weights are no fit measure here: Adam's first steps are ~lr * sign(gradient), and some
    # of this G's gradients are ~1e-10, whose sign float32 rounding decides (weights differ
    # by up to ~1e-3 after 8 steps). The statistics of the first epoch agree to rounding;
    # with each process normalising its own 16 images the gradient norms differ by ~2%.
    # Contiguous layouts: channels_last convolutions (the default) sum a weight gradient over
    # the batch in an order that depends on its size (16 or 32 images here), and the
    # gradient norms came out up to 8e-4 apart; contiguous ones agree to 1e-5. So does
    # kernels=fast: G's first layer as a GEMM of 16 or 32 rows rounds differently
    # (grad_norm_d came out 8e-5 apart). The layouts' and kernels' own agreement is
    # tests/training/test_fast.py's and tests/models/test_kernels.py's.
    rows = [json.loads((tmp_path / run / "metrics.jsonl").read_text().splitlines()[0])
            for run in ("one", "two")]
    for k in ("train/d_loss", "train/d_real", "train/d_fake", "train/g_loss",
              "train/grad_norm_d", "train/grad_norm_g"):
        assert rows[0][k] == pytest.approx(rows[1][k], rel=1e-5), k
    shutil.copytree(tmp_path / "two", tmp_path / "again")
    r = gankit("train", "--resume", str(tmp_path / "again"), "--from", "last.prev.pt",
               "--nproc", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "at epoch 2" in r.stderr
    a, b = weights(tmp_path / "two"), weights(tmp_path / "again")
    assert all(torch.equal(a[k], b[k]) for k in a)


def _worker(parent: int, local_rank: int, deadline: float) -> int:
    """The pid of the torchrun worker with LOCAL_RANK=`local_rank` below process `parent`."""
    while time.time() < deadline:
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(stat[1]) == parent and f"LOCAL_RANK={local_rank}".encode() in env:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no worker of rank {local_rank} under pid {parent}")


def test_a_killed_rank_stops_the_run_cleanly_and_it_resumes(tmp_path: Path,
                                                            capfd: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    over = {"data.limit": 256, "epochs": 200, "precision": "fp32", "eval.every": 0,
            "sample_every": 100}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **TIMEOUT}
    p = subprocess.Popen([sys.executable, "-m", "gankit.cli.main", "train", "--preset",
                          "mlp-cgan-m4", "--nproc", "2", "--quiet", "--out", str(run),
                          *sets(over)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        deadline = time.time() + 600  # generous: a busy machine starts torch slowly
        victim = _worker(p.pid, 1, deadline)
        while time.time() < deadline and len(_lines(run / "metrics.jsonl")) < 2:
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        killed = time.time()
        out, err = p.communicate(timeout=300)
    finally:
        p.kill()
    assert time.time() - killed < 120  # every process gone: bounded, far under the timeout
    assert p.returncode == 4, err
    assert "process 1 of 2" in err and "killed by SIGKILL" in err
    assert f"gankit train --resume {run} --nproc 2" in err
    assert "Traceback" not in err
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)  # intact
    done = state["step"]
    assert done >= 8 and state["world_size"] == 2  # epoch 1 at least (maybe 2: a race)
    # Resume on another world size (one process here): from the same step, saying what changes.
    resume(run, epochs=state["epoch"] + 1, progress=False)
    assert "trained on 2 processes and continues on 1 from step" in capfd.readouterr().err
    rows = _lines(run / "metrics.jsonl")
    assert rows[-1]["epoch"] == state["epoch"] + 1 and rows[-1]["step"] == done + 8


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def _from_main_worker(rank: int, port: int, results: Any) -> None:
    from gankit.training import distributed
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      GANKIT_DDP_TIMEOUT="120")

    def fails() -> None:
        raise KeyError("not a gankit error")

    with distributed.session(torch.device("cpu")):
        try:
            distributed.from_main(fails)
        except Exception as e:  # noqa: BLE001 - the test records what each rank raised
            results.put((rank, type(e).__name__, str(e)))
    results.close()
    results.join_thread()
    os._exit(0)  # as a torchrun worker ends (distributed.end_worker): no teardown of the group


def test_an_unexpected_error_on_rank_0_reaches_the_other_ranks() -> None:
    """Rank 0's checkpoint reading, folder naming and evaluation run in `from_main`: an error
    there that is not a GankitError must stop the other ranks too, not leave them waiting
    for a broadcast until the process group's timeout."""
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    started = time.time()
    mp.start_processes(_from_main_worker, args=(port, results), nprocs=2, start_method="spawn")
    got = dict((r, (kind, text)) for r, kind, text in (results.get(timeout=5) for _ in range(2)))
    assert time.time() - started < 100  # well under the 120 s timeout: nobody waited for it
    assert got[0][0] == "KeyError"
    assert got[1][0] == "DistributedError" and "rank 0 failed (KeyError" in got[1][1]
