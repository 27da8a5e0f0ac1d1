"""The metric formulas against direct, independent re-computations, on synthetic features."""

import numpy as np
import pytest
import scipy.linalg

from wgan_jax.eval import metrics

rng = np.random.default_rng(0)


def random_cov(dim, rng):
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def frechet_scipy(mu1, cov1, mu2, cov2):
    """The textbook formula with a general matrix square root (scipy.linalg.sqrtm)."""
    root = scipy.linalg.sqrtm(cov1 @ cov2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * root))


def test_frechet_distance_matches_scipy_sqrtm():
    dim = 16
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    cov1, cov2 = random_cov(dim, rng), random_cov(dim, rng)
    ours = metrics.frechet_distance(mu1, cov1, mu2, cov2)
    # sqrtm's own error on well-conditioned 16x16 matrices is ~1e-12 relative
    assert ours == pytest.approx(frechet_scipy(mu1, cov1, mu2, cov2), rel=1e-9)
    assert metrics.frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_of_two_1d_gaussians_is_the_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    value = metrics.frechet_distance(np.array([1.0]), np.array([[4.0]]),
                                     np.array([-2.0]), np.array([[9.0]]))
    assert value == pytest.approx(9 + 1, rel=1e-12)


def kid_direct(x, y):
    """Unbiased MMD^2 written out with full kernel matrices."""
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def test_kernel_distance_matches_full_matrices_across_blocks(monkeypatch):
    monkeypatch.setattr(metrics, "_BLOCK", 7)  # several blocks, one ragged
    x, y = rng.normal(size=(40, 5)), rng.normal(0.5, 1.0, size=(30, 5))
    assert metrics.kernel_distance(x, y) == pytest.approx(kid_direct(x, y), rel=1e-12)


def test_kernel_distance_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    x, y = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    same = metrics.kernel_distance(x, y)
    shifted = [metrics.kernel_distance(x, y + s) for s in (0.25, 0.5, 1.0)]
    assert abs(same) < 0.2 * shifted[0]
    assert shifted[0] < shifted[1] < shifted[2]


def test_classifier_score_bounds():
    confident_balanced = np.eye(10)[np.arange(1000) % 10]
    assert metrics.classifier_score(confident_balanced) == pytest.approx(10, rel=1e-6)
    assert metrics.classifier_score(np.tile(np.eye(10)[3], (100, 1))) == pytest.approx(1, rel=1e-6)
    assert metrics.classifier_score(np.full((100, 10), 0.1)) == pytest.approx(1, rel=1e-9)


def test_class_coverage_shares_and_kl():
    shares, kl = metrics.class_coverage(np.eye(10)[np.arange(1000) % 10])
    np.testing.assert_allclose(shares, 0.1)
    assert kl == pytest.approx(0, abs=1e-12)
    shares, kl = metrics.class_coverage(np.tile(np.eye(10)[7], (50, 1)))
    assert shares[7] == 1 and kl == pytest.approx(np.log(10))
    # half in class 0, half in class 1: KL = log(10 / 2)
    assert metrics.class_coverage(np.eye(10)[np.arange(100) % 2])[1] == pytest.approx(np.log(5))


def precision_recall_direct(real, fake, k):
    def radii(a):
        d = ((a[:, None] - a[None]) ** 2).sum(-1)
        return np.sort(d, axis=1)[:, k]

    def share(points, support):
        r = radii(support)
        d = ((points[:, None] - support[None]) ** 2).sum(-1)
        return float(np.mean(np.any(d <= r[None], axis=1)))

    return share(fake, real), share(real, fake)


def test_precision_recall_match_brute_force(monkeypatch):
    monkeypatch.setattr(metrics, "_BLOCK", 13)
    real, fake = rng.normal(size=(60, 3)), rng.normal(0.7, 0.6, size=(50, 3))
    assert metrics.precision_recall(real, fake, k=3) == pytest.approx(
        precision_recall_direct(real, fake, 3), abs=1e-12)
    # samples far from the data: neither quality nor diversity
    assert metrics.precision_recall(real, fake + 100.0) == (0.0, 0.0)


def test_every_metric_ignores_sample_order():
    real, fake = rng.normal(size=(500, 6)), rng.normal(0.3, 1.2, size=(400, 6))
    probs = rng.dirichlet(np.ones(10), size=400)
    a = metrics.all_metrics(metrics.Reference.of(real), fake, probs, "x")
    order = rng.permutation(400)
    b = metrics.all_metrics(metrics.Reference.of(real[rng.permutation(500)]), fake[order],
                            probs[order], "x")
    assert a.keys() == b.keys() == {"fd_x", "kid_x", "classifier_score", "coverage_kl",
                                    "class_shares", "precision", "recall"}
    for key in a:
        # only the floating-point summation order changes
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_conditional_accuracy_counts_samples_of_the_class_asked_for():
    requested = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 0, 0])
    probs = np.eye(3)[predicted]
    result = metrics.conditional_accuracy(probs, requested)
    assert result["conditional_accuracy"] == pytest.approx(3 / 6)
    assert result["class_accuracy"] == [0.5, 1.0, 0.0]
