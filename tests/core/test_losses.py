import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import config as config_lib
from wgan_jax.core import losses
from wgan_jax.core.models import Critic


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


def bce_numpy(label, logits):
    p = 1 / (1 + np.exp(-np.float64(logits)))
    return float(np.mean(-(label * np.log(p) + (1 - label) * np.log(1 - p))))


def test_dcgan_losses_are_sigmoid_cross_entropy_with_labels_1_real_0_fake():
    rng = np.random.default_rng(2)
    real, fake = (rng.normal(size=(9, 1)).astype(np.float32) for _ in range(2))
    dcgan = losses.OBJECTIVES["dcgan"]
    assert float(dcgan.critic(real, fake)) == pytest.approx(
        bce_numpy(1, real) + bce_numpy(0, fake), rel=1e-5)
    # the Keras program's two updates take the terms apart
    assert float(dcgan.real(real)) == pytest.approx(bce_numpy(1, real), rel=1e-5)
    assert float(dcgan.fake(fake)) == pytest.approx(bce_numpy(0, fake), rel=1e-5)
    # non-saturating generator loss: fakes labelled real
    assert float(dcgan.generator(fake)) == pytest.approx(bce_numpy(1, fake), rel=1e-5)
    # the Wasserstein objectives are the seed's: mean D(fake) - mean D(real), and -mean D(fake)
    for name in ("wgan", "wgan-gp"):
        objective = losses.OBJECTIVES[name]
        assert float(objective.critic(real, fake)) == pytest.approx(
            float(np.mean(fake) - np.mean(real)), rel=1e-6)
        assert float(objective.real(real)) == pytest.approx(-float(np.mean(real)), rel=1e-6)
        assert float(objective.generator(fake)) == pytest.approx(-float(np.mean(fake)), rel=1e-6)


def test_cross_entropy_stays_finite_for_saturated_logits():
    logits = np.array([[-200.0], [200.0]], np.float32)
    assert float(losses.binary_cross_entropy(1.0, logits)) == pytest.approx(100.0)
    assert float(losses.binary_cross_entropy(0.0, logits)) == pytest.approx(100.0)


def test_each_loss_keeps_its_critic_lipschitz_one_way():
    """Clipping is the WGAN's, the penalty WGAN-GP's, DCGAN has neither; every loss the config
    accepts has an objective."""
    flags = {name: (o.clipped, o.penalised) for name, o in config_lib.LOSSES.items()}
    assert flags == {"wgan": (True, False), "dcgan": (False, False), "wgan-gp": (False, True)}
    assert tuple(config_lib.LOSSES) == tuple(losses.OBJECTIVES)


@pytest.mark.slow
def test_gradient_penalty_matches_central_finite_differences():
    """The per-sample input-gradient norms from jax.grad against central differences of the
    critic, pixel by pixel, in float64 (h = 1e-6: truncation ~h^2, round-off ~1e-16 / h)."""
    with jax.enable_x64(True):
        critic = Critic(channels=(4, 4, 8, 8), dropout=0.0, norm="layer")
        rng = np.random.default_rng(3)
        real, fake = (jnp.asarray(rng.uniform(-1, 1, (3, 12, 12, 1))) for _ in range(2))
        params = critic.init(jax.random.PRNGKey(0), real, train=False)["params"]
        params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
        d = lambda x: critic.apply({"params": params}, x, train=False)  # noqa: E731
        mix = jnp.asarray([0.0, 0.3, 1.0])
        penalty, norms = losses.gradient_penalty(d, real, fake, mix)

        x_hat = np.asarray(mix[:, None, None, None] * real + (1 - mix[:, None, None, None]) * fake)
        h, pixels = 1e-6, x_hat[0].size
        basis = np.eye(pixels).reshape(pixels, *x_hat.shape[1:]) * h
        expected = []
        for x in x_hat:
            up = np.asarray(d(jnp.asarray(x[None] + basis)))[:, 0]
            down = np.asarray(d(jnp.asarray(x[None] - basis)))[:, 0]
            expected.append(np.linalg.norm((up - down) / (2 * h)))
        expected = np.array(expected)
        np.testing.assert_allclose(np.asarray(norms), expected, rtol=1e-6)
        assert float(penalty) == pytest.approx(np.mean((expected - 1) ** 2), rel=1e-6)
        assert np.all(expected > 0)


def test_gradient_penalty_is_finite_where_an_input_gradient_is_exactly_zero():
    """D(x) = w * sum(x) at w = 0: every input gradient is 0, where d sqrt(s)/ds is infinite.
    The penalty is (0 - 1)^2 = 1; its gradient in w is finite (0: the norm |w| sqrt(D) has a
    kink there), where a bare sqrt gives NaN."""
    real, fake = jnp.ones((4, 3, 3, 1)), -jnp.ones((4, 3, 3, 1))
    mix = jnp.linspace(0.0, 1.0, 4)

    def penalty(w):
        return losses.gradient_penalty(lambda x: w * jnp.sum(x, axis=(1, 2, 3)), real, fake, mix)[0]

    value, grad = jax.value_and_grad(penalty)(0.0)
    assert float(value) == 1.0 and np.isfinite(float(grad))
    # Away from zero the norm is exact: D(x) = w sum(x) has input gradient w everywhere, norm 3|w|.
    np.testing.assert_allclose(penalty(0.5), (1.5 - 1.0) ** 2, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(penalty)(0.5), 2 * (1.5 - 1.0) * 3, rtol=1e-6)
    bare = lambda w: jnp.mean((jnp.sqrt(jnp.sum(jax.grad(  # noqa: E731
        lambda x: jnp.sum(w * jnp.sum(x, axis=(1, 2, 3))))(real) ** 2, axis=(1, 2, 3))) - 1) ** 2)
    assert np.isnan(float(jax.grad(bare)(0.0)))  # what the guard prevents
