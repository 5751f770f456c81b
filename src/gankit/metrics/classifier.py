"""The reference classifiers: small CNNs whose penultimate layer is gankit's feature space.

Inception-v3 was trained on photographs; on 28x28 digits upscaled to 299x299 its features
say little about what makes a digit a digit. A CNN trained on the dataset itself gives a
feature space (and class probabilities) that FID, KID, precision/recall and the Inception
Score can use, at a fraction of the cost.

The weights ship inside the package (`metrics/weights/<dataset>_classifier.pt`) and are
checked against the sha256 in `WEIGHTS` before they are used: numbers computed with other
weights are not comparable with anyone else's. `gankit classifier train` rebuilds them with
the fixed recipe in `RECIPES`.

The classifier is trained on the `train` split (50k) only, so that `val` and `test`, the
splits generators are compared against, are unseen by it: the features of real held-out
images and of generated images are then on the same footing.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gankit.data.datasets import load_dataset
from gankit.data.loader import BatchLoader
from gankit.errors import GankitError
from gankit.fileio import atomic_path

WEIGHTS_DIR = Path(__file__).parent / "weights"
FORMAT_VERSION = 1


class WeightsError(GankitError):
    """A classifier weights file is missing, tampered with, or not what gankit expects."""


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a reference classifier (with the code and torch's kernels)."""
    dataset: str
    train_split: str = "train"
    widths: tuple[int, int, int] = (32, 64, 128)
    feature_dim: int = 128
    epochs: int = 4
    batch_size: int = 128
    max_lr: float = 3e-3
    weight_decay: float = 1e-4
    dropout: float = 0.25
    rotation: float = 10.0          # degrees, uniform in [-r, r]
    shift: float = 2.0              # pixels, uniform in [-s, s] on each axis
    hflip: bool = False             # mirror half the images (Fashion-MNIST: clothes are symmetric)
    seed: int = 0


# Which reference classifier serves which dataset (`digits` are digits: MNIST's classifier).
RECIPES: dict[str, Recipe] = {
    "mnist": Recipe("mnist"),
    "fashion-mnist": Recipe("fashion-mnist", rotation=0.0, hflip=True),
}
CLASSIFIER_FOR = {"mnist": "mnist", "digits": "mnist", "fashion-mnist": "fashion-mnist"}

# sha256 of the shipped weights files. A new file from `gankit classifier train` prints its
# sha256; put it here in the same change that ships the file.
WEIGHTS_SHA256: dict[str, str] = {
    "mnist": "c80de40385c07e8f7379b753a578ef537f9eea0a2fc7f72ef224a15e1035706d",
    "fashion-mnist": "7ad6bc42c3501dcdfdc4d04a85d208001996ab72d35c0f4451c4e370c4edcdca",
}


def weights_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}_classifier.pt"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


class ReferenceClassifier(nn.Module):
    """Three conv blocks (conv3x3-BN-ReLU-maxpool), FC -> `feature_dim` -> ReLU -> FC -> classes.

    Input: float images (B, C, 28, 28) in [-1, 1]. The features are the penultimate layer
    *before* its ReLU (every dimension stays informative: no dead, always-zero units that
    would make covariance matrices singular), divided by `feature_scale`, a constant fixed at
    training time: the root mean square of those activations over the training split. It
    puts x.y/d near 1 for real images, the range KID's kernel (x.y/d + 1)^3 is meant for
    (Inception's pool features are of that order); raw activations are ~10x larger and make
    the cubic kernel's estimates explode in variance.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: tuple[int, int, int] = (32, 64, 128), feature_dim: int = 128,
                 dropout: float = 0.25, image_size: int = 28) -> None:
        super().__init__()
        a, b, c = widths
        self.body = nn.Sequential(_block(in_channels, a), _block(a, b), _block(b, c), nn.Flatten())
        side = image_size // 8                       # 28 -> 14 -> 7 -> 3
        self.fc1 = nn.Linear(c * side * side, feature_dim)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(feature_dim, num_classes)
        self.register_buffer("feature_scale", torch.ones(()))
        self.in_channels, self.image_size = in_channels, image_size

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.fc1(self.body(x))                   # (B, feature_dim), pre-activation
        return f / self.feature_scale, self.fc2(self.drop(F.relu(f)))   # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]


def build(recipe: Recipe, in_channels: int = 1, num_classes: int = 10) -> ReferenceClassifier:
    return ReferenceClassifier(in_channels, num_classes, recipe.widths, recipe.feature_dim,
                               recipe.dropout)


# ---------------------------------------------------------------------------------------------
# Loading (with the sha256 check)

@dataclass
class LoadedClassifier:
    """A reference classifier in eval mode, with what its weights file says about it."""
    name: str
    model: ReferenceClassifier
    sha256: str
    meta: dict = field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        return self.model.fc1.out_features


def _retrain_hint(name: str, path: Path) -> str:
    return (f"restore the shipped file (e.g. `git checkout -- {path}` or reinstall gankit), or "
            f"rebuild it with `gankit classifier train --dataset {name}` and put the sha256 it "
            f"prints into WEIGHTS_SHA256[{name!r}] in {Path(__file__).name}")


def load_classifier(name: str = "mnist", path: str | Path | None = None,
                    expected_sha256: str | None = None) -> LoadedClassifier:
    """Load a reference classifier. The shipped file must match WEIGHTS_SHA256[name].

    `path` overrides the file (e.g. a freshly trained one); `expected_sha256` then checks it
    when given. Loading uses `weights_only=True`: a weights file cannot run code.
    """
    if name not in RECIPES:
        raise WeightsError(f"no reference classifier {name!r}; known: {', '.join(RECIPES)}")
    shipped = path is None
    p = weights_path(name) if shipped else Path(path)
    if shipped:
        expected_sha256 = WEIGHTS_SHA256[name]
    if not p.is_file():
        raise WeightsError(f"reference classifier weights {p} not found; " + _retrain_hint(name, p))
    digest = sha256_file(p)
    if expected_sha256 is not None:
        if not expected_sha256:
            raise WeightsError(f"no sha256 is recorded for the {name} classifier in "
                               f"WEIGHTS_SHA256; " + _retrain_hint(name, p))
        if digest != expected_sha256:
            raise WeightsError(f"{p}: sha256 {digest} does not match the expected "
                               f"{expected_sha256}: the file was modified or replaced, and its "
                               "numbers would not be comparable; " + _retrain_hint(name, p))
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise WeightsError(f"{p}: cannot load it ({e}); " + _retrain_hint(name, p)) from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT_VERSION:
        raise WeightsError(f"{p}: not a gankit classifier file of format {FORMAT_VERSION}; "
                           + _retrain_hint(name, p))
    arch = blob["arch"]
    model = ReferenceClassifier(arch["in_channels"], arch["num_classes"], tuple(arch["widths"]),
                                arch["feature_dim"], arch["dropout"])
    model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    model.eval().requires_grad_(False)
    meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return LoadedClassifier(name, model, digest, meta)


def classifier_for(dataset: str) -> str:
    """The reference classifier that serves a dataset, or a clear error."""
    if dataset not in CLASSIFIER_FOR:
        raise WeightsError(f"there is no reference classifier for dataset {dataset!r} (only "
                           f"{', '.join(sorted(CLASSIFIER_FOR))}); use features='inception'")
    return CLASSIFIER_FOR[dataset]


# ---------------------------------------------------------------------------------------------
# Inference

@torch.no_grad()
def run_classifier(clf: ReferenceClassifier, images: torch.Tensor, batch_size: int = 500
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, feature_dim) and logits (N, classes), float32, for uint8 images (N, C, H, W)."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} "
                         f"{tuple(images.shape)}")
    want = (clf.in_channels, clf.image_size, clf.image_size)
    if tuple(images.shape[1:]) != want:
        raise ValueError(f"the reference classifier takes images of shape {want}, got "
                         f"{tuple(images.shape[1:])}")
    clf.eval()
    feats, logits = [], []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].float().mul_(2.0 / 255.0).sub_(1.0)
        f, lg = clf.features_and_logits(x)
        feats.append(f)
        logits.append(lg)
    if not feats:
        return torch.zeros(0, clf.fc1.out_features), torch.zeros(0, clf.fc2.out_features)
    return torch.cat(feats), torch.cat(logits)


def accuracy(clf: ReferenceClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    _, logits = run_classifier(clf, images)
    return float((logits.argmax(1) == labels).float().mean())


# ---------------------------------------------------------------------------------------------
# Training (the fixed recipe)

def augment(x: torch.Tensor, recipe: Recipe, g: torch.Generator) -> torch.Tensor:
    """Random rotation, shift and (optionally) mirror of a batch (B, C, H, W) in [-1, 1]."""
    b, _, h, w = x.shape
    theta = (torch.rand(b, generator=g) * 2 - 1) * (recipe.rotation * math.pi / 180)
    shift = (torch.rand(b, 2, generator=g) * 2 - 1) * recipe.shift
    sx = torch.ones(b)
    if recipe.hflip:
        sx = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # affine_grid works in [-1, 1] coordinates: a shift of s pixels is 2 s / size.
    mats = torch.stack([torch.stack([cos * sx, -sin, shift[:, 0] * 2 / w], 1),
                        torch.stack([sin * sx, cos, shift[:, 1] * 2 / h], 1)], 1)
    grid = F.affine_grid(mats, list(x.shape), align_corners=False)
    # Sample the offset from the background (-1) so that borders fill with background.
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) - 1


@torch.no_grad()
def set_feature_scale(model: ReferenceClassifier, images: torch.Tensor) -> float:
    """Fix `feature_scale` to the RMS of the raw penultimate activations over `images`."""
    model.eval()
    model.feature_scale.fill_(1.0)
    f, _ = run_classifier(model, images)
    scale = float(f.double().pow(2).mean().sqrt())
    model.feature_scale.fill_(scale)
    return scale


def train_classifier(name: str = "mnist", out: str | Path | None = None,
                     data_dir: str | None = None, recipe: Recipe | None = None,
                     log: Callable[[str], None] = print) -> dict:
    """Train a reference classifier with its fixed recipe and write the weights file.

    Returns a summary: val and test accuracy, training time, the file and its sha256.
    Same recipe, same torch build and thread count: the same weights, bit for bit.
    """
    recipe = recipe or RECIPES[name]
    torch.manual_seed(recipe.seed)
    train = load_dataset(recipe.dataset, recipe.train_split, data_dir=data_dir)
    val = load_dataset(recipe.dataset, "val", data_dir=data_dir)
    test = load_dataset(recipe.dataset, "test", data_dir=data_dir)
    c = train.shape[0]
    model = build(recipe, c, train.num_classes)
    loader = BatchLoader(train, recipe.batch_size, seed=recipe.seed, drop_last=True)
    steps = recipe.epochs * len(loader)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.max_lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.max_lr, total_steps=steps)
    g = torch.Generator().manual_seed(recipe.seed + 1)
    t0 = time.perf_counter()
    history = []
    for epoch in range(recipe.epochs):
        model.train()
        total, n = 0.0, 0
        for x, y in loader.epoch(epoch):
            x = augment(x, recipe, g)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + float(loss.detach()) * len(y), n + len(y)
        model.eval()
        val_acc = accuracy(model, val.images, val.labels)
        history.append({"epoch": epoch + 1, "train_loss": total / n, "val_acc": val_acc})
        log(f"epoch {epoch + 1}/{recipe.epochs}: train loss {total / n:.4f}, val acc "
            f"{val_acc:.4%} ({time.perf_counter() - t0:.0f} s)")
    train_time = time.perf_counter() - t0
    set_feature_scale(model, train.images)
    test_acc = accuracy(model, test.images, test.labels)
    log(f"test acc {test_acc:.4%}; trained in {train_time:.0f} s")
    blob = {
        "format": FORMAT_VERSION,
        "dataset": recipe.dataset,
        "arch": {"in_channels": c, "num_classes": train.num_classes, "widths": list(recipe.widths),
                 "feature_dim": recipe.feature_dim, "dropout": recipe.dropout},
        "recipe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(recipe).items()},
        "val_acc": val_acc,
        "test_acc": test_acc,
        "train_time_s": round(train_time, 1),
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    out = Path(out) if out else weights_path(name)
    with atomic_path(out) as tmp:
        torch.save(blob, tmp)
    digest = sha256_file(out)
    return {"dataset": recipe.dataset, "val_acc": val_acc, "test_acc": test_acc,
            "train_time_s": train_time, "path": str(out), "sha256": digest,
            "size_bytes": out.stat().st_size, "history": history}
