"""DiffAugment (wgan_jax.core.augment): each transform against NumPy with the same per-image
parameters, its gradient against the transposed NumPy map, its wiring into both updates, and an
exact resume of a run that augments."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import UserError, critic_step, from_preset, generator_step, init_state
from wgan_jax.train import loop
from wgan_jax.core import augment

from conftest import TINY, leaves, target

ALL = "color,translation,cutout"


@pytest.fixture(scope="module")
def batch():
    """16 random images (16, 8, 12, 3) in [-1, 1], and parameters drawn for them."""
    x = np.random.default_rng(0).uniform(-1, 1, (16, 8, 12, 3)).astype(np.float32)
    return x, jax.tree_util.tree_map(np.asarray, augment.draw(jax.random.PRNGKey(3), x.shape))


def numpy_color(x, p):
    x = x + p["brightness"][:, None, None, None]
    mean = x.mean(axis=3, keepdims=True)
    x = (x - mean) * p["saturation"][:, None, None, None] + mean
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) * p["contrast"][:, None, None, None] + mean


def numpy_translation(x, p):
    out = np.zeros_like(x)
    for i, (dy, dx) in enumerate(p["shift"]):
        for y in range(x.shape[1]):
            for z in range(x.shape[2]):
                if 0 <= y - dy < x.shape[1] and 0 <= z - dx < x.shape[2]:
                    out[i, y, z] = x[i, y - dy, z - dx]
    return out


def numpy_cutout_mask(shape, p):
    """1 where a pixel survives: outside the (H/2) x (W/2) square centred at the drawn point."""
    mask = np.ones(shape[:3])
    ch, cw = int(shape[1] * 0.5 + 0.5), int(shape[2] * 0.5 + 0.5)
    for i, (cy, cx) in enumerate(p["cutout"]):
        top, left = cy - ch // 2, cx - cw // 2
        mask[i, max(top, 0):max(top + ch, 0), max(left, 0):max(left + cw, 0)] = 0
    return mask[..., None]


def test_each_transform_is_the_numpy_formula_with_the_same_parameters(batch):
    x, p = batch
    np.testing.assert_allclose(augment.apply(x, p, "color"), numpy_color(x, p), atol=1e-5)
    np.testing.assert_array_equal(augment.apply(x, p, "translation"), numpy_translation(x, p))
    np.testing.assert_array_equal(augment.apply(x, p, "cutout"), x * numpy_cutout_mask(x.shape, p))
    want = numpy_translation(numpy_color(x, p), p) * numpy_cutout_mask(x.shape, p)
    np.testing.assert_allclose(augment.apply(x, p, ALL), want, atol=1e-5)
    np.testing.assert_array_equal(augment.augment(x, jax.random.PRNGKey(0), "off"), x)


def test_parameters_are_drawn_per_image_within_their_ranges(batch):
    x, p = batch
    assert len(np.unique(p["brightness"])) == 16 and len({tuple(s) for s in p["shift"]}) > 4
    assert np.all(np.abs(p["brightness"]) <= 0.5) and np.all((0 <= p["saturation"]) & (p["saturation"] <= 2))
    assert np.all(np.abs(p["shift"][:, 0]) <= 1) and np.all(np.abs(p["shift"][:, 1]) <= 2)  # 1/8 of 8, 12
    cut = x * numpy_cutout_mask(x.shape, p)
    assert np.all((cut == 0).sum(axis=(1, 2, 3)) > 0)  # every image loses its square, or part of it


def test_gradients_flow_through_as_the_transposed_map(batch):
    """The cotangent w of sum(w * augment(x)) comes back to x: shifted back (translation),
    masked (cutout); the transforms are differentiable, so the generator learns through them."""
    x, p = batch
    w = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    for policy, want in (("translation", numpy_translation(w, {"shift": -p["shift"]})),
                         ("cutout", w * numpy_cutout_mask(x.shape, p))):
        grad = jax.grad(lambda images: jnp.sum(w * augment.apply(images, p, policy)))(x)
        np.testing.assert_allclose(grad, want, atol=1e-6, err_msg=policy)


def test_both_updates_see_augmented_batches_and_stay_pure_functions_of_the_state(images):
    """With a policy, the critic's update (real and fake batches) and the generator's (its
    gradient through the augmented fakes) change; from one state, each is the same twice."""
    plain = TINY.replace(image_shape=(28, 28, 1))
    augmented = plain.replace(augment=ALL)
    state = init_state(plain, jax.random.PRNGKey(0))
    for step in (lambda s, c: critic_step(s, images, c), generator_step):
        off, _ = step(state, plain)
        on, metrics = step(state, augmented)
        again, _ = step(state, augmented)
        for a, b in zip(leaves(on), leaves(again)):
            np.testing.assert_array_equal(a, b)
        moved = [not np.array_equal(a, b) for a, b in zip(leaves(on), leaves(off))]
        assert any(moved) and all(np.all(np.isfinite(v)) for v in leaves(metrics))


def test_a_bad_policy_is_one_line():
    with pytest.raises(UserError, match="unknown augmentation flip: use off or a comma-separated"):
        from_preset("seed", augment="color,flip")


@pytest.mark.slow
def test_a_run_that_augments_resumes_bitwise(tmp_path):
    run = TINY.replace(iterations=3, checkpoint_every=1, augment=ALL)
    loop.run(run, tmp_path / "straight")
    loop.run(run.replace(iterations=2), tmp_path / "resumed")
    loop.run(run, tmp_path / "resumed", resume=True)
    from wgan_jax.ckpt import Checkpoints
    from wgan_jax.core.state import select

    states = []
    for name in ("straight", "resumed"):
        manager = Checkpoints(tmp_path / name)
        try:
            states.append(select(manager.restore(target(run)), 0))
        finally:
            manager.close()
    for a, b in zip(leaves(states[0]), leaves(states[1])):
        np.testing.assert_array_equal(a, b)
    assert int(states[1].step) == 3
