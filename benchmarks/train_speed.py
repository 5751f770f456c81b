"""Seconds per epoch (50k MNIST images): gankit's loop beside a plain PyTorch loop, same models.

The plain loop is the kind the reports use: a torch DataLoader over a float TensorDataset,
separate D passes on real and fake, nn.BCEWithLogitsLoss, default Adam, a `.item()` per step
for logging. Both loops run the same models, in the same process, one after the other.

    python benchmarks/train_speed.py [--batches N] [--which mlp|dcgan|both]

With --batches N only N batches are timed and the epoch time is extrapolated (say so).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gankit.config import resolve
from gankit.data import load_dataset
from gankit.training.loop import Trainer

CASES = {"mlp": ("mlp-cgan-m4", 64, "report 000 MLP cGAN, batch 64", 3.0),
         "dcgan": ("dcgan-r004", 128, "report 004 DCGAN, batch 128", 40.0)}


def plain_epoch(cfg, G: nn.Module, D: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                max_batches: int | None) -> tuple[float, int]:
    """One epoch of a textbook GAN loop; returns (seconds, batches)."""
    conditional = cfg.model.conditional
    ds = TensorDataset(images.float().div(127.5).sub(1), labels)
    dl = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.g_lr, betas=tuple(cfg.optim.g_betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.d_lr, betas=tuple(cfg.optim.d_betas))
    bce = nn.BCEWithLogitsLoss()
    t0 = time.perf_counter()
    n = 0
    for x, y in dl:
        y = y if conditional else None
        b = x.shape[0]
        z = torch.randn(b, G.nz)
        fake = G(z, y)
        opt_d.zero_grad()
        d_loss = (bce(D(x, y), torch.ones(b)) + bce(D(fake.detach(), y), torch.zeros(b))) / 2
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = bce(D(fake, y), torch.ones(b))
        g_loss.backward()
        opt_g.step()
        _ = d_loss.item(), g_loss.item()
        n += 1
        if max_batches and n >= max_batches:
            break
    return time.perf_counter() - t0, n


def gankit_epoch(trainer: Trainer, max_batches: int | None) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    total = len(trainer.loader)
    for x, y in trainer.loader.epoch(0):
        trainer.train_step(x, y, do_g=True)
        n += 1
        if max_batches and n >= max_batches:
            break
    _ = trainer.epoch_means()
    return time.perf_counter() - t0, n if max_batches else total


def profile(trainer: Trainer, label: str, batches: int = 30) -> None:
    """Where gankit's step time goes: the top ops by self CPU time over `batches` steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        gankit_epoch(trainer, batches)
    print(f"{label}: top ops over {batches} gankit steps")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--which", default="both", choices=["mlp", "dcgan", "both"])
    ap.add_argument("--batches", type=int, default=None,
                    help="time only N batches and extrapolate to the epoch")
    ap.add_argument("--profile", action="store_true",
                    help="also print the ops that take gankit's step time (torch.profiler)")
    args = ap.parse_args()
    train = load_dataset("mnist", "train")
    default_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {default_threads} cores, 50k MNIST images")
    for key in (["mlp", "dcgan"] if args.which == "both" else [args.which]):
        preset, batch, label, target = CASES[key]
        cfg = resolve(preset, {"batch_size": batch, "device": "cpu"})
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(cfg, tmp, progress=False)
            G, D = trainer.G, trainer.D
            batches_per_epoch = len(trainer.loader)
            # warm-up (allocator, first-call overheads) for both loops
            gankit_epoch(trainer, 5)
            plain_epoch(cfg, G, D, train.images, train.labels, 5)
            g_threads = torch.get_num_threads()  # the preset's `threads`
            t_g, n_g = gankit_epoch(trainer, args.batches)
            if args.profile:
                profile(trainer, label)
            torch.set_num_threads(default_threads)  # the plain loop as users run it
            t_p, n_p = plain_epoch(cfg, G, D, train.images, train.labels, args.batches)
        e_g = t_g * batches_per_epoch / n_g
        e_p = t_p * batches_per_epoch / n_p
        note = f" (extrapolated from {args.batches} batches)" if args.batches else ""
        print(f"{label}: gankit {e_g:.2f} s/epoch ({g_threads} threads), plain PyTorch "
              f"{e_p:.2f} s/epoch ({default_threads} threads), "
              f"speed-up x{e_p / e_g:.2f}; target <= {target:.1f} s: "
              f"{'met' if e_g <= target else 'MISSED'}{note}")


if __name__ == "__main__":
    main()
