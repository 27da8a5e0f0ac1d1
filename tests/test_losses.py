import numpy as np
import pytest

from wgan_jax import losses


@pytest.mark.parametrize("seed", [0, 1])
def test_wasserstein_loss_matches_numpy_formula(seed):
    rng = np.random.default_rng(seed)
    y_pred = rng.normal(size=(17, 1)).astype(np.float32)
    y_true = rng.choice([-1.0, 1.0], size=(17, 1)).astype(np.float32)
    expected = np.mean(y_true * y_pred)
    np.testing.assert_allclose(losses.wasserstein_loss(y_true, y_pred), expected, rtol=1e-6)


def test_label_signs_follow_the_seed():
    scores = np.array([[2.0], [4.0]], np.float32)
    # Real images are labelled -1: minimising the loss pushes their scores up.
    assert float(losses.wasserstein_loss(losses.REAL, scores)) == -3.0
    # Fake images are labelled +1: minimising pushes their scores down.
    assert float(losses.wasserstein_loss(losses.FAKE, scores)) == 3.0


def test_critic_loss_is_fake_minus_real_and_generator_loss_is_minus_fake():
    real = np.array([[1.0], [3.0]], np.float32)  # mean 2
    fake = np.array([[-1.0], [0.0]], np.float32)  # mean -0.5
    assert float(losses.critic_loss(real, fake)) == pytest.approx(-0.5 - 2.0)
    assert float(losses.generator_loss(fake)) == pytest.approx(0.5)
