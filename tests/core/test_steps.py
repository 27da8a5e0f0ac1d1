from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import (critic_step, critic_steps, generate, generator_step, init_state, real_batch,
                      train_step)
from wgan_jax.core import draws, generation, models, steps
from wgan_jax.core.state import BN_STATS, CRITIC, GENERATOR, stream

from conftest import assert_trees_close, leaves, noise_driven

def test_real_batch_scales_uint8_to_the_seeds_range():
    data = jnp.asarray(np.array([0, 255], np.uint8).reshape(2, 1, 1, 1))
    batch = np.asarray(real_batch(data, jax.random.PRNGKey(0), 64))
    assert set(np.unique(batch)) == {-1.0, 1.0}  # drawn with replacement from both images


@pytest.mark.slow
def test_critic_step_clips_every_critic_parameter_and_the_clip_binds(state, images, config):
    new, _ = critic_step(state, images, config)
    values = np.concatenate([x.ravel() for x in leaves(new.critic.params)])
    assert np.all(np.abs(values) <= config.runs.clip)
    # Glorot-initialised weights are far outside [-0.01, 0.01]: most must sit on the bound.
    assert np.mean(np.abs(values) == np.float32(config.runs.clip)) > 0.5
    # BatchNorm running statistics are not clipped (running variance starts at 1).
    assert max(float(x.max()) for x in leaves(new.critic.stats)) > config.runs.clip


@pytest.mark.parametrize("rates", [{}, {"lr_critic": 1e-3, "lr_generator": 2e-5}])
def test_critic_step_is_one_hand_computed_rmsprop_update_then_clip(images, config, rates):
    """Re-derives the step from its parts: the keys, the two forward passes, the gradient, and
    Keras' RMSprop written out in NumPy (first step: v = (1 - rho) g^2), at the critic's own
    learning rate when the two networks have their own."""
    config = config.replace(**rates)
    state = init_state(config, jax.random.PRNGKey(42))
    generator, critic = models.build(config.nets)
    k_real, k_noise, k_drop_real, k_drop_fake = jax.random.split(
        jax.random.fold_in(stream(state.key, CRITIC), 0), 4)
    real = real_batch(images, k_real, config.algorithm.batch_size)
    z = jax.random.normal(k_noise, (config.algorithm.batch_size, config.nets.latent_dim))
    fake, _ = generator.apply({"params": state.gen.params, "batch_stats": state.gen.stats}, z,
                              train=True, mutable=["batch_stats"])

    def loss(params):
        d_real, upd = critic.apply({"params": params, "batch_stats": state.critic.stats}, real,
                                   train=True, rngs={"dropout": k_drop_real}, mutable=["batch_stats"])
        d_fake, _ = critic.apply({"params": params, **upd}, fake, train=True,
                                 rngs={"dropout": k_drop_fake}, mutable=["batch_stats"])
        return jnp.mean(d_fake) - jnp.mean(d_real)

    grads = jax.grad(loss)(state.critic.params)
    lr, rho, eps, c = config.runs.critic_lr(), config.optim.rmsprop_decay, config.optim.rmsprop_eps, config.runs.clip

    def rmsprop_then_clip(w, g):
        w, g = np.float64(w), np.float64(g)
        return np.clip(w - lr * g / (np.sqrt((1 - rho) * g * g) + eps), -c, c)

    expected = jax.tree_util.tree_map(rmsprop_then_clip, state.critic.params, grads)
    new, metrics = critic_step(state, images, config)
    # One f32 step of size <= lr * 3.2 on weights <= 0.01: a few ulps (~1e-9); 1e-7 is 1e-5 of c.
    assert_trees_close(new.critic.params, expected, atol=1e-7, rtol=0)
    assert all(np.all(np.abs(x) <= c) for x in leaves(new.critic.params))
    np.testing.assert_allclose(metrics["critic_loss"], loss(state.critic.params), rtol=1e-5)
    np.testing.assert_allclose(metrics["wasserstein_estimate"], -metrics["critic_loss"])


@pytest.mark.slow
def test_generator_step_is_one_hand_computed_rmsprop_update_at_its_own_learning_rate(config):
    """The generator update from its parts: its keys, G(z) through the frozen critic in training
    mode, the gradient of -mean D(G(z)), and RMSprop's first step in NumPy at lr_generator."""
    config = config.replace(lr_critic=1e-3, lr_generator=2e-5, clip=0.5)
    state = init_state(config, jax.random.PRNGKey(42))
    generator, critic = models.build(config.nets)
    noise_key, dropout_key = jax.random.split(jax.random.fold_in(stream(state.key, GENERATOR), 0))
    z = jax.random.normal(noise_key, (config.algorithm.batch_size, config.nets.latent_dim))

    def loss(params):
        fake, _ = generator.apply({"params": params, "batch_stats": state.gen.stats}, z,
                                  train=True, mutable=["batch_stats"])
        scores, _ = critic.apply({"params": state.critic.params, "batch_stats": state.critic.stats},
                                 fake, train=True, rngs={"dropout": dropout_key},
                                 mutable=["batch_stats"])
        return -jnp.mean(scores)

    grads = jax.grad(loss)(state.gen.params)
    lr, rho, eps = config.runs.generator_lr(), config.optim.rmsprop_decay, config.optim.rmsprop_eps

    def rmsprop(w, g):
        w, g = np.float64(w), np.float64(g)
        return w - lr * g / (np.sqrt((1 - rho) * g * g) + eps)

    new, metrics = generator_step(state, config)
    # Steps of at most lr / sqrt(1 - rho) = 6.3e-5 on weights below ~0.3: f32 rounding ~1e-8.
    assert_trees_close(new.gen.params, jax.tree_util.tree_map(rmsprop, state.gen.params, grads),
                       atol=1e-7, rtol=0)
    np.testing.assert_allclose(metrics["generator_loss"], loss(state.gen.params), rtol=1e-5)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(leaves(new.gen.params),
                                                             leaves(state.gen.params)))
    # The largest step is the generator's rate (not lr_critic's), up to two f32 roundings of w.
    assert 1e-6 < moved <= lr / np.sqrt(1 - rho) + 1e-7


# Scan and Python loop compile to different XLA programs (different fusion and op order), so f32
# results differ by a few ulps per step; RMSprop divides by sqrt(v) ~ |g|, which keeps an ulp-level
# gradient difference an ulp-level step difference. Observed: < 1.2e-7 on every compared leaf
# after 3 iterations; assert_trees_close's atol of 1e-6 leaves 10x room and is still 1e-4 of the
# clip value.
@pytest.mark.slow
def test_critic_scan_equals_the_same_steps_unrolled_in_python(state, images, config):
    scanned, scan_metrics = critic_steps(state, images, config)
    looped, loop_metrics = state, []
    for _ in range(config.algorithm.n_critic):
        looped, m = critic_step(looped, images, config)
        loop_metrics.append(m)
    assert_trees_close(scanned, looped)
    for name in scan_metrics:
        np.testing.assert_allclose(scan_metrics[name], [m[name] for m in loop_metrics],
                                   rtol=1e-4, atol=1e-7)
    assert int(scanned.critic_updates) == config.algorithm.n_critic and int(scanned.step) == 0


@pytest.mark.slow
def test_train_step_is_critic_steps_then_generator_step(state, images, config):
    new, metrics = train_step(state, images, config)
    mid, critic_metrics = critic_steps(state, images, config)
    expected, gen_metrics = generator_step(mid, config)
    assert_trees_close(new, expected)
    np.testing.assert_allclose(metrics["critic_loss"], critic_metrics["critic_loss"][-1], rtol=1e-5)
    np.testing.assert_allclose(metrics["generator_loss"], gen_metrics["generator_loss"], rtol=1e-5)


def test_generator_step_leaves_the_critic_untouched(state, config):
    new, _ = generator_step(state, config)
    for name in ("critic", "critic_updates"):
        for a, b in zip(leaves(getattr(new, name)), leaves(getattr(state, name))):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(leaves(new.gen.params),
                                                        leaves(state.gen.params)))
    assert int(new.step) == 1


def test_critic_step_leaves_the_generator_untouched(state, images, config):
    new, _ = critic_step(state, images, config)
    for name in ("gen", "step", "key"):
        for a, b in zip(leaves(getattr(new, name)), leaves(getattr(state, name))):
            np.testing.assert_array_equal(a, b)
    assert int(new.critic_updates) == 1


def test_consecutive_critic_steps_draw_fresh_batches(state, images, config):
    one, m1 = critic_step(state, images, config)
    # Reset the critic but keep the advanced counter: same params, new keys -> a different loss.
    again = one.replace(critic=state.critic)
    _, m2 = critic_step(again, images, config)
    assert float(m1["critic_loss"]) != float(m2["critic_loss"])


@pytest.mark.slow
def test_train_step_compiles_once(images, config):
    fresh = config.replace(bn_eps=1.25e-3)  # a program no other test compiles
    first = init_state(fresh, jax.random.PRNGKey(0))
    second = init_state(fresh, jax.random.PRNGKey(1))
    before = train_step._cache_size()
    state, _ = train_step(first, images, fresh)
    state, _ = train_step(state, images, fresh)
    train_step(second, images, fresh)
    assert train_step._cache_size() == before + 1
    train_step(second, images[:256], fresh)  # another dataset size is another program
    assert train_step._cache_size() == before + 2


@pytest.mark.slow
def test_what_the_state_carries_is_not_compiled_in(images, config):
    """Configs differing only in the seed, the clip bound, the learning rates, the preset or
    run fields share one compiled step, and its numbers follow the state: they equal those of
    the step compiled with each whole config as its static argument."""
    base = config.replace(n_critic=1, bn_eps=1.5e-3)  # a program no other test compiles
    variants = [base, base.replace(seed=7), base.replace(clip=0.003),
                base.replace(lr=1e-3, lr_critic=3e-4),
                base.replace(preset="quick", iterations=9, sample_every=3)]
    before = train_step._cache_size()
    results = [train_step(init_state(c, jax.random.PRNGKey(c.runs.seed)), images, c) for c in variants]
    assert train_step._cache_size() == before + 1
    whole = jax.jit(train_step.__wrapped__, static_argnames="program")
    for c, result in zip(variants[1:4], results[1:4]):
        expected = whole(init_state(c, jax.random.PRNGKey(c.runs.seed)), images, c)
        assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(result),
                                                         jax.tree_util.tree_leaves(expected)))
    changed = [not np.array_equal(r[0].critic.params["Dense_0"]["kernel"],
                                  results[0][0].critic.params["Dense_0"]["kernel"])
               for r in results[1:]]
    assert changed == [True, True, True, False]  # the preset and run fields change nothing


def test_data_is_an_argument_not_a_baked_constant(mnist_train, config):
    everything = jnp.asarray(mnist_train.images)  # 47 MB
    lowered = steps.train_step.lower(init_state(config, jax.random.PRNGKey(0)), everything, config)
    assert len(lowered.as_text()) < 2_000_000


def test_generate_is_deterministic_and_in_range(state, config):
    z = jax.random.normal(jax.random.PRNGKey(7), (5, config.nets.latent_dim))
    a, b = generate(state, z, config), generate(state, z, config)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 28, 28, 1) and float(jnp.max(jnp.abs(a))) <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["critic_loss", "generator_loss", "wasserstein_estimate"])
def test_train_step_metrics_are_finite_scalars(state, images, config, name):
    _, metrics = train_step(state, images, config)
    assert metrics[name].shape == () and np.isfinite(float(metrics[name]))


@pytest.mark.slow
def test_bfloat16_train_step_keeps_float32_state_and_the_clip(state, images, config):
    bf16 = config.replace(compute_dtype="bfloat16")
    new, metrics = train_step(state, images, bf16)
    for before, after in zip(leaves(state), leaves(new)):
        assert after.dtype == before.dtype and np.all(np.isfinite(after))
    assert all(m.dtype == jnp.float32 for m in metrics.values())
    assert max(float(np.abs(x).max()) for x in leaves(new.critic.params)) <= config.runs.clip


# Generator averaging (config.averaging.ema). Under a 0.01-clipped critic the generator's gradients are so
# small that RMSprop's eps dominates its steps; a loose clip and a large learning rate make each
# update move the generator by ~1e-3, so the average (which lags) differs from the trained
# generator by far more than the f32 rounding the comparisons allow (ulps of values below ~1).
AVERAGED = dict(ema=0.2, lr=1e-3, clip=0.5)


def _float64(tree):
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)


@pytest.mark.slow
def test_generator_average_is_the_hand_computed_moving_average_over_3_steps(images, config):
    averaged = config.replace(**AVERAGED)
    state = init_state(averaged, jax.random.PRNGKey(42))
    expected = _float64({"params": state.gen.params, "stats": state.gen.stats})
    decays = []
    for t in range(3):
        state, _ = train_step(state, images, averaged)
        # TensorFlow's warm-up: min(ema, (1 + t) / (10 + t)): 0.1, 0.1818, then the cap 0.2.
        decay = min(averaged.averaging.ema, (1 + t) / (10 + t))
        decays.append(decay)
        trained = _float64({"params": state.gen.params, "stats": state.gen.stats})
        expected = jax.tree_util.tree_map(lambda e, w: decay * e + (1 - decay) * w, expected, trained)
    assert decays[-1] == averaged.averaging.ema and decays[0] == 0.1
    got = {"params": state.ema["params"], "stats": state.ema["batch_stats"]}
    for path, want in jax.tree_util.tree_leaves_with_path(expected):
        np.testing.assert_allclose(_leaf(got, path), want, rtol=1e-6, atol=1e-6,
                                   err_msg=jax.tree_util.keystr(path))
    gap = max(float(np.max(np.abs(a - b))) for a, b in
              zip(leaves(state.ema["params"]), leaves(state.gen.params)))
    assert gap > 1e-4  # the average lags the trained generator: the comparison can fail


def _leaf(tree, path):
    for entry in path:
        tree = tree[entry.key]
    return np.asarray(tree)


@pytest.mark.slow
def test_averaging_does_not_change_training_and_off_means_the_trained_generator(
        images, config):
    off = config.replace(lr=AVERAGED["lr"], clip=AVERAGED["clip"])
    on = config.replace(**AVERAGED)
    a, b = init_state(off, jax.random.PRNGKey(3)), init_state(on, jax.random.PRNGKey(3))
    assert a.ema == {}
    for _ in range(2):
        a, metrics_off = train_step(a, images, off)
        b, metrics_on = train_step(b, images, on)
    # The critic never sees the average and the generator never reads it back.
    assert_trees_close(a.replace(ema=b.ema), b,
                       atol=1e-7, rtol=1e-6)
    for name in metrics_off:
        np.testing.assert_allclose(metrics_off[name], metrics_on[name], rtol=1e-5, atol=1e-8)
    z = jax.random.normal(jax.random.PRNGKey(7), (4, config.nets.latent_dim))
    np.testing.assert_array_equal(generate(a, z, off), generate(a, z, off, averaged=False))
    averaged, raw = generate(b, z, on), generate(b, z, on, averaged=False)
    assert float(jnp.max(jnp.abs(averaged - raw))) > 1e-3


@pytest.mark.slow
def test_recomputed_statistics_are_the_averaged_generators_batch_statistics(images, config):
    on = config.replace(**AVERAGED, ema_stats="recomputed")
    state, _ = train_step(init_state(on, jax.random.PRNGKey(5)), images, on)
    stats = generation.generator_variables(state, on)["batch_stats"]
    # By hand: the first BatchNorm's input (the first upsampling conv's output) on the same
    # latent vectors, its mean and (biased) variance over batch and space, in float64.
    generator, _ = models.build(on.nets)
    z = jax.random.normal(stream(state.key, BN_STATS), (generation.RECOMPUTE_SAMPLES, on.nets.latent_dim))
    _, captured = generator.apply({"params": state.ema["params"], "batch_stats": state.ema["batch_stats"]}, z,
                                  train=True, mutable=["batch_stats", "intermediates"],
                                  capture_intermediates=True)
    x = np.asarray(captured["intermediates"]["UpsampleConv_0"]["__call__"][0], np.float64)
    np.testing.assert_allclose(stats["BatchNorm_0"]["mean"], x.mean(axis=(0, 1, 2)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["BatchNorm_0"]["var"], x.var(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-6)
    assert not np.allclose(stats["BatchNorm_0"]["var"], state.ema["batch_stats"]["BatchNorm_0"]["var"])


# The state, metrics and four images after two TINY iterations, computed at 70a8204 (before the
# conditional code's last change) under these tests' XLA flags on an x86-64 CPU with AVX-512:
# `python tests/core/test_steps.py` writes it again. Update it only for an intended change of the
# unconditional step, after checking the change.
REFERENCE = Path(__file__).parents[1] / "reference" / "unconditional-two-iterations.npz"
# How far another instruction set may take a leaf, in units of the float32 spacing at the leaf's
# largest magnitude: XLA promises no bits across instruction sets, and RMSprop's g / sqrt(v)
# turns rounding differences into step differences. Measured between AVX-512 and
# XLA_FLAGS=--xla_cpu_max_isa=SSE4_2: at most 79.5 (a critic BatchNorm bias), 6 in the metrics;
# 1024 leaves 13x room. A changed step moves leaves by the learning rate (5e-5), thousands of
# spacings of the clip bound 0.01 (the second test below checks it is caught).
SPACINGS = 1024


def two_iterations(images, config, seed: int = 0) -> dict[str, np.ndarray]:
    """Every leaf of (state, metrics, images) after two iterations, by its path, but the
    noise-driven ones (conftest: their values are rounding noise amplified)."""
    state = init_state(config, jax.random.PRNGKey(seed))
    for _ in range(2):
        state, metrics = train_step(state, images, config)
    z = jax.random.normal(jax.random.PRNGKey(1), (4, config.nets.latent_dim))
    tree = (state, metrics, generate(state, z, config))
    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree) if not noise_driven(path)}


def spacings_apart(got: dict, want: dict) -> dict[str, float]:
    """Each leaf's largest difference, in float32 spacings at the reference leaf's largest
    magnitude (integer leaves: their largest difference)."""
    apart = {}
    for name, reference in want.items():
        difference = np.abs(got[name].astype(np.float64) - reference).max(initial=0.0)
        if reference.dtype.kind == "f":
            difference /= np.spacing(np.float32(np.abs(reference).max(initial=0.0)))
        apart[name] = float(difference)
    return apart


def test_unconditional_training_is_what_it_was(images, config):
    """A reference-value test: an unconditional run draws, steps and rounds as it did before
    the class-conditional code, to within rounding on any x86-64 or ARM CPU."""
    with np.load(REFERENCE) as stored:
        want = dict(stored)
    got = two_iterations(images, config)
    assert set(got) == set(want)
    apart = spacings_apart(got, want)
    worst = max(apart, key=apart.get)
    assert apart[worst] <= SPACINGS, f"{worst}: {apart[worst]:.0f} spacings"


def test_the_reference_check_catches_a_changed_run(images, config):
    """The tolerance is no blanket: a run from another initial key is far outside it."""
    with np.load(REFERENCE) as stored:
        want = dict(stored)
    assert max(spacings_apart(two_iterations(images, config, seed=1), want).values()) > 100 * SPACINGS


@pytest.fixture(scope="module")
def labelled(mnist_train):
    return jax.device_put(mnist_train.images[:512]), jax.device_put(mnist_train.labels[:512])


@pytest.mark.slow
def test_a_conditional_critic_step_clips_the_projection_embedding_too(labelled, config):
    conditional = config.replace(conditional=True, num_classes=10)
    state = init_state(conditional, jax.random.PRNGKey(0))
    assert not np.any(leaves(state.critic.params["projection"])[0])  # starts unconditional
    new, _ = critic_step(state, labelled, conditional)
    projection = leaves(new.critic.params["projection"])[0]
    assert np.all(np.abs(projection) <= conditional.runs.clip) and np.any(projection)
    # the generator's label embedding is the generator's: not clipped, not moved by the critic
    for a, b in zip(leaves(new.gen.params["label_embedding"]), leaves(state.gen.params["label_embedding"])):
        np.testing.assert_array_equal(a, b)
    assert np.abs(leaves(new.gen.params["label_embedding"])[0]).max() > conditional.runs.clip


def test_real_batches_carry_their_own_labels_and_fake_ones_every_class(config):
    conditional = config.replace(conditional=True, num_classes=10, batch_size=512)
    labels = jnp.arange(100, dtype=jnp.int32) % 10
    images = jnp.broadcast_to((labels * 20).astype(jnp.uint8)[:, None, None, None], (100, 28, 28, 1))
    real, real_labels = draws.real((images, labels), jax.random.PRNGKey(0), conditional)
    np.testing.assert_array_equal(np.round((np.asarray(real[:, 0, 0, 0]) + 1) * 127.5),
                                  np.asarray(real_labels) * 20)
    drawn = np.asarray(draws.fake_labels(jax.random.PRNGKey(1), 512, conditional))
    assert set(drawn) == set(range(10))
    assert draws.fake_labels(jax.random.PRNGKey(1), 512, config) is None


if __name__ == "__main__":  # writes REFERENCE anew, under the tests' XLA flags (conftest)
    from conftest import TINY

    from wgan_jax import data

    first = jax.device_put(data.load_bundled_mnist("train").images[:512])
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez(REFERENCE, **two_iterations(first, TINY))
