"""Inception Score, class histograms, label accuracy and the confusion matrix."""
import numpy as np
import pytest

from gankit.metrics.classes import (class_histogram, class_mean_std_images, confusion_matrix,
                                    inception_score, kl_from_uniform, label_accuracy,
                                    mode_coverage, softmax)


def test_inception_score_bounds():
    k, n = 10, 1000
    confident_balanced = np.eye(k)[np.arange(n) % k]
    mean, std = inception_score(confident_balanced, seed=None)  # keep order: splits balanced
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-12)
    one_class = np.eye(k)[np.zeros(n, int)]
    assert inception_score(one_class)[0] == pytest.approx(1.0)
    uniform = np.full((n, k), 1 / k)
    assert inception_score(uniform)[0] == pytest.approx(1.0)


def test_inception_score_matches_direct_formula():
    rng = np.random.default_rng(0)
    p = softmax(rng.normal(size=(500, 10)) * 3)
    py = p.mean(0)
    direct = np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=1)))
    assert inception_score(p, splits=1)[0] == pytest.approx(direct, rel=1e-12)


def test_inception_score_does_not_depend_on_sample_order():
    # Samples sorted by class must not make each split a single class.
    k = 10
    sorted_by_class = np.eye(k)[np.repeat(np.arange(k), 100)]
    assert inception_score(sorted_by_class)[0] == pytest.approx(k, rel=0.05)


def test_histogram_modes_and_kl():
    pred = np.array([0] * 50 + [1] * 30 + [2] * 16 + [3] * 4)
    h = class_histogram(pred, 4)
    np.testing.assert_allclose(h, [0.5, 0.3, 0.16, 0.04])
    assert mode_coverage(h) == 3                 # 0.04 < 0.5 / 4
    assert kl_from_uniform(np.full(4, 0.25)) == pytest.approx(0.0)
    assert kl_from_uniform(np.array([1.0, 0, 0, 0])) == pytest.approx(np.log(4))


def test_confusion_and_label_accuracy():
    labels = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 0, 2])
    cm = confusion_matrix(labels, pred, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    acc, per = label_accuracy(labels, pred, 3)
    assert acc == pytest.approx(4 / 6)
    np.testing.assert_allclose(per, [0.5, 1.0, 0.5])


def test_class_mean_std_images():
    images = np.stack([np.full((1, 2, 2), v, np.uint8) for v in (0, 10, 100, 200)])
    m, s = class_mean_std_images(images, np.array([0, 0, 1, 1]), 3)
    assert m[0].mean() == 5 and m[1].mean() == 150 and s[1].mean() == 50
    assert np.isnan(m[2]).all()
