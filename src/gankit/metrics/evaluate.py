"""The evaluation protocol: generated (or held-out real) images against a real split.

`evaluate_generator` is what the training loop calls every K epochs and what `gankit eval`
calls once; `evaluate_images` is the same on images already at hand (e.g. the test split,
for the real-vs-real floor of `gankit eval --real`).

Protocol:
- n generated images from seed `seed` (balanced labels for a conditional G: n/K per class)
  against n real images of `split` (all of a 10k split; a fixed subset when n is smaller);
- FID, KID, precision/recall (k=3), density/coverage (k=5) in the chosen feature space;
- from the reference classifier (whatever the feature space): Inception Score over 10
  splits, class histogram, modes covered and, for conditional models, the share of samples
  classified as their label, per class, and the confusion matrix;
- intra-class FID (conditional): FID per class between the samples of label k and the real
  images of class k, in the chosen feature space, when each class has more samples than
  the space has dimensions (so with the classifier's 128, not with Inception's 2048 at 10k).

Deterministic for a seed: the noise, the real subset and KID's subsets are all seeded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from gankit.metrics import keys as K
from gankit.metrics.classes import (class_histogram, class_mean_std_images, confusion_matrix,
                                    inception_score, kl_from_uniform, label_accuracy,
                                    mode_coverage, softmax)
from gankit.metrics.classifier import CLASSIFIER_FOR
from gankit.metrics.features import get_feature_space, load_real_images, real_features
from gankit.metrics.fid import FeatureStats, MetricError, fid_from_stats
from gankit.metrics.kid import kid
from gankit.metrics.prdc import prdc
from gankit.sampling import generate

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


@dataclass
class Evaluation:
    """Everything one evaluation measured. `metrics` holds scalars (summary and per class)."""
    metrics: dict[str, float]
    num_classes: int
    histogram: np.ndarray | None = None            # (K,) share of samples per predicted class
    real_histogram: np.ndarray | None = None       # (K,) the same for the real images
    confusion: np.ndarray | None = None            # (K, K) counts, rows = conditioning label
    class_images: dict[str, np.ndarray] = field(default_factory=dict)  # fake/real mean/std

    def summary(self) -> dict[str, float]:
        """The scalar keys without the per-class ones (what the training loop logs)."""
        return {k: v for k, v in self.metrics.items() if "/" not in k}

    def to_json(self) -> dict:
        out: dict = {"metrics": {k: _finite(v) for k, v in self.metrics.items()}}
        if self.histogram is not None:
            out["histogram"] = [float(v) for v in self.histogram]
        if self.real_histogram is not None:
            out["real_histogram"] = [float(v) for v in self.real_histogram]
        if self.confusion is not None:
            out["confusion"] = self.confusion.astype(int).tolist()
        return out


def _finite(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def evaluate_images(images: torch.Tensor, labels: torch.Tensor | np.ndarray | None,
                    dataset: str, split: str = "val", features: str = "classifier",
                    seed: int = 0, data_dir: str | None = None, n_real: int | None = None,
                    inception_weights: str | os.PathLike | None = None,
                    class_images: bool = False) -> Evaluation:
    """Compare uint8 images (N, C, H, W) with `n_real` (default N) real images of `split`.

    `labels`: the conditioning labels for a conditional model (or true labels of real
    images), None for an unconditional one. `class_images` adds per-class mean/std images.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise MetricError(f"expected uint8 images (N, C, H, W), got {images.dtype} "
                          f"{tuple(images.shape)}")
    n = len(images)
    space = get_feature_space(features, dataset, inception_weights)
    real = real_features(space, dataset, split, n_real or n, data_dir)
    fake = space.extract(images)
    m: dict[str, float] = {K.N: float(n)}

    fake_stats = FeatureStats.from_features(fake.features)
    m[K.FID] = fid_from_stats(fake_stats, real.stats)
    m[K.KID], m[K.KID_STD] = kid(real.features, fake.features, KID_SUBSETS,
                                 min(KID_SUBSET_SIZE, n, len(real.features)), seed)
    pr = prdc(real.features, fake.features, real.sq_radii)
    m[K.PRECISION], m[K.RECALL] = pr.precision, pr.recall
    m[K.DENSITY], m[K.COVERAGE] = pr.density, pr.coverage

    # Class probabilities from the reference classifier, whatever the feature space.
    num_classes = 0
    ev = Evaluation(m, 0)
    if dataset in CLASSIFIER_FOR:
        clf = space if space.kind == "classifier" else get_feature_space("classifier", dataset)
        logits = fake.logits if space.kind == "classifier" else clf.extract(images).logits
        real_logits = real.logits if space.kind == "classifier" else None
        num_classes = logits.shape[1]
        ev.num_classes = num_classes
        m[K.IS], m[K.IS_STD] = inception_score(softmax(logits), seed=seed)
        pred = logits.argmax(axis=1)
        ev.histogram = class_histogram(pred, num_classes)
        m[K.MODES] = float(mode_coverage(ev.histogram))
        m[K.CLASS_KL] = kl_from_uniform(ev.histogram)
        if real_logits is not None:
            ev.real_histogram = class_histogram(real_logits.argmax(axis=1), num_classes)
        for k in range(num_classes):
            m[K.per_class(K.SHARE, k)] = float(ev.histogram[k])

    if labels is not None and num_classes:
        labels = np.asarray(labels.numpy() if isinstance(labels, torch.Tensor) else labels)
        m[K.LABEL_ACC], per = label_accuracy(labels, pred, num_classes)
        ev.confusion = confusion_matrix(labels, pred, num_classes)
        for k in range(num_classes):
            m[K.per_class(K.LABEL_ACC, k)] = float(per[k])
        if real.labels is not None:
            intra = []
            for k in range(num_classes):
                f, r = fake.features[labels == k], real.features[real.labels == k]
                if min(len(f), len(r)) > space.dim:
                    v = fid_from_stats(FeatureStats.from_features(f), FeatureStats.from_features(r))
                    m[K.per_class(K.INTRA_FID, k)] = v
                    intra.append(v)
            if len(intra) == num_classes:
                m[K.INTRA_FID] = float(np.mean(intra))

    if class_images and num_classes:
        group = labels if labels is not None else pred
        fm, fs = class_mean_std_images(images, group, num_classes)
        real_images, real_labels = load_real_images(dataset, split, n_real or n, data_dir)
        if real_labels is not None:
            rm, rs = class_mean_std_images(real_images, real_labels.numpy(), num_classes)
            ev.class_images = {"fake_mean": fm, "fake_std": fs, "real_mean": rm, "real_std": rs}
    return ev


def evaluate_generator(G: torch.nn.Module, dataset_name: str, split: str = "val",
                       n: int = 10_000, features: str = "classifier", seed: int = 0,
                       data_dir: str | None = None, scale: str = "-1,1",
                       inception_weights: str | os.PathLike | None = None) -> dict[str, float]:
    """The summary metrics (keys in gankit.metrics.keys) of n samples of G against `split`.

    Conditional G: n // K samples per class (n rounded down to a multiple of K). G's train/
    eval mode is restored afterwards. Deterministic for a seed.
    """
    return evaluate_generator_full(G, dataset_name, split, n, features, seed, data_dir, scale,
                                   inception_weights).summary()


def sample_for_eval(G: torch.nn.Module, n: int, seed: int = 0, scale: str = "-1,1"
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n uint8 samples of G from `seed`: balanced labels (n // K per class) when conditional."""
    labels = None
    if getattr(G, "conditional", False):
        k = int(G.num_classes)
        per = n // k
        if per < 1:
            raise MetricError(f"n={n} is smaller than the number of classes ({k})")
        n = per * k
        labels = torch.arange(n) % k          # interleaved: every chunk of K is balanced
    return generate(G, n, labels, seed=seed, scale=scale)


def evaluate_generator_full(G: torch.nn.Module, dataset_name: str, split: str = "val",
                            n: int = 10_000, features: str = "classifier", seed: int = 0,
                            data_dir: str | None = None, scale: str = "-1,1",
                            inception_weights: str | os.PathLike | None = None,
                            class_images: bool = False) -> Evaluation:
    """`evaluate_generator` with everything measured (per class, confusion, class images)."""
    images, labels = sample_for_eval(G, n, seed, scale)
    return evaluate_images(images, labels, dataset_name, split, features, seed, data_dir,
                           n_real=n, inception_weights=inception_weights,
                           class_images=class_images)


def evaluate_real(dataset: str, n: int = 10_000, features: str = "classifier",
                  reference_split: str = "val", other_split: str = "test", seed: int = 0,
                  data_dir: str | None = None, inception_weights: str | os.PathLike | None = None,
                  class_images: bool = False) -> Evaluation:
    """The real-vs-real floor: n images of `other_split` (with their true labels, as if from
    a perfect conditional model) against n images of `reference_split`."""
    images, labels = load_real_images(dataset, other_split, n, data_dir)
    return evaluate_images(images, labels, dataset, reference_split, features, seed, data_dir,
                           n_real=n, inception_weights=inception_weights,
                           class_images=class_images)
