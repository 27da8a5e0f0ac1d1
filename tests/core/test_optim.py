import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import Config, clip_params
from wgan_jax.config import Optim
from wgan_jax.core import optim


def keras_rmsprop(param, grads, lr, rho, eps):
    """Keras' RMSprop, written out: v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps)."""
    v = np.zeros_like(param, np.float64)
    w = param.astype(np.float64)
    for g in grads:
        v = rho * v + (1 - rho) * g.astype(np.float64) ** 2
        w = w - lr * g / (np.sqrt(v) + eps)
    return w


@pytest.mark.parametrize("steps", [1, 3])
def test_rmsprop_matches_hand_written_keras_formula(steps):
    config = Config().replace(lr=5e-5, rmsprop_decay=0.9, rmsprop_eps=1e-7)
    rng = np.random.default_rng(0)
    param = rng.normal(size=(6, 5)).astype(np.float32) * 0.01
    # Gradients spanning the clipped critic's range, down to where eps matters (~1e-7).
    grads = [(rng.normal(size=(6, 5)) * 10.0 ** rng.uniform(-9, -2, size=(6, 5))).astype(np.float32)
             for _ in range(steps)]
    tx = optim.rmsprop(config.optim, config.runs.lr)
    p, opt_state = jnp.asarray(param), tx.init(jnp.asarray(param))
    for g in grads:
        updates, opt_state = tx.update(jnp.asarray(g), opt_state, p)
        p = p + updates
    expected = keras_rmsprop(param, grads, 5e-5, 0.9, 1e-7)
    # f32 arithmetic on values ~1e-2 with steps ~1e-4: a few ulps of the parameter.
    np.testing.assert_allclose(np.asarray(p), expected, rtol=0, atol=2e-8)


def test_eps_inside_the_sqrt_is_a_different_optimizer():
    """optax's default puts eps inside the sqrt: a 1e-3.5 floor that swamps gradients ~1e-6."""
    g = jnp.full((3,), 1e-6, jnp.float32)
    outside = optim.rmsprop(Optim(rmsprop_eps_in_sqrt=False), 5e-5)
    inside = optim.rmsprop(Optim(rmsprop_eps_in_sqrt=True), 5e-5)
    step_out, _ = outside.update(g, outside.init(g))
    step_in, _ = inside.update(g, inside.init(g))
    # Outside: lr * g / (sqrt(0.1) g + eps) ~ lr * 3.16 (a full step); inside: ~1000x smaller.
    np.testing.assert_allclose(step_out, -5e-5 / (np.sqrt(0.1) + 0.1), rtol=1e-4)
    assert float(jnp.abs(step_in[0])) < float(jnp.abs(step_out[0])) / 100


def test_clip_params_clips_every_leaf_and_keeps_the_structure():
    tree = {"a": jnp.array([-1.0, -0.005, 0.0, 0.02]), "b": {"c": jnp.array([[0.5, -0.011]])}}
    clipped = clip_params(tree, 0.01)
    assert jax.tree_util.tree_structure(clipped) == jax.tree_util.tree_structure(tree)
    np.testing.assert_array_equal(clipped["a"], np.float32([-0.01, -0.005, 0.0, 0.01]))
    np.testing.assert_array_equal(clipped["b"]["c"], np.float32([[0.01, -0.01]]))
