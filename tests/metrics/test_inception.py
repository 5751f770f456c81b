"""Inception features: torch-fidelity's real FeatureExtractorInceptionV3, on random weights.

The FID weights (95 MB) are not downloadable here, so the network gets random weights saved
as a state dict file; everything else (gankit's loading path, torch-fidelity's class and
forward pass with its TF-compatible resize to 299, the grayscale -> RGB step) is the real code.
"""
import importlib.util
import sys
import urllib.error

import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch_fidelity") is None,
                                reason="torch-fidelity is not installed (extra `inception`)")

from gankit.metrics import inception  # noqa: E402


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A state dict for torch-fidelity's Inception-v3 with random (variance-preserving) weights."""
    cls = inception.fidelity_inception_class()
    mp = pytest.MonkeyPatch()
    # Build the module without any weights file: skip only the final load_state_dict.
    mp.setitem(cls.__init__.__globals__, "load_state_dict_from_url", lambda *a, **k: {})
    mp.setattr(cls, "load_state_dict", lambda self, *a, **k: None)
    try:
        net = cls("inception-v3-compat", ["2048"])
    finally:
        mp.undo()
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.data = torch.randn(m.weight.shape, generator=g) * (2 / fan_in) ** 0.5
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=g)
            m.running_var.uniform_(0.8, 1.2, generator=g)
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def digits(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 28, 28, generator=g) * 255).to(torch.uint8)


def test_the_class_is_torch_fidelitys():
    cls = inception.fidelity_inception_class()
    assert cls.__name__ == "FeatureExtractorInceptionV3"
    assert cls.__module__ == "torch_fidelity.feature_extractor_inceptionv3"
    # Without torchvision the module is imported past the package __init__; no stand-in
    # package object may be left behind in sys.modules.
    if "torch_fidelity" in sys.modules:
        assert hasattr(sys.modules["torch_fidelity"], "calculate_metrics")


def test_features_on_random_weights(random_weights):
    net = inception.InceptionFeatures(weights=random_weights)
    assert type(net.net).__name__ == "FeatureExtractorInceptionV3"
    x = digits(2)
    f = net(x)
    assert f.shape == (2, 2048) and f.dtype == torch.float32 and torch.isfinite(f).all()
    assert f.std() > 0 and (f[0] - f[1]).abs().max() > 0
    # Grayscale goes in as its channel repeated to 3, explicitly: same features.
    torch.testing.assert_close(net(x.repeat(1, 3, 1, 1)), f)
    # Batch-size independence.
    torch.testing.assert_close(torch.cat([net(x[i:i + 1]) for i in range(2)]), f,
                               rtol=1e-4, atol=1e-5)


def test_feature_space_from_env(random_weights, monkeypatch):
    from gankit.metrics.features import get_feature_space
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(random_weights))
    space = get_feature_space("inception", "mnist")
    assert space.dim == 2048 and space.id.startswith("inception-")
    ex = space.extract(digits(2))
    assert ex.features.shape == (2, 2048) and ex.logits is None


def test_missing_torch_fidelity_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("torch_fidelity")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    with pytest.raises(inception.InceptionUnavailable, match=r"pip install 'gankit\[inception\]'"):
        inception.fidelity_inception_class()


def test_no_weights_and_no_network_says_how_to_supply_them(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cls = inception.fidelity_inception_class()

    def offline(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setitem(cls.__init__.__globals__, "load_state_dict_from_url", offline)
    monkeypatch.setattr(inception, "fidelity_inception_class", lambda: cls)
    with pytest.raises(inception.InceptionUnavailable,
                       match="GANKIT_INCEPTION_WEIGHTS.*--inception-weights"):
        inception.InceptionFeatures()


def test_bad_weights_files_refused(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(inception.InceptionUnavailable, match="not found"):
        inception.InceptionFeatures(weights=missing)
    wrong = tmp_path / "wrong.pth"
    torch.save({"a": torch.zeros(1)}, wrong)
    with pytest.raises(inception.InceptionUnavailable, match="not an Inception-v3 state dict"):
        inception.InceptionFeatures(weights=wrong)
    partial = tmp_path / "partial.pth"
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, partial)
    with pytest.raises(inception.InceptionUnavailable, match="does not fit"):
        inception.InceptionFeatures(weights=partial)
