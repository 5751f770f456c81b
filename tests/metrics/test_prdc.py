"""Precision/recall (k=3) and density/coverage (k=5) on hand-built sets and a literal reference."""
import numpy as np
import pytest

from gankit.metrics.prdc import knn_sq_radii, prdc


def literal_prdc(real, fake, pr_k=3, dc_k=5):
    """The papers' definitions, written with explicit loops."""
    def radius(points, i, k):
        d = sorted(np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i)
        return d[k - 1]
    rr3 = [radius(real, i, pr_k) for i in range(len(real))]
    rr5 = [radius(real, i, dc_k) for i in range(len(real))]
    fr3 = [radius(fake, j, pr_k) for j in range(len(fake))]
    dist = lambda a, b: np.linalg.norm(a - b)  # noqa: E731
    precision = np.mean([any(dist(f, real[i]) <= rr3[i] for i in range(len(real))) for f in fake])
    recall = np.mean([any(dist(r, fake[j]) <= fr3[j] for j in range(len(fake))) for r in real])
    hits = sum(dist(f, real[i]) <= rr5[i] for f in fake for i in range(len(real)))
    density = hits / (dc_k * len(fake))
    coverage = np.mean([any(dist(real[i], f) <= rr5[i] for f in fake) for i in range(len(real))])
    return precision, recall, density, coverage


def test_hand_built_line():
    # Real: 0..9 on a line.
    #   k=3 radii: 3 for 0 and 9, 2 for 1..8.   k=5 radii: 5 for 0 and 9, 4 for 1 and 8, 3 for 2..7.
    real = np.arange(10.0)[:, None]
    fake = np.array([[4.5], [20.0], [-3.0], [-2.5], [9.0], [30.0]])
    r = prdc(real, fake)
    # Precision: 4.5 (ball of 4), -3 (ball of 0, on its boundary: balls are closed),
    # -2.5 (ball of 0), 9 (itself a real point); not 20 or 30 -> 4/6.
    assert r.precision == pytest.approx(4 / 6)
    # Fake k=3 radius of 4.5 is 7.5 (neighbours 9, -2.5, -3): its ball [-3, 12] holds all reals.
    assert r.recall == 1.0
    # Density: real k=5 balls holding each fake: 4.5 -> all 10; -3 -> 0, 1; -2.5 -> 0, 1;
    # 9 -> 6, 7, 8, 9; 20, 30 -> none. (10 + 2 + 2 + 4) / (5 * 6) = 0.6.
    assert r.density == pytest.approx(0.6)
    # Coverage: every real k=5 ball holds a fake (0 and 1 hold -3; 2..7 hold 4.5; 8, 9 hold 9).
    assert r.coverage == 1.0
    assert (r.precision, r.recall, r.density, r.coverage) == pytest.approx(literal_prdc(real, fake))


def test_identical_sets():
    x = np.random.default_rng(0).normal(size=(200, 4))
    r = prdc(x, x.copy())
    assert r.precision == 1.0 and r.recall == 1.0 and r.coverage == 1.0
    # Each point lies in its own ball and in those of the points that count it among their
    # 5 nearest: density = 1 + (average number of others whose 5-ball holds it) / 5 >= 1.
    assert r.density >= 1.0


def test_disjoint_sets_score_zero():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(100, 3)), rng.normal(size=(120, 3)) + 100.0
    r = prdc(real, fake)
    assert (r.precision, r.recall, r.density, r.coverage) == (0.0, 0.0, 0.0, 0.0)


def test_mode_dropping_lowers_recall_not_precision():
    rng = np.random.default_rng(2)
    centers = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float)
    real = np.concatenate([c + rng.normal(size=(100, 2)) for c in centers])
    fake = np.concatenate([c + rng.normal(size=(200, 2)) for c in centers[:2]])  # two modes only
    r = prdc(real, fake)
    assert r.precision > 0.9 and 0.4 < r.recall < 0.6 and 0.4 < r.coverage < 0.6


@pytest.mark.parametrize("seed", [3, 4])
def test_matches_literal_definitions_on_random_data(seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(60, 3)), rng.normal(0.4, 1.2, size=(50, 3))
    r = prdc(real, fake)
    expected = literal_prdc(real, fake)
    np.testing.assert_allclose((r.precision, r.recall, r.density, r.coverage), expected, rtol=1e-12)


def test_knn_radii_exclude_self_and_handle_blocks(monkeypatch):
    import gankit.metrics.prdc as prdc_mod
    x = np.random.default_rng(5).normal(size=(50, 2))
    full = knn_sq_radii(x, (3, 5))
    monkeypatch.setattr(prdc_mod, "BLOCK", 7)
    small = knn_sq_radii(x, (3, 5))
    for k in (3, 5):
        np.testing.assert_allclose(full[k], small[k], rtol=1e-12)
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        np.testing.assert_allclose(np.sqrt(full[k]), np.sort(d, axis=1)[:, k], rtol=1e-9)
