"""How long evaluation takes on this machine: features for 10k images, and a whole evaluate.

    python benchmarks/eval_speed.py [--n 10000] [--features classifier|inception]

Targets on a 2-core CPU: features for 10k images < 10 s; a whole evaluate_generator < 30 s
(with the real split's features already cached, as during training; the first, uncached
evaluation is also timed). The generator is a stand-in: a small MLP with report 000's shape.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from torch import nn


class StandInG(nn.Module):
    """Report 000's MLP generator (z 128 + one-hot 10 -> 128 -> 256 -> 784), random weights."""

    def __init__(self, nz: int = 128, num_classes: int = 10):
        super().__init__()
        self.nz, self.num_classes, self.conditional = nz, num_classes, True
        self.net = nn.Sequential(nn.Linear(nz + num_classes, 128), nn.ReLU(), nn.Linear(128, 256),
                                 nn.ReLU(), nn.Linear(256, 784), nn.Tanh())

    def forward(self, z, y):
        onehot = nn.functional.one_hot(y, self.num_classes).float()
        return self.net(torch.cat([z, onehot], 1)).view(-1, 1, 28, 28)


def timed(label: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t0
    print(f"{label:<52}{dt:8.2f} s", flush=True)
    return out, dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--features", default="classifier", choices=["classifier", "inception"])
    args = p.parse_args()
    from gankit.data import load_dataset
    from gankit.metrics import features as F
    from gankit.metrics.evaluate import evaluate_generator
    from gankit.metrics.fid import FeatureStats
    from gankit.metrics.kid import kid
    from gankit.metrics.prdc import knn_sq_radii, prdc

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}")
    images = load_dataset("mnist", "test").images[:args.n]
    space = F.get_feature_space(args.features, "mnist")
    space.extract(images[:100])                                     # warm-up
    ex, t_feat = timed(f"features, {len(images)} images ({args.features})", space.extract, images)
    feats = ex.features
    real = load_dataset("mnist", "val").images[:args.n]
    rf = space.extract(real).features
    timed("statistics (mean, covariance)", FeatureStats.from_features, feats)
    radii, _ = timed("k-NN radii of one set (k=3, 5)", knn_sq_radii, rf)
    timed("precision/recall/density/coverage", prdc, rf, feats, radii)
    timed("KID (100 subsets of 1000)", kid, rf, feats)

    G = StandInG().eval()
    with tempfile.TemporaryDirectory() as tmp:          # a cold cache, then a warm one
        F.metrics_cache_dir = lambda: __import__("pathlib").Path(tmp)
        _, t_cold = timed("evaluate_generator, real features not cached", evaluate_generator,
                          G, "mnist", n=args.n, features=args.features)
        m, t_warm = timed("evaluate_generator, real features cached", evaluate_generator,
                          G, "mnist", n=args.n, features=args.features)
    print(f"\nfeatures for {args.n} images: {t_feat:.1f} s (target < 10 s); whole evaluate: "
          f"{t_warm:.1f} s cached, {t_cold:.1f} s uncached (target < 30 s)")
    print("stand-in G metrics:", {k: round(v, 4) for k, v in m.items()})


if __name__ == "__main__":
    main()
