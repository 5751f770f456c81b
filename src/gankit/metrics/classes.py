"""Metrics on class probabilities from the reference classifier, and per-class views.

- `inception_score`: exp(E_x KL(p(y|x) || p(y))) over 10 splits, with the reference
  classifier's p(y|x) (the "MNIST score"; at most the number of classes).
- conditional models: the share of samples classified as their conditioning label, per
  class and overall, and the confusion matrix (rows: conditioning label, columns: predicted).
- unconditional models: the class histogram of the samples, how many classes hold at least
  half their fair share (`modes`), and KL(histogram || uniform).
- per-class mean and std images (real and generated side by side).
- report 002's per-class discriminator accuracy on real and generated images.
- `reference_predictor`: the reference classifier's class prediction, for figures.
"""
from __future__ import annotations

import numpy as np
import torch

from gankit.data.datasets import load_dataset
from gankit.data.image import to_float
from gankit.metrics.features import get_feature_space
from gankit.metrics.fid import MetricError
from gankit.models.base import judging
from gankit.sampling import generate

IS_SPLITS = 10
MODE_SHARE_OF_FAIR = 0.5   # a class counts as a covered mode with >= 0.5 / K of the samples


class ClassifierUnavailable(Exception):
    """gankit.metrics has no reference classifier usable for this dataset."""


def reference_predictor(dataset: str):
    """A function uint8 images (N, C, H, W) -> predicted classes (N,) from the reference
    classifier of `dataset`, or ClassifierUnavailable saying why not."""
    try:
        space = get_feature_space("classifier", dataset)
    except Exception as e:  # noqa: BLE001 - WeightsError, MetricError, a bad weights file ...
        raise ClassifierUnavailable(f"no reference classifier for {dataset!r}: {e}") from None
    predict = getattr(space, "predict", None)
    if predict is None:
        raise ClassifierUnavailable("the classifier feature space cannot predict classes")
    return predict


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def inception_score(probs: np.ndarray, splits: int = IS_SPLITS, seed: int | None = 0
                    ) -> tuple[float, float]:
    """Mean and std over `splits` chunks of exp(E KL(p(y|x) || p(y))), float64.

    The rows are shuffled (with `seed`; None keeps their order) before splitting, so that
    samples ordered by class do not make every chunk a single class.
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise MetricError(f"inception_score needs probabilities (n >= {splits}, K), got {p.shape}")
    if seed is not None:
        p = p[np.random.default_rng(seed).permutation(len(p))]
    scores = []
    for chunk in np.array_split(p, splits):
        py = chunk.mean(axis=0, keepdims=True)
        # 0 * log 0 = 0: a class with p(y|x) = 0 adds nothing.
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(chunk > 0, chunk * (np.log(chunk) - np.log(py)), 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_histogram(pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of samples per predicted class (K,)."""
    pred = np.asarray(pred)
    return np.bincount(pred, minlength=num_classes)[:num_classes] / max(len(pred), 1)


def mode_coverage(hist: np.ndarray, share_of_fair: float = MODE_SHARE_OF_FAIR) -> int:
    """Number of classes holding at least `share_of_fair` / K of the samples."""
    k = len(hist)
    return int((np.asarray(hist) >= share_of_fair / k).sum())


def kl_from_uniform(hist: np.ndarray) -> float:
    """KL(hist || uniform) in nats: 0 when every class is equally frequent, log K for one class."""
    h = np.asarray(hist, np.float64)
    k = len(h)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.where(h > 0, h * np.log(h * k), 0.0).sum())


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (K, K): rows the conditioning (or true) label, columns the predicted class."""
    labels, pred = np.asarray(labels, np.int64), np.asarray(pred, np.int64)
    return np.bincount(labels * num_classes + pred, minlength=num_classes ** 2
                       ).reshape(num_classes, num_classes)


def label_accuracy(labels: np.ndarray, pred: np.ndarray, num_classes: int
                   ) -> tuple[float, np.ndarray]:
    """Overall share of samples classified as their label, and the share per label (K,)."""
    cm = confusion_matrix(labels, pred, num_classes)
    rows = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(rows > 0, np.diag(cm) / np.maximum(rows, 1), np.nan)
    return float(np.trace(cm) / max(cm.sum(), 1)), per


def class_mean_std_images(images: torch.Tensor | np.ndarray, labels: np.ndarray,
                          num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean and std images, float64 (K, C, H, W) in [0, 255]; NaN for empty classes."""
    x = np.asarray(images.numpy() if isinstance(images, torch.Tensor) else images, np.float64)
    labels = np.asarray(labels)
    mean = np.full((num_classes,) + x.shape[1:], np.nan)
    std = np.full_like(mean, np.nan)
    for k in range(num_classes):
        sel = x[labels == k]
        if len(sel):
            mean[k], std[k] = sel.mean(axis=0), sel.std(axis=0)
    return mean, std


@torch.no_grad()
def discriminator_accuracy_per_class(D: torch.nn.Module, G: torch.nn.Module, dataset: str,
                                     split: str = "val", n_per_class: int = 1000, seed: int = 0,
                                     data_dir: str | None = None, scale: str = "-1,1",
                                     batch_size: int = 500) -> dict[str, np.ndarray]:
    """Report 002, Table 3: D's accuracy per class on real images (logit > 0) and on generated
    ones (logit < 0), `n_per_class` of each per class.

    Real images of class k come from `split`; generated ones are G's samples conditioned on
    k (conditional G) or, for an unconditional G, samples the reference classifier assigns
    to k. D gets the label when it is conditional (`getattr(D, 'conditional', ...)`).
    Returns {'real': (K,), 'fake': (K,), 'n_real': (K,), 'n_fake': (K,)}.
    """
    ds = load_dataset(dataset, split, data_dir=data_dir)
    if ds.labels is None:
        raise MetricError(f"{dataset} {split} has no labels: per-class accuracy needs them")
    k_classes = ds.num_classes
    conditional = bool(getattr(G, "conditional", False))
    d_conditional = bool(getattr(D, "conditional", conditional))
    device = next(D.parameters()).device

    def logits(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(0, len(images), batch_size):
            x = to_float(images[i:i + batch_size].to(device), scale)
            y = labels[i:i + batch_size].to(device) if d_conditional else None
            out.append(D(x, y).reshape(-1).float().cpu())
        return torch.cat(out) if out else torch.zeros(0)

    rng = np.random.default_rng(seed)
    real_acc, n_real = np.full(k_classes, np.nan), np.zeros(k_classes, np.int64)
    for k in range(k_classes):
        idx = np.flatnonzero(ds.labels.numpy() == k)
        idx = np.sort(rng.permutation(idx)[:n_per_class])
        with judging(D):    # batches of one kind, real or generated, as in training
            lg = logits(ds.images[idx], torch.full((len(idx),), k, dtype=torch.long))
        real_acc[k], n_real[k] = float((lg > 0).float().mean()) if len(idx) else np.nan, len(idx)
    if conditional:
        labels = torch.arange(k_classes).repeat_interleave(n_per_class)
        images, labels = generate(G, len(labels), labels, seed=seed, scale=scale)
    else:
        images, _ = generate(G, n_per_class * k_classes, None, seed=seed, scale=scale)
        labels = torch.from_numpy(get_feature_space("classifier", dataset).predict(images))
    fake_acc, n_fake = np.full(k_classes, np.nan), np.zeros(k_classes, np.int64)
    with judging(D):
        lg = logits(images, labels)
    for k in range(k_classes):
        sel = labels == k
        n_fake[k] = int(sel.sum())
        if n_fake[k]:
            fake_acc[k] = float((lg[sel] < 0).float().mean())
    return {"real": real_acc, "fake": fake_acc, "n_real": n_real, "n_fake": n_fake}
