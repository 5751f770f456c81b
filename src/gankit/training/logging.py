"""Where per-epoch figures go: metrics.jsonl, TensorBoard, a progress bar, and where a run
is within its epoch (heartbeat.json, and a line in a log without a bar)."""
from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, Literal, Union

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from gankit.fileio import atomic_write
from gankit.training.runs import RunPaths

# How often a training run says where it is within its epoch: RUN/heartbeat.json, so that
# `gankit runs` can show a long epoch's progress and time left (report 001's 1000-wide D
# trains ~35 minutes an epoch on one thread), and the same as one line in a log that has no
# progress bar (a parallel sweep's logs/NAME.log).
HEARTBEAT_S = 30.0

# What a training process shows as it goes: True, a progress bar and a line per epoch (a
# terminal); "lines", each epoch's line and the heartbeat's without a bar (a log file: a
# parallel sweep's); False, neither (`gankit train --quiet`).
Progress = Union[bool, Literal["lines"]]


class Logger:
    """Appends one JSON line per epoch, mirrors it to TensorBoard, drives tqdm bars (or
    lines, as `progress` says) and writes the heartbeat."""

    def __init__(self, paths: RunPaths, start_epoch: int, progress: Progress = True) -> None:
        self.paths = paths
        self.progress = progress is True
        self.lines = progress == "lines"
        self.tb = SummaryWriter(str(paths.tensorboard), purge_step=start_epoch + 1)
        self._mark: tuple[int, int, float] | None = None  # (epoch, batch, time) pace is from
        self._due: float | None = None  # when the next heartbeat is due

    def log(self, record: dict[str, Any]) -> None:
        with open(self.paths.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in record.items():
            if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v):
                self.tb.add_scalar(k, v, record["epoch"])
        self.tb.flush()
        if not (self.progress or self.lines):
            return
        keys = ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "val/fid")
        shown = "  ".join(f"{k.split('/')[-1]} {record[k]:.4g}" for k in keys if k in record)
        print(f"epoch {record['epoch']}: {shown}  ({record['time_s']:.1f} s)", file=sys.stderr)

    def log_steps(self, record: dict[str, Any]) -> None:
        """One line of steps.jsonl (every `log_every` steps), mirrored to TensorBoard by step."""
        with open(self.paths.steps, "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in record.items():
            if "/" in k and math.isfinite(v):
                self.tb.add_scalar(f"steps/{k}", v, record["step"])

    def heartbeat(self, epoch: int, epochs: int, batch: int, batches: int) -> None:
        """After each step (batch steps of epoch `epoch` done, of `batches`): every
        HEARTBEAT_S from this process's first step, heartbeat.json with where the run is and
        its seconds a step since the epoch (or this process) began, and one line when
        `lines`. Epochs shorter than HEARTBEAT_S get one now and then, at whatever step is due."""
        now = time.monotonic()
        if self._due is None:
            self._due = now + HEARTBEAT_S
        if self._mark is None or self._mark[0] != epoch:
            self._mark = (epoch, batch, now)
            return
        if now < self._due or batch <= self._mark[1]:
            return
        self._due = now + HEARTBEAT_S
        step_s = (now - self._mark[2]) / (batch - self._mark[1])
        try:
            atomic_write(self.paths.heartbeat, json.dumps(
                {"epoch": epoch, "epochs": epochs, "batch": batch, "batches": batches,
                 "step_s": step_s, "time": time.time()}) + "\n")
        except OSError:  # advisory: a full disk or a lost folder stops the next checkpoint
            pass
        if self.lines:
            left = (batches - batch) * step_s
            print(f"epoch {epoch}/{epochs}: batch {batch}/{batches}, {step_s:.3g} s a step, "
                  f"the epoch's steps done in {left / 60:.1f} min", file=sys.stderr, flush=True)

    def bar(self, epoch: int, epochs: int, total: int, start: int) -> Any:
        if not self.progress:
            return None
        return tqdm(total=total, initial=start, desc=f"epoch {epoch}/{epochs}", leave=False,
                    file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def update_bar(self, bar: Any, position: int, means: dict[str, float]) -> None:
        bar.n = position
        bar.set_postfix({"D": f"{means['train/d_loss']:.3f}", "G": f"{means['train/g_loss']:.3f}",
                         "D(x)": f"{means['train/d_real']:.2f}",
                         "D(G(z))": f"{means['train/d_fake']:.2f}"}, refresh=True)

    def close(self) -> None:
        self.tb.close()
