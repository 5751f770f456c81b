"""Inception-v3 features as report 000 used them, through torch-fidelity (optional extra).

The network is torch-fidelity's `FeatureExtractorInceptionV3`, the TensorFlow FID graph
ported to PyTorch (the same one as pytorch-fid). Images go in as uint8; grayscale images
have their channel repeated to 3 here, explicitly; the network resizes 28x28 to 299x299
bilinearly (TensorFlow-1 compatible) and returns the 2048-d pool features used by FID.

Weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (or torch-fidelity's
`weights-inception-2015-12-05-6726825d.pth`), given by `weights=`, GANKIT_INCEPTION_WEIGHTS or
`--inception-weights`, else found in torch hub's checkpoint folder, else downloaded by
torch-fidelity when the network allows it. Files are first loaded with `weights_only=True`,
so a file that is not a plain state dict is refused before torch-fidelity unpickles it.

torch-fidelity's package `__init__` imports torchvision (for other feature extractors), whose
wheel can be a multi-GB CUDA build; its Inception module does not need it. When torchvision
is missing, `fidelity_inception_class` imports torch-fidelity's Inception module on its own,
without running the package `__init__`; so `pip install --no-deps torch-fidelity` suffices.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import torch

from gankit.metrics.fid import MetricError

WEIGHTS_ENV = "GANKIT_INCEPTION_WEIGHTS"
WEIGHTS_NAMES = ("pt_inception-2015-12-05-6726825d.pth",      # pytorch-fid's name
                 "weights-inception-2015-12-05-6726825d.pth")  # torch-fidelity's name
FEATURE = "2048"
INSTALL_HINT = ("Inception features need torch-fidelity: pip install 'gankit[inception]' "
                "(or, to avoid torchvision's large wheel, pip install --no-deps torch-fidelity)")


class InceptionUnavailable(MetricError):
    """torch-fidelity or the Inception weights are not available; the message says how to fix it."""


_FIDELITY_MODULES = ("torch_fidelity.defaults", "torch_fidelity.deprecations",
                     "torch_fidelity.helpers", "torch_fidelity.feature_extractor_base",
                     "torch_fidelity.interpolate_compat_tensorflow",
                     "torch_fidelity.feature_extractor_inceptionv3")


def fidelity_inception_class() -> type:
    """torch-fidelity's FeatureExtractorInceptionV3 class, with or without torchvision."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        return FeatureExtractorInceptionV3
    except ModuleNotFoundError as e:
        if e.name == "torch_fidelity" or (e.name or "").startswith("torch_fidelity."):
            raise InceptionUnavailable(INSTALL_HINT) from None
        if not (e.name or "").startswith("torchvision"):
            raise
    # torchvision is missing: import the Inception module under a bare package object that
    # skips torch_fidelity/__init__.py, then take the stand-in out of sys.modules again.
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        raise InceptionUnavailable(INSTALL_HINT)
    saved = {k: sys.modules.get(k) for k in ("torch_fidelity",) + _FIDELITY_MODULES}
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    sys.modules["torch_fidelity"] = pkg
    try:
        module = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
        return module.FeatureExtractorInceptionV3
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def find_weights(weights: str | os.PathLike | None = None) -> Path | None:
    """The Inception weights file: `weights`, $GANKIT_INCEPTION_WEIGHTS, or torch hub's cache."""
    given = weights or os.environ.get(WEIGHTS_ENV)
    if given:
        p = Path(given).expanduser()
        if not p.is_file():
            raise InceptionUnavailable(
                f"Inception weights file {p} not found (from "
                f"{'--inception-weights' if weights else WEIGHTS_ENV}); give the path to "
                f"{WEIGHTS_NAMES[0]} (pytorch-fid's FID weights)")
        return p
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    for name in WEIGHTS_NAMES:
        if (hub / name).is_file():
            return hub / name
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class InceptionFeatures:
    """torch-fidelity's Inception-v3 on uint8 images (N, 1 or 3, H, W): 2048-d pool features."""

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "cpu") -> None:
        cls = fidelity_inception_class()
        path = find_weights(weights)
        if path is None:
            self.sha256 = "6726825d-download"
            try:
                net = cls("inception-v3-compat", [FEATURE])      # torch-fidelity downloads
            except Exception as e:  # noqa: BLE001 - URLError, HTTPError, SSL errors...
                raise InceptionUnavailable(
                    f"no Inception weights file and the download failed ({type(e).__name__}: "
                    f"{e}). Get {WEIGHTS_NAMES[0]} (pytorch-fid's FID Inception weights, from "
                    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                    f"{WEIGHTS_NAMES[0]}) onto this machine and set {WEIGHTS_ENV}=/path/to/it "
                    "or pass --inception-weights /path/to/it") from None
        else:
            self.sha256 = _sha256(path)
            try:  # a plain state dict loads with weights_only=True; anything else is refused
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001
                raise InceptionUnavailable(f"{path}: not a loadable state dict ({e}); give "
                                           f"the path to {WEIGHTS_NAMES[0]}") from None
            if not isinstance(state, dict) or "fc.weight" not in state:
                raise InceptionUnavailable(f"{path}: not an Inception-v3 state dict (no fc.weight)")
            try:
                net = cls("inception-v3-compat", [FEATURE],
                          feature_extractor_weights_path=str(path))
            except RuntimeError as e:   # load_state_dict: missing or unexpected keys
                raise InceptionUnavailable(f"{path}: does not fit torch-fidelity's Inception-v3 "
                                           f"({str(e)[:300]})") from None
        self.net = net.to(device).eval()
        self.device = torch.device(device)
        self.dim = 2048

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
        """Features (N, 2048) float32 for uint8 images (N, C, H, W), C in {1, 3}."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 images (N, 1 or 3, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        out = []
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(self.device)
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)               # grayscale -> RGB, explicitly
            (f,) = self.net(x)
            out.append(f.float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)
