"""Fixtures for the metrics tests: a private real-feature cache, MNIST, stand-in generators."""
import pytest

from .standins import MemorizingG


@pytest.fixture(autouse=True)
def private_metrics_cache(mnist_cache, tmp_path, monkeypatch):
    """MNIST from the shared test cache; real-feature caches in a temporary folder."""
    import gankit.metrics.features as features
    monkeypatch.setattr(features, "metrics_cache_dir", lambda: tmp_path / "metrics-cache")
    return tmp_path / "metrics-cache"


@pytest.fixture(scope="session")
def mnist_train(mnist_cache):
    from gankit.data import load_dataset
    return load_dataset("mnist", "train", limit=20_000)


@pytest.fixture
def memorizer(mnist_train):
    return MemorizingG(mnist_train.images, mnist_train.labels)
