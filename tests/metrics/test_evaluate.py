"""The evaluation protocol end to end, with stand-in generators."""
import numpy as np
import pytest
import torch

import gankit.metrics.evaluate as E
from gankit.metrics import keys as K

from .standins import BlobG, MemorizingG

N = 1000


@pytest.fixture(autouse=True)
def fewer_kid_subsets(monkeypatch):
    monkeypatch.setattr(E, "KID_SUBSETS", 10)   # speed; the estimator is tested in test_kid.py


@pytest.mark.slow
def test_a_perfect_conditional_generator_scores_like_real_data(memorizer):
    # A generator that returns training digits scores close to held-out real digits.
    m = E.evaluate_generator(memorizer, "mnist", n=N)
    floor = E.evaluate_real("mnist", n=N).summary()
    for key in K.SUMMARY + (K.LABEL_ACC, K.N):
        assert key in m, key
    assert all("/" not in k for k in m)            # the summary only: no per-class keys
    assert m[K.N] == N
    assert m[K.LABEL_ACC] > 0.97
    assert m[K.FID] < 2 * floor[K.FID] and abs(m[K.KID]) < 0.02
    for key in (K.PRECISION, K.RECALL, K.COVERAGE, K.DENSITY):
        assert m[key] == pytest.approx(floor[key], abs=0.1), key
    assert m[K.IS] > 9 and m[K.MODES] == 10 and m[K.CLASS_KL] < 0.01


@pytest.mark.slow
def test_a_bad_generator_scores_badly(memorizer):
    good = E.evaluate_generator(memorizer, "mnist", n=N)
    bad = E.evaluate_generator(BlobG(), "mnist", n=N)
    assert bad[K.FID] > 20 * good[K.FID] and bad[K.KID] > 0.5
    # Precision is the least robust of the four (real outliers have wide balls); density
    # is Naeem et al.'s fix for that.
    assert bad[K.PRECISION] < 0.5 and bad[K.DENSITY] < 0.3
    assert bad[K.RECALL] < 0.05 and bad[K.COVERAGE] < 0.05
    assert bad[K.IS] < 2.5 and bad[K.MODES] <= 4
    assert K.LABEL_ACC not in bad


@pytest.mark.slow
def test_mode_collapse_shows_in_the_class_histogram(mnist_train):
    G = MemorizingG(mnist_train.images, mnist_train.labels, conditional=False, only_classes=(1, 7))
    m = E.evaluate_generator(G, "mnist", n=N)
    assert m[K.MODES] == 2
    assert m[K.CLASS_KL] == pytest.approx(np.log(5), abs=0.1)   # two classes of ten
    assert m[K.RECALL] < 0.4 and m[K.PRECISION] > 0.6


@pytest.mark.slow
def test_deterministic_for_a_seed(memorizer):
    a = E.evaluate_generator(BlobG(), "mnist", n=N, seed=3)
    b = E.evaluate_generator(BlobG(), "mnist", n=N, seed=3)
    assert a == b
    c = E.evaluate_generator(BlobG(), "mnist", n=N, seed=4)
    assert c[K.FID] != a[K.FID]


def test_balanced_labels_and_generator_mode_restored(memorizer):
    memorizer.train()
    images, labels = E.sample_for_eval(memorizer, 1005, seed=0)
    assert len(images) == 1000 and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [100] * 10
    E.evaluate_generator(memorizer, "mnist", n=200)
    assert memorizer.training


@pytest.mark.slow
def test_full_evaluation_per_class_and_intra_fid(memorizer):
    ev = E.evaluate_generator_full(memorizer, "mnist", n=2000, class_images=True)
    m = ev.metrics
    for k in range(10):   # 200 samples per class > 128 feature dims: intra-class FID exists
        assert K.per_class(K.LABEL_ACC, k) in m and K.per_class(K.INTRA_FID, k) in m
    assert m[K.INTRA_FID] == pytest.approx(np.mean([m[K.per_class(K.INTRA_FID, k)]
                                                    for k in range(10)]))
    assert ev.confusion.shape == (10, 10) and ev.confusion.sum() == 2000
    assert np.trace(ev.confusion) / 2000 == pytest.approx(m[K.LABEL_ACC])
    assert ev.class_images["fake_mean"].shape == (10, 1, 28, 28)
    # Real digits and memorised training digits have nearly the same class means.
    assert np.abs(ev.class_images["fake_mean"] - ev.class_images["real_mean"]).mean() < 10


def test_intra_fid_omitted_when_classes_are_too_small(memorizer):
    m = E.evaluate_generator_full(memorizer, "mnist", n=N).metrics
    assert K.INTRA_FID not in m and K.per_class(K.INTRA_FID, 0) not in m


def test_real_floor(private_metrics_cache):
    ev = E.evaluate_real("mnist", n=N)
    m = ev.metrics
    assert m[K.LABEL_ACC] > 0.98          # the classifier's accuracy on test images
    assert 0 < m[K.FID] < 1 and 0.5 < m[K.PRECISION] <= 1 and m[K.MODES] == 10
    assert list(private_metrics_cache.glob("*mnist_val_classifier-*_n1000.npz"))


def test_real_features_cached_and_reused(private_metrics_cache):
    from gankit.metrics.features import get_feature_space, real_features
    space = get_feature_space("classifier", "mnist")
    a = real_features(space, "mnist", "val", 500)
    (path,) = private_metrics_cache.glob("*.npz")
    mtime = path.stat().st_mtime_ns
    b = real_features(space, "mnist", "val", 500)
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.stats.sigma, b.stats.sigma)
    np.testing.assert_array_equal(a.labels, b.labels)
    for k in a.sq_radii:
        np.testing.assert_array_equal(a.sq_radii[k], b.sq_radii[k])


def test_real_subset_is_fixed_and_not_the_first_images():
    from gankit.metrics.features import real_subset
    idx = real_subset(10_000, 1000)
    assert len(np.unique(idx)) == 1000 and idx.max() > 5000
    np.testing.assert_array_equal(idx, real_subset(10_000, 1000))
    np.testing.assert_array_equal(real_subset(10_000, 20_000), np.arange(10_000))


def test_unknown_feature_space():
    from gankit.metrics.fid import MetricError
    with pytest.raises(MetricError, match="classifier, inception"):
        E.evaluate_real("mnist", n=200, features="vgg")
