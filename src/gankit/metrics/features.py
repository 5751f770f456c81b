"""Feature spaces (stage 1 of features -> statistics -> number) and the real-feature cache.

A feature space turns uint8 images (N, C, H, W) into float features (N, d):
- "classifier": the penultimate layer (128-d) of the dataset's reference classifier, whose
  logits also give class probabilities (Inception Score, label accuracy, histograms);
- "inception": torch-fidelity's Inception-v3 pool features (2048-d), as report 000.

Real features are cached on disk per (dataset, split, feature space, n) under the gankit
cache (`$GANKIT_CACHE/metrics/`), with the real images' labels, their statistics and their
k-NN radii, so an evaluation during training only pays for the generated images. The
feature space's id names its weights (sha256 prefix): new weights never reuse old numbers.
"""
from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankit.data.datasets import load_dataset
from gankit.data.sources import cache_root
from gankit.metrics.classifier import classifier_for, load_classifier, run_classifier
from gankit.metrics.fid import FeatureStats, MetricError
from gankit.metrics.inception import InceptionFeatures
from gankit.metrics.prdc import DC_K, PR_K, knn_sq_radii
from gankit.fileio import atomic_path

FEATURE_SPACES = ("classifier", "inception")
CACHE_VERSION = 1
SUBSET_SEED = 0   # which real images make a subset of n < split size (fixed, not the eval seed)


_LOG = logging.getLogger("gankit.metrics")


def log(msg: str) -> None:
    """A progress message: "[gankit metrics] ..." on stderr; `gankit --quiet` silences it."""
    _LOG.info(msg)


@dataclass
class Extracted:
    """Features (N, d) float32 and, when the space has a classifier head, logits (N, K)."""
    features: np.ndarray
    logits: np.ndarray | None


class ClassifierSpace:
    """The reference classifier's penultimate layer; also predicts classes."""
    kind = "classifier"

    def __init__(self, dataset: str, batch_size: int = 500) -> None:
        self.clf = load_classifier(classifier_for(dataset))
        self.id = f"classifier-{self.clf.name}-{self.clf.sha256[:12]}"
        self.dim = self.clf.feature_dim
        self.batch_size = batch_size

    def extract(self, images: torch.Tensor) -> Extracted:
        f, lg = run_classifier(self.clf.model, images, self.batch_size)
        return Extracted(f.numpy(), lg.numpy())

    def predict(self, images: torch.Tensor) -> np.ndarray:
        return self.extract(images).logits.argmax(axis=1)


class InceptionSpace:
    """torch-fidelity's Inception-v3 2048-d pool features (no class head used)."""
    kind = "inception"

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int = 100) -> None:
        self.net = InceptionFeatures(weights)
        self.id = f"inception-{self.net.sha256[:12]}"
        self.dim = self.net.dim
        self.batch_size = batch_size

    def extract(self, images: torch.Tensor) -> Extracted:
        return Extracted(self.net(images, self.batch_size).numpy(), None)


FeatureSpace = ClassifierSpace | InceptionSpace


@functools.lru_cache(maxsize=8)
def _space(kind: str, key: str) -> FeatureSpace:
    return ClassifierSpace(key) if kind == "classifier" else InceptionSpace(key or None)


def get_feature_space(features: str, dataset: str,
                      inception_weights: str | os.PathLike | None = None) -> FeatureSpace:
    """A feature space by name ("classifier" or "inception") for a dataset; loaded once."""
    if features == "classifier":
        return _space("classifier", classifier_for(dataset))
    if features == "inception":
        w = inception_weights or os.environ.get("GANKIT_INCEPTION_WEIGHTS") or ""
        return _space("inception", str(w))
    raise MetricError(f"unknown feature space {features!r}; choose one of "
                      f"{', '.join(FEATURE_SPACES)}")


# ---------------------------------------------------------------------------------------------
# Real features, cached

@dataclass
class RealFeatures:
    """A split's features and what every metric needs from them, computed once."""
    features: np.ndarray          # (n, d) float32
    labels: np.ndarray | None     # (n,) int64 true labels
    logits: np.ndarray | None     # (n, K) in this space, if it has a class head
    stats: FeatureStats
    sq_radii: dict[int, np.ndarray]


def metrics_cache_dir() -> Path:
    return cache_root() / "metrics"


def real_subset(n_total: int, n: int) -> np.ndarray:
    """Indices of the n real images used: all of them, or a fixed random subset (sorted).

    Not the first n: MNIST's test file puts its easier half (Census writers) first.
    """
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(n_total)[:n])


def load_real_images(dataset: str, split: str, n: int, data_dir: str | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The real images (and labels) an evaluation with n samples compares against."""
    ds = load_dataset(dataset, split, data_dir=data_dir)
    if n > len(ds):
        log(f"{dataset} {split} has {len(ds)} images, fewer than n={n}: using all {len(ds)}")
    idx = torch.from_numpy(real_subset(len(ds), n))
    return ds.images[idx], (None if ds.labels is None else ds.labels[idx])


def real_features(space: FeatureSpace, dataset: str, split: str, n: int,
                  data_dir: str | None = None, use_cache: bool = True) -> RealFeatures:
    """Features of n real images of a split in a feature space, from the disk cache if there."""
    path = metrics_cache_dir() / f"v{CACHE_VERSION}_{dataset}_{split}_{space.id}_n{n}.npz"
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                feats = z["features"]
                return RealFeatures(
                    feats, z["labels"] if "labels" in z else None,
                    z["logits"] if "logits" in z else None,
                    FeatureStats(z["mu"], z["sigma"], len(feats)),
                    {PR_K: z["sq_radii_pr"], DC_K: z["sq_radii_dc"]})
        except (OSError, ValueError, KeyError) as e:
            log(f"ignoring an unreadable cache file {path} ({e}); recomputing")
    images, labels = load_real_images(dataset, split, n, data_dir)
    ex = space.extract(images)
    stats = FeatureStats.from_features(ex.features)
    radii = knn_sq_radii(ex.features, (PR_K, DC_K))
    out = RealFeatures(ex.features, None if labels is None else labels.numpy(), ex.logits,
                       stats, radii)
    if use_cache:
        arrays = {"features": ex.features, "mu": stats.mu, "sigma": stats.sigma,
                  "sq_radii_pr": radii[PR_K], "sq_radii_dc": radii[DC_K]}
        if labels is not None:
            arrays["labels"] = out.labels
        if ex.logits is not None:
            arrays["logits"] = ex.logits
        with atomic_path(path, ".npz") as tmp:
            np.savez(tmp, **arrays)
    return out
