"""Each rule that tells the losses and the parity presets apart, against a re-computation of that
one step from its parts (keys, forward passes, gradients, the optimizer written out in NumPy)."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import critic_step, generator_step, init_state, real_batch, train_step
from wgan_jax.train import programs
from wgan_jax.core.runs import init_states
from wgan_jax.core import draws, losses, models, steps
from wgan_jax.config import PRESETS
from wgan_jax.config import LOSSES
from wgan_jax.core.state import CRITIC, PENALTY, select, stream

from conftest import TINY, assert_trees_close, leaves

# Keep TINY's run shape and networks: these tests are about the algorithm's rules (the official
# preset's DCGAN networks at 64 px have tests of their own, in test_models.py).
RUN_FIELDS = {"batch_size", "log_every", "iterations", "arch", "image_size", "dropout"}


def variant(preset=None, loss=None, **extra):
    fields = {k: v for k, v in PRESETS.get(preset, {}).items() if k not in RUN_FIELDS}
    if loss:
        fields.update(LOSSES[loss].defaults, loss=loss)
    return TINY.replace(**{**fields, **extra}).validate()


def all_values(tree):
    return np.concatenate([x.ravel() for x in leaves(tree)]) if leaves(tree) else np.zeros(0)


def within(tree, bound):
    return bool(np.all(np.abs(all_values(tree)) <= bound))


@pytest.mark.parametrize("preset, params_clipped, stats_clipped", [
    ("seed", True, False), ("paper", True, False), ("keras-exact", True, True),
])
@pytest.mark.slow
def test_clip_after_the_update_and_what_it_covers(images, preset, params_clipped, stats_clipped):
    config = variant(preset)
    state = init_state(config, jax.random.PRNGKey(0))
    new, _ = critic_step(state, images, config)
    assert within(new.critic.params, config.runs.clip) == params_clipped
    assert within(new.critic.stats, config.runs.clip) == stats_clipped  # running variance starts at 1


@pytest.mark.slow
def test_official_clips_at_the_start_of_the_critic_step(images):
    config = variant("official")
    state = init_state(config, jax.random.PRNGKey(0))
    new, _ = critic_step(state, images, config)
    # the update after the clip moves weights that sat on the bound past it ...
    assert not within(new.critic.params, config.runs.clip)
    assert within(new.critic.params, config.runs.clip + 2e-3)  # first RMSprop step <= lr/sqrt(1-0.99)
    # ... and clipping the input first changes nothing: the clip came first
    pre_clipped = state.replace(critic=state.critic.replace(params=jax.tree_util.tree_map(
        lambda p: jnp.clip(p, -config.runs.clip, config.runs.clip), state.critic.params)))
    for a, b in zip(leaves(new), leaves(critic_step(pre_clipped, images, config)[0])):
        np.testing.assert_array_equal(a, b)
    assert not within(new.critic.stats, config.runs.clip)  # running statistics are never clipped


@pytest.mark.parametrize("loss", ["dcgan", "wgan-gp"])
@pytest.mark.slow
def test_dcgan_and_wgan_gp_never_clip(images, loss):
    config = variant(loss=loss)
    state = init_state(config, jax.random.PRNGKey(0))
    assert not within(critic_step(state, images, config)[0].critic.params, 0.05)


def parts(state, images, config, update=0):
    """The batches and keys critic update `update` uses, rebuilt by hand."""
    k_real, k_noise, k_drop_real, k_drop_fake = jax.random.split(
        jax.random.fold_in(stream(state.key, CRITIC), update), 4)
    generator, critic = models.build(config.nets)
    real = real_batch(images, k_real, config.algorithm.batch_size)
    z = jax.random.normal(k_noise, (config.algorithm.batch_size, config.nets.latent_dim))
    variables = {"params": state.gen.params, "batch_stats": state.gen.stats}
    if config.algorithm.fake_batches == "inference":
        fake = generator.apply(variables, z, train=False)
    else:
        fake, _ = generator.apply(variables, z, train=True, mutable=["batch_stats"])
    return critic, real, fake, k_drop_real, k_drop_fake, z


def scores(critic, params, stats, x, key):
    out, updated = critic.apply({"params": params, "batch_stats": stats}, x, train=True,
                                rngs={"dropout": key}, mutable=["batch_stats"])
    return out, updated.get("batch_stats", stats)


def rmsprop_numpy(w, g, v, config):
    """Keras/PyTorch RMSprop in float64: v <- rho v + (1 - rho) g^2; w <- w - lr g / (sqrt(v) + eps)."""
    v = config.optim.rmsprop_decay * v + (1 - config.optim.rmsprop_decay) * np.float64(g) ** 2
    return np.float64(w) - config.runs.lr * np.float64(g) / (np.sqrt(v) + config.optim.rmsprop_eps), v


@pytest.mark.slow
def test_keras_exact_critic_step_is_two_rmsprop_updates_then_the_clip(images):
    config = variant("keras-exact")
    state = init_state(config, jax.random.PRNGKey(0))
    critic, real, fake, k_r, k_f, _ = parts(state, images, config)
    w0, stats0 = state.critic.params, state.critic.stats

    def real_loss(p):
        out, s = scores(critic, p, stats0, real, k_r)
        return jnp.mean(-out), s

    (loss_r, stats1), g1 = jax.value_and_grad(real_loss, has_aux=True)(w0)
    tree = jax.tree_util.tree_map
    step1 = tree(lambda w, g: rmsprop_numpy(w, g, 0.0, config), w0, g1)
    w1 = tree(lambda pair: pair[0].astype(np.float32), step1, is_leaf=lambda x: isinstance(x, tuple))

    def fake_loss(p):
        out, s = scores(critic, p, stats1, fake, k_f)
        return jnp.mean(out), s

    (loss_f, stats2), g2 = jax.value_and_grad(fake_loss, has_aux=True)(w1)
    w2 = tree(lambda pair, g: np.clip(rmsprop_numpy(pair[0], g, pair[1], config)[0], -config.runs.clip,
                                      config.runs.clip), step1, g2, is_leaf=lambda x: isinstance(x, tuple))
    new, metrics = critic_step(state, images, config)
    # two f32 steps of size <= lr * 3.2 on weights <= 0.01: a few ulps; noise-driven biases aside
    assert_trees_close(new.critic.params, w2, atol=2e-7, rtol=0)
    assert_trees_close(new.critic.stats, tree(lambda s: np.clip(s, -config.runs.clip, config.runs.clip), stats2),
                       atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(metrics["critic_loss"], loss_r + loss_f, rtol=1e-5)
    np.testing.assert_allclose(metrics["seed_d_loss"], 1 - 0.5 * (loss_r + loss_f), rtol=1e-6)


@pytest.mark.slow
def test_keras_exact_generator_step_reuses_the_last_critic_noise(images):
    config = variant("keras-exact")
    state, _ = steps.critic_steps(init_state(config, jax.random.PRNGKey(0)), images, config)
    generator, critic = models.build(config.nets)
    *_, z = parts(state, images, config, update=config.algorithm.n_critic - 1)
    dropout_key = jax.random.split(jax.random.fold_in(stream(state.key, 2), state.step))[1]
    fake, _ = generator.apply({"params": state.gen.params, "batch_stats": state.gen.stats}, z,
                              train=True, mutable=["batch_stats"])
    out, _ = scores(critic, state.critic.params, state.critic.stats, fake, dropout_key)
    _, metrics = generator_step(state, config)
    np.testing.assert_allclose(metrics["generator_loss"], -jnp.mean(out), rtol=1e-5)
    np.testing.assert_allclose(metrics["seed_g_loss"], 1 + jnp.mean(out), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("dropout", [None, 0.25])  # wgan-gp's default (none), or set
def test_wgan_gp_critic_step_is_the_penalised_loss_and_one_adam_step(images, dropout):
    config = variant(loss="wgan-gp", **({} if dropout is None else {"dropout": dropout}))
    assert config.nets.dropout == (dropout or 0.0)
    state = init_state(config, jax.random.PRNGKey(0))
    critic, real, fake, k_r, k_f, _ = parts(state, images, config)
    mix = jax.random.uniform(jax.random.fold_in(stream(state.key, PENALTY), 0), (config.algorithm.batch_size,))

    def penalty_of(p, **mode):
        return losses.gradient_penalty(lambda x: critic.apply({"params": p}, x, **mode),
                                       real, fake, mix)[0]

    def loss(p):
        d_real, _ = scores(critic, p, {}, real, k_r)
        d_fake, _ = scores(critic, p, {}, fake, k_f)
        penalty = penalty_of(p, train=False)  # the critic itself, no dropout mask of its own
        return jnp.mean(d_fake) - jnp.mean(d_real) + 10.0 * penalty, penalty

    (expected_loss, penalty), grads = jax.value_and_grad(loss, has_aux=True)(state.critic.params)
    # Adam's first step with beta1 = 0: m = g, v = (1 - b2) g^2, bias-corrected to g and g^2.
    adam = lambda w, g: np.float64(w) - config.runs.lr * g / (np.abs(np.float64(g)) + 1e-8)  # noqa: E731
    expected = jax.tree_util.tree_map(adam, state.critic.params, grads)
    new, metrics = critic_step(state, images, config)
    assert_trees_close(new.critic.params, expected, atol=1e-6, rtol=0)  # 1% of one step
    np.testing.assert_allclose(metrics["critic_loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["gradient_penalty"], penalty, rtol=1e-5)
    assert new.critic.stats == {}  # LayerNorm: nothing to track
    if dropout:  # a dropout mask would change the penalty, so the comparison above can fail
        masked = [penalty_of(state.critic.params, train=True, rngs={"dropout": jax.random.PRNGKey(k)})
                  for k in (1, 2)]
        assert abs(float(masked[0]) - float(masked[1])) > 1e-3 * float(penalty)
        assert all(abs(float(m) - float(penalty)) > 1e-3 * float(penalty) for m in masked)


@pytest.mark.slow
def test_dcgan_critic_loss_is_the_cross_entropy_of_its_batches(images):
    config = variant(loss="dcgan")
    state = init_state(config, jax.random.PRNGKey(0))
    critic, real, fake, k_r, k_f, _ = parts(state, images, config)
    d_real, stats = scores(critic, state.critic.params, state.critic.stats, real, k_r)
    d_fake, _ = scores(critic, state.critic.params, stats, fake, k_f)
    bce = lambda y, x: np.mean(y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x))  # noqa: E731
    _, metrics = critic_step(state, images, config)
    np.testing.assert_allclose(metrics["critic_loss"],
                               bce(1, np.float64(d_real)) + bce(0, np.float64(d_fake)), rtol=1e-5)


def test_official_schedule_counts_match_the_reference_rule():
    config = variant("official")
    reference = [100 if i < 25 or i % 500 == 0 else config.algorithm.n_critic for i in range(1600)]
    counts = jax.vmap(lambda i: draws.critic_count(i, config))(jnp.arange(1600))
    assert counts.tolist() == reference
    assert set(jax.vmap(lambda i: draws.critic_count(i, TINY))(jnp.arange(50)).tolist()) == {TINY.algorithm.n_critic}


@pytest.fixture(scope="module")
def official():
    return variant("official")


@pytest.mark.slow
def test_official_train_step_runs_the_scheduled_count_in_one_compiled_program(images, official):
    before = train_step._cache_size()
    for step, updates in [(0, 100), (24, 100), (25, 3), (499, 3), (500, 100)]:
        state = init_state(official, jax.random.PRNGKey(0)).replace(step=jnp.int32(step))
        new, _ = train_step(state, images, official)
        assert int(new.critic_updates) == updates and int(new.step) == step + 1
    assert train_step._cache_size() == before + 1  # both scan lengths behind one lax.cond


@pytest.mark.slow
def test_official_long_iteration_equals_100_critic_steps_in_python(images, official):
    state = init_state(official, jax.random.PRNGKey(1))
    fused, _ = train_step(state, images, official)
    looped = state
    for _ in range(100):
        looped, _ = critic_step(looped, images, official)
    looped, _ = generator_step(looped, official)
    # 100 f32 updates compiled two ways: ulp-level drift per update (see test_steps)
    assert_trees_close(fused, looped, atol=2e-6, rtol=1e-4)


@pytest.mark.slow
def test_on_the_cpu_the_official_schedule_runs_in_pieces_with_the_same_numbers(images, official):
    """XLA:CPU runs the long iteration's rolled scan about 17x slower than unrolled updates, so
    on the CPU programs.build dispatches it as OFFICIAL_LONG / n_critic unrolled pieces, the last
    with the generator update: the same updates, keys and numbers as train_step's lax.cond."""
    config = official.replace(n_critic=4)
    built = programs.build(config, "loop", programs.device_mesh(config))
    assert built.chunks == 24
    data = built.place_data(images)
    for step, updates in [(0, 100), (25, 4)]:
        start = init_states(config)
        start = start.replace(step=start.step + step)
        fused, want = train_step(select(start, 0), images, config)
        pieces, got = built.iteration(built.place_states(start), [data] * built.pieces(step), step)
        assert int(select(pieces, 0).critic_updates) == updates
        # the same f32 updates compiled as other programs: ulp-level drift per update
        assert_trees_close(select(pieces, 0), fused, atol=2e-6, rtol=1e-4)
        for name, value in want.items():
            np.testing.assert_allclose(np.asarray(got[name])[0], value, rtol=1e-4, atol=1e-6)


def test_train_update_fake_batches_advance_the_generator_running_statistics(images, official):
    state = init_state(official, jax.random.PRNGKey(0))
    new, _ = critic_step(state, images, official)
    generator, _ = models.build(official.nets)
    z = parts(state, images, official)[-1]
    _, updated = generator.apply({"params": state.gen.params, "batch_stats": state.gen.stats}, z,
                                 train=True, mutable=["batch_stats"])
    assert_trees_close(new.gen.stats, updated["batch_stats"], atol=1e-6)
    # the default leaves them alone
    plain, _ = critic_step(init_state(TINY, jax.random.PRNGKey(0)), images, TINY)
    for a, b in zip(leaves(plain.gen.stats), leaves(init_state(TINY, jax.random.PRNGKey(0)).gen.stats)):
        np.testing.assert_array_equal(a, b)
