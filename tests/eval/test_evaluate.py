"""Sanity of the evaluation on real images: checks that fail if a metric is broken, then the
evaluator, the report and the comparison on a real (tiny) run."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage

from wgan_jax import data, init_state
from wgan_jax.eval import classifier, evaluator as evaluate, metrics, report
from wgan_jax.train import loop
from wgan_jax.cli import evaluate as evaluate_cli

from conftest import TINY

N = 5000  # images per corrupted set: enough for stable 128-d covariances


@pytest.fixture(scope="module")
def scorer():
    params = classifier.load("mnist")
    reference = evaluate._classifier_reference("mnist", params, data.load("mnist", "heldout"))

    def score(images):
        probs, features = classifier.predict(params, images)
        return metrics.all_metrics(reference, features, probs, "mnist")

    return score


@pytest.fixture(scope="module")
def train_images(mnist_train):
    return mnist_train.images[:N]


@pytest.fixture(scope="module")
def reference(scorer, train_images):
    return scorer(train_images)


@pytest.fixture(scope="module")
def broken(scorer, train_images):
    noise = np.random.default_rng(0).integers(0, 256, train_images.shape, dtype=np.uint8)
    one_digit = np.repeat(train_images[:1], N, axis=0)
    return {"noise": scorer(noise), "one digit": scorer(one_digit)}


@pytest.mark.slow
def test_real_train_images_are_close_to_the_test_set(reference, broken):
    for bad in broken.values():
        assert reference["fd_mnist"] < 0.05 * bad["fd_mnist"]
        assert reference["kid_mnist"] < 0.05 * bad["kid_mnist"]
    assert reference["classifier_score"] > 9.0  # confident and balanced
    assert reference["coverage_kl"] < 0.01
    assert reference["precision"] > 0.7 and reference["recall"] > 0.7


def test_a_single_repeated_digit_is_caught_as_mode_collapse(broken):
    collapsed = broken["one digit"]
    assert collapsed["coverage_kl"] == pytest.approx(np.log(10))
    assert collapsed["classifier_score"] == pytest.approx(1.0, abs=1e-3)
    assert collapsed["recall"] < 0.01


def test_noise_is_caught_as_low_quality(broken):
    assert broken["noise"]["precision"] < 0.01


def blur(images, sigma):
    return scipy.ndimage.gaussian_filter(images.astype(np.float32), (0, sigma, sigma, 0)
                                         ).round().astype(np.uint8)


def shift(images, pixels):
    out = np.zeros_like(images)
    out[:, pixels:, pixels:] = images[:, :-pixels, :-pixels]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("corrupt, strengths", [(blur, (0.5, 0.7, 0.9)), (shift, (1, 2, 4))])
def test_corruptions_land_between_real_and_broken_in_order_of_strength(
        scorer, train_images, reference, broken, corrupt, strengths):
    scores = [scorer(corrupt(train_images, s)) for s in strengths]
    for key in ("fd_mnist", "kid_mnist"):
        values = [reference[key]] + [s[key] for s in scores]
        assert values == sorted(values), (key, values)
        assert values[-1] < min(b[key] for b in broken.values())


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # dead ReLU features; sqrtm copes
def test_frechet_distance_agrees_with_the_direct_scipy_formula(mnist_train):
    params = classifier.load("mnist")
    reference = evaluate._classifier_reference("mnist", params, data.load("mnist", "heldout"))
    mu_r, cov_r = reference.mean, reference.cov
    _, fake = classifier.predict(params, mnist_train.images[:N])
    ours = metrics.frechet_distance(mu_r, cov_r, *metrics.feature_stats(fake))
    fake = fake.astype(np.float64)
    mu_f, cov_f = fake.mean(0), np.cov(fake, rowvar=False)
    direct = (np.sum((mu_r - mu_f) ** 2)
              + np.trace(cov_r + cov_f - 2 * scipy.linalg.sqrtm(cov_r @ cov_f).real))
    # sqrtm and a non-symmetric eigvals route agree to 1e-12 here; float64 round-off in traces
    # of ~740 bounds the agreement near 1e-10 absolute
    assert ours == pytest.approx(direct, rel=1e-8)


def test_metrics_of_real_images_do_not_depend_on_their_order(scorer, train_images, reference):
    shuffled = scorer(train_images[np.random.default_rng(1).permutation(N)])
    for key in reference:
        # features may differ in the last bit when an image sits elsewhere in a batch
        np.testing.assert_allclose(shuffled[key], reference[key], rtol=1e-4, atol=1e-7, err_msg=key)


def test_evaluator_is_deterministic_and_independent_of_training_randomness():
    state = init_state(TINY, jax.random.PRNGKey(0))
    evaluator = evaluate.Evaluator(TINY, samples=300)
    first, second = (evaluator.finish(evaluator.dispatch(state, TINY)) for _ in range(2))
    assert first == second and "fid" not in first  # TINY turns FID off
    floor = evaluate.Evaluator(TINY, 300).floor(data.load_bundled_mnist())
    assert first["fd_mnist"] > 10 * floor["fd_mnist"]


@pytest.mark.slow
def test_report_and_compare_write_every_file(tmp_path):
    config = TINY.replace(iterations=4, eval_every=2, eval_samples=100)
    runs = [tmp_path / "a", tmp_path / "b"]
    loop.run(config, runs[0])
    result = report.report(runs[0], samples=150)
    assert result["iteration"] == 4 and result["samples"] == 150
    assert [r["iteration"] for r in result["history"]] == [2, 4]
    assert json.loads((runs[0] / "report.json").read_text())["metrics"] == result["metrics"]
    text = (runs[0] / "report.md").read_text()
    assert "fd_mnist" in text and "real train images" in text and "the test split" in text
    for figure in ("samples", "per_class", "curves", "coverage"):
        assert (runs[0] / "report" / f"{figure}.png").stat().st_size > 1000

    shutil.copytree(runs[0], runs[1])
    (runs[1] / "report.json").unlink()  # made again, for b
    summary = report.compare(runs, tmp_path / "cmp", samples=150)
    assert [r["label"] for r in summary["runs"]] == ["a", "b"]
    assert summary["runs"][0]["metrics"] == summary["runs"][1]["metrics"]  # same checkpoint
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| a | 4 |" in table and "| b | 4 |" in table
    for figure in ("compare_curves", "compare_samples"):
        assert (tmp_path / "cmp" / f"{figure}.png").stat().st_size > 1000


def test_evaluate_command_on_a_folder_without_a_run_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "wgan_jax.cli.evaluate", str(tmp_path)],
                            capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "no checkpoints" in result.stderr
    assert "Traceback" not in result.stderr


def test_estimate_tracking_is_the_rank_correlation_of_filtered_estimate_and_fd():
    from wgan_jax.eval.report import estimate_tracking

    logs = [{"iteration": i, "wasserstein_estimate": w} for i, w in
            zip(range(10, 110, 10), [9.0, 8.0, 7.5, 7.0, 6.0, 5.5, 5.0, 4.0, 3.0, 2.5])]
    falling = [{"iteration": i, "fd_mnist": fd} for i, fd in ((30, 300.0), (60, 200.0), (100, 90.0))]
    assert estimate_tracking(logs + falling) == (pytest.approx(1.0), 3)
    rising = [{"iteration": r["iteration"], "fd_mnist": 1000.0 - r["fd_mnist"]} for r in falling]
    assert estimate_tracking(logs + rising) == (pytest.approx(-1.0), 3)
    # two of three in order: ranks (0, 1, 2) against (1, 0, 2) correlate at 0.5
    mixed = [{"iteration": 30, "fd_mnist": 200.0}, {"iteration": 60, "fd_mnist": 300.0},
             {"iteration": 100, "fd_mnist": 90.0}]
    assert estimate_tracking(logs + mixed)[0] == pytest.approx(0.5)
    assert estimate_tracking(logs + falling[:2]) is None


def test_more_samples_than_memory_holds_are_refused_naming_the_largest_that_fits(monkeypatch):
    from wgan_jax.errors import UserError

    monkeypatch.setattr(evaluate, "memory_bytes", lambda: 10**9)
    per_sample = 4 * 28 * 28 + metrics.bytes_per_sample(128)  # images, then the metrics' share
    limit = 10**9 // per_sample
    assert evaluate.max_samples((28, 28, 1), use_fid=False) == limit
    assert evaluate.max_samples((28, 28, 1), use_fid=True) < limit
    assert evaluate.Evaluator(TINY, limit, use_fid=False).samples == limit
    with pytest.raises(UserError) as info:
        evaluate.Evaluator(TINY.replace(eval_samples=limit + 1), use_fid=False)
    assert str(info.value) == (f"{limit + 1} evaluation samples do not fit in this machine's "
                               f"memory; at most {limit} do (--eval-samples, --samples)")


def test_evaluate_says_what_it_will_do_and_its_cost_before_any_long_work(tiny_run, capsys,
                                                                      monkeypatch):
    """The command's first line (plan, sample count, reference, time on this CPU, and what FID
    would add where its weights are installed) is out before the first image is generated; then
    each phase reports (one line each off a terminal)."""
    from wgan_jax.eval import batches, fid

    before_work, generate = [], batches.generate

    def first_generation(*args, **kwargs):
        if not before_work:
            before_work.append(capsys.readouterr().err)
        return generate(*args, **kwargs)

    monkeypatch.setattr(batches, "generate", first_generation)
    assert evaluate_cli.main([str(tiny_run), "--samples", "100"]) == 0
    first = before_work[0].splitlines()[0]
    assert first.startswith(f"Evaluating {tiny_run}: 100 samples against mnist")
    assert "on this CPU." in first
    if fid.available():  # FID is off on a CPU unless asked for, and the line says its cost
        assert "FID is off on a CPU: --fid on adds about" in first
    else:
        assert "FID" not in first
    after = capsys.readouterr().err
    assert "generating samples: 100 in" in after and "classifier features of samples: 100 in" in after
