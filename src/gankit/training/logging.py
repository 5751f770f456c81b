"""Where per-epoch figures go: metrics.jsonl, TensorBoard and a progress bar."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from gankit.training.runs import RunPaths


class Logger:
    """Appends one JSON line per epoch, mirrors it to TensorBoard, and drives tqdm bars."""

    def __init__(self, paths: RunPaths, start_epoch: int, progress: bool = True) -> None:
        self.paths = paths
        self.progress = progress
        self.tb = SummaryWriter(str(paths.tensorboard), purge_step=start_epoch + 1)

    def log(self, record: dict[str, Any]) -> None:
        with open(self.paths.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in record.items():
            if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v):
                self.tb.add_scalar(k, v, record["epoch"])
        self.tb.flush()
        if not self.progress:
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
