import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import Config, models


def numpy_upsample_conv(x, kernel, bias):
    """Keras' UpSampling2D(2) then Conv2D(k=4, padding='same'), written out in float64."""
    up = np.repeat(np.repeat(x.astype(np.float64), 2, axis=1), 2, axis=2)
    # TensorFlow 'same' for an even kernel: total padding 3, one before and two after.
    padded = np.pad(up, ((0, 0), (1, 2), (1, 2), (0, 0)))
    batch, height, width, _ = up.shape
    out = np.zeros((batch, height, width, kernel.shape[-1]))
    for dy in range(4):
        for dx in range(4):
            out += padded[:, dy:dy + height, dx:dx + width, :] @ kernel[dy, dx].astype(np.float64)
    return out + bias


@pytest.mark.parametrize("shape", [(2, 7, 7, 3), (1, 4, 6, 2)])
def test_upsample_conv_equals_upsampling_then_4x4_same_conv(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    layer = models.UpsampleConv(5)
    params = layer.init(jax.random.PRNGKey(0), x)["params"]
    params = {"kernel": params["kernel"], "bias": jnp.asarray(rng.normal(size=5), jnp.float32)}
    got = layer.apply({"params": params}, x)
    expected = numpy_upsample_conv(x, np.asarray(params["kernel"]), np.asarray(params["bias"]))
    # f32 sums of ~50 products of O(1) values: errors ~1e-6 relative to outputs of O(1).
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-5)


def count(params):
    return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))


def test_seed_architecture_has_the_keras_parameter_counts():
    """Parameter counts of Keras-GAN wgan.py's model summaries, computed by hand layer by layer
    (Keras' totals add the non-trainable BatchNorm statistics: 1,028,673 and 100,097)."""
    config = Config()
    generator, critic = models.build(config)
    g = generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
    c = critic.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)), train=False)
    gen_expected = ((100 * 6272 + 6272) + (16 * 128 * 128 + 128) + 2 * 128
                    + (16 * 128 * 64 + 64) + 2 * 64 + (16 * 64 * 1 + 1))
    critic_expected = ((9 * 1 * 16 + 16) + (9 * 16 * 32 + 32) + 2 * 32 + (9 * 32 * 64 + 64)
                       + 2 * 64 + (9 * 64 * 128 + 128) + 2 * 128 + (4 * 4 * 128 + 1))
    assert count(g["params"]) == gen_expected == 1_028_289
    assert count(c["params"]) == critic_expected == 99_649
    # BatchNorm running mean and variance: not trainable, not clipped.
    assert count(g["batch_stats"]) == 2 * (128 + 64) == 1_028_673 - 1_028_289
    assert count(c["batch_stats"]) == 2 * (32 + 64 + 128) == 100_097 - 99_649


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3)])
def test_networks_adapt_to_the_image_shape(image_shape):
    config = Config(image_shape=image_shape, gen_channels=(8, 4), critic_channels=(4, 4, 4, 4))
    generator, critic = models.build(config)
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 100))
    g = generator.init(jax.random.PRNGKey(1), z, train=False)
    images = generator.apply(g, z, train=False)
    assert images.shape == (3, *image_shape)
    assert float(jnp.max(jnp.abs(images))) <= 1.0  # tanh
    c = critic.init(jax.random.PRNGKey(2), images, train=False)
    assert critic.apply(c, images, train=False).shape == (3, 1)


def test_critic_dropout_depends_on_its_key_only_in_training():
    config = Config(critic_channels=(4, 4, 4, 4))
    _, critic = models.build(config)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 28, 28, 1))
    v = critic.init(jax.random.PRNGKey(1), x, train=False)

    def score(key, train):
        out = critic.apply(v, x, train=train, rngs={"dropout": key}, mutable=["batch_stats"])
        return np.asarray(out[0])

    a, b = jax.random.PRNGKey(2), jax.random.PRNGKey(3)
    np.testing.assert_array_equal(score(a, True), score(a, True))
    assert not np.allclose(score(a, True), score(b, True))
    np.testing.assert_array_equal(score(a, False), score(b, False))


@pytest.mark.parametrize("norm, layers", [("batch", "BatchNorm"), ("layer", "LayerNorm"), ("none", None)])
def test_critic_normalisation_options(norm, layers):
    critic = models.Critic(channels=(4, 4, 8, 8), norm=norm)
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 28, 28, 1), minval=-1, maxval=1)
    variables = critic.init(jax.random.PRNGKey(1), x, train=False)
    names = " ".join(variables["params"])
    assert (layers in names) if layers else ("Norm" not in names)
    assert ("batch_stats" in variables) == (norm == "batch")
    if norm != "batch":  # per-sample: a score does not depend on the rest of the batch
        rngs = {"dropout": jax.random.PRNGKey(2)}
        whole = critic.apply(variables, x, train=False, rngs=rngs)
        alone = critic.apply(variables, x[1:2], train=False, rngs=rngs)
        np.testing.assert_allclose(whole[1:2], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_bfloat16_compute_keeps_float32_params_and_outputs_and_tracks_float32():
    """Same params, both dtypes. bfloat16 keeps 8 significant bits (unit roundoff 2^-9 ~ 0.002):
    the generator's tanh outputs in [-1, 1] are observed within 0.005 of float32 over ~6 layers,
    the critic's scores within 3% of their mean size; the bounds leave 4-5x margin."""
    f32 = Config(batch_size=16)
    bf16 = Config(batch_size=16, compute_dtype="bfloat16")
    gen32, critic32 = models.build(f32)
    gen16, critic16 = models.build(bf16)
    z = jax.random.normal(jax.random.PRNGKey(1), (16, f32.latent_dim))
    gen_vars = gen32.init(jax.random.PRNGKey(0), z, train=False)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(
        lambda a, b: a.dtype == b.dtype == jnp.float32, gen_vars,
        gen16.init(jax.random.PRNGKey(0), z, train=False)))
    images32, images16 = gen32.apply(gen_vars, z, train=False), gen16.apply(gen_vars, z, train=False)
    assert images32.dtype == images16.dtype == jnp.float32
    gap = float(jnp.abs(images32 - images16).max())
    assert 0 < gap < 0.02  # > 0: the bfloat16 path really rounds
    critic_vars = critic32.init(jax.random.PRNGKey(2), images32, train=False)
    scores32, scores16 = critic32.apply(critic_vars, images32, train=False), \
        critic16.apply(critic_vars, images32, train=False)
    assert scores16.dtype == jnp.float32
    assert float(jnp.abs(scores32 - scores16).max()) < 0.16 * float(jnp.abs(scores32).mean())
    hlo = jax.jit(lambda x: critic16.apply(critic_vars, x, train=False)).lower(images32).as_text()
    assert "bf16" in hlo and "convolution" in hlo
