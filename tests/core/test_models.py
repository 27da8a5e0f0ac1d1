
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import Config, UserError, from_preset
from wgan_jax.core import layers, models, seed_nets


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
    layer = layers.UpsampleConv(5)
    params = layer.init(jax.random.PRNGKey(0), x)["params"]
    params = {"kernel": params["kernel"], "bias": jnp.asarray(rng.normal(size=5), jnp.float32)}
    got = layer.apply({"params": params}, x)
    expected = numpy_upsample_conv(x, np.asarray(params["kernel"]), np.asarray(params["bias"]))
    # f32 sums of ~50 products of O(1) values: errors ~1e-6 relative to outputs of O(1).
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-5)


def count(params):
    return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))


@pytest.mark.slow
def test_seed_architecture_has_the_keras_parameter_counts():
    """Parameter counts of Keras-GAN wgan.py's model summaries, computed by hand layer by layer
    (Keras' totals add the non-trainable BatchNorm statistics: 1,028,673 and 100,097)."""
    config = Config()
    generator, critic = models.build(config.nets)
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
@pytest.mark.slow
def test_networks_adapt_to_the_image_shape(image_shape):
    config = Config().replace(image_shape=image_shape, gen_channels=(8, 4), critic_channels=(4, 4, 4, 4))
    generator, critic = models.build(config.nets)
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 100))
    g = generator.init(jax.random.PRNGKey(1), z, train=False)
    images = generator.apply(g, z, train=False)
    assert images.shape == (3, *image_shape)
    assert float(jnp.max(jnp.abs(images))) <= 1.0  # tanh
    c = critic.init(jax.random.PRNGKey(2), images, train=False)
    assert critic.apply(c, images, train=False).shape == (3, 1)


def test_critic_dropout_depends_on_its_key_only_in_training():
    config = Config().replace(critic_channels=(4, 4, 4, 4))
    _, critic = models.build(config.nets)
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
    f32 = Config().replace(batch_size=16)
    bf16 = Config().replace(batch_size=16, compute_dtype="bfloat16")
    gen32, critic32 = models.build(f32.nets)
    gen16, critic16 = models.build(bf16.nets)
    z = jax.random.normal(jax.random.PRNGKey(1), (16, f32.nets.latent_dim))
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


class LiteralSeedCritic(nn.Module):
    """The seed's critic as Keras-GAN wgan.py lists it for 28x28 MNIST, written out layer by layer
    (strides 2, 2, 2, 1, ZeroPadding2D after the second convolution): the reference the
    generalised Critic must equal bit for bit."""

    @nn.compact
    def __call__(self, x, train):
        norm = dict(use_running_average=not train, momentum=0.8, epsilon=1e-3)
        init = nn.initializers.glorot_uniform()
        x = nn.Conv(16, (3, 3), strides=2, padding="SAME", kernel_init=init)(x)
        x = nn.Dropout(0.25, deterministic=not train)(nn.leaky_relu(x, 0.2))
        x = nn.Conv(32, (3, 3), strides=2, padding="SAME", kernel_init=init)(x)
        x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
        x = nn.Dropout(0.25, deterministic=not train)(nn.leaky_relu(nn.BatchNorm(**norm)(x), 0.2))
        for width, stride in ((64, 2), (128, 1)):
            x = nn.Conv(width, (3, 3), strides=stride, padding="SAME", kernel_init=init)(x)
            x = nn.Dropout(0.25, deterministic=not train)(nn.leaky_relu(nn.BatchNorm(**norm)(x), 0.2))
        return nn.Dense(1, kernel_init=init)(x.reshape(x.shape[0], -1))


@pytest.mark.slow
def test_the_generalised_seed_critic_is_the_seed_on_mnist_bit_for_bit():
    _, critic = models.build(Config().nets)
    x = jax.random.uniform(jax.random.PRNGKey(0), (8, 28, 28, 1), minval=-1, maxval=1)
    ours = critic.init(jax.random.PRNGKey(1), x, train=False)
    literal = LiteralSeedCritic().init(jax.random.PRNGKey(1), x, train=False)
    assert jax.tree_util.tree_structure(ours) == jax.tree_util.tree_structure(literal)
    for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(literal)):
        np.testing.assert_array_equal(a, b)
    rngs = {"dropout": jax.random.PRNGKey(2)}
    got, got_stats = critic.apply(ours, x, train=True, rngs=rngs, mutable=["batch_stats"])
    want, want_stats = LiteralSeedCritic().apply(literal, x, train=True, rngs=rngs,
                                                 mutable=["batch_stats"])
    np.testing.assert_array_equal(got, want)
    for a, b in zip(jax.tree_util.tree_leaves(got_stats), jax.tree_util.tree_leaves(want_stats)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("size, strides, pads", [
    (28, (2, 2, 2, 1), {1}), (32, (2, 2, 2, 1), set()), (64, (2, 2, 2, 2), set()),
    (16, (2, 2, 1, 1), set()), (20, (2, 2, 2, 1), {1})])
def test_critic_strides_halve_to_four_and_pad_odd_sizes_before_a_halving(size, strides, pads):
    plan = seed_nets.critic_strides(size, size, 4)
    assert tuple(s for s, _ in plan) == strides
    assert {i for i, (_, pad) in enumerate(plan) if any(pad)} == pads


@pytest.mark.parametrize("arch", ["seed", "dcgan"])
@pytest.mark.parametrize("image_shape", [(32, 32, 3), (64, 64, 3)])
@pytest.mark.slow
def test_both_architectures_draw_and_score_colour_images(arch, image_shape):
    config = Config().replace(arch=arch, image_shape=image_shape, gen_channels=(8, 4),
                    critic_channels=(4, 4, 4, 4), ngf=4, ndf=4, dropout=0.0)
    generator, critic = models.build(config.validate().nets)
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 100))
    g = generator.init(jax.random.PRNGKey(1), z, train=False)
    images = generator.apply(g, z, train=False)
    assert images.shape == (3, *image_shape) and float(jnp.max(jnp.abs(images))) <= 1.0
    c = critic.init(jax.random.PRNGKey(2), images, train=False)
    assert critic.apply(c, images, train=False).shape == (3, 1)


@pytest.mark.slow
def test_dcgan_networks_have_the_authors_parameter_counts():
    """DCGAN_G and DCGAN_D of martinarjovsky/WassersteinGAN at 64x64x3, ngf = ndf = 64, nz 100,
    no biases: counted by hand layer by layer (convolutions, then BatchNorm's weight and bias)."""
    config = from_preset("official")
    config = config.replace(image_shape=(64, 64, 3))
    generator, critic = models.build(config.nets)
    g = generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
    c = critic.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)), train=False)
    gen_expected = (100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 + 64 * 3 * 16
                    + 2 * (512 + 256 + 128 + 64))
    critic_expected = (3 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 16
                       + 2 * (128 + 256 + 512))
    assert count(g["params"]) == gen_expected == 3_576_704
    assert count(c["params"]) == critic_expected == 2_765_568
    widths = [v["kernel"].shape[2] for k, v in sorted(g["params"].items()) if "Conv" in k]
    assert widths == [512, 256, 128, 64, 3]  # (kh, kw, out, in): out halves per level


def numpy_conv_transpose(x, weight, stride, pad):
    """PyTorch's ConvTranspose2d by its definition: each input pixel (iy, ix) adds
    x * W[c_in, c_out, ky, kx] at output (iy * stride - pad + ky, ix * stride - pad + kx)."""
    batch, height, width, _ = x.shape
    k, out_channels = weight.shape[2], weight.shape[1]
    size_h, size_w = (height - 1) * stride - 2 * pad + k, (width - 1) * stride - 2 * pad + k
    out = np.zeros((batch, size_h + 2 * k, size_w + 2 * k, out_channels))
    for iy in range(height):
        for ix in range(width):
            for ky in range(k):
                for kx in range(k):
                    oy, ox = iy * stride - pad + ky + k, ix * stride - pad + kx + k
                    out[:, oy, ox] += x[:, iy, ix].astype(np.float64) @ weight[:, :, ky, kx]
    return out[:, k:k + size_h, k:k + size_w]


@pytest.mark.parametrize("shape, stride, pad", [((2, 1, 1, 6), 1, 0), ((2, 4, 3, 5), 2, 1)])
def test_dcgan_transposed_convolutions_are_pytorchs(shape, stride, pad):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    layer = layers.ConvTranspose(3, stride)
    weight = rng.normal(size=(shape[-1], 3, 4, 4)).astype(np.float32)  # PyTorch (in, out, kh, kw)
    got = layer.apply({"params": {"kernel": jnp.asarray(weight.transpose(2, 3, 1, 0))}}, x)
    np.testing.assert_allclose(np.asarray(got), numpy_conv_transpose(x, weight, stride, pad),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("fields, message", [
    (dict(arch="dcgan", dropout=0.0), "arch dcgan needs square images of 16, 32, 64"),
    (dict(arch="dcgan", image_size=48, dropout=0.0), "arch dcgan needs square images"),
    (dict(arch="dcgan", image_size=32), "the DCGAN critic has no dropout"),
    (dict(gen_channels=(8, 8, 8)), "image sides must be multiples of 8; got 28x28"),
    (dict(critic_channels=()), "critic_channels must be one or more positive widths"),
])
def test_network_shape_rules_are_one_line_errors(fields, message):
    with pytest.raises(UserError, match=message) as info:
        Config().replace(**fields).validate()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("arch, shape", [("seed", (28, 28, 1)), ("dcgan", (32, 32, 3))])
@pytest.mark.slow
def test_labels_reach_both_conditional_networks(arch, shape):
    config = Config().replace(arch=arch, image_shape=shape, gen_channels=(8, 4), critic_channels=(4, 4, 4, 4),
                    ngf=4, ndf=4, dropout=0.0, conditional=True, num_classes=3)
    generator, critic = models.build(config.validate().nets)
    z = jnp.ones((2, 100))
    g = generator.init(jax.random.PRNGKey(0), z, train=False, labels=jnp.zeros(2, jnp.int32))
    images = [generator.apply(g, z, train=False, labels=jnp.full(2, c)) for c in (0, 1)]
    assert not np.allclose(images[0], images[1])
    c = critic.init(jax.random.PRNGKey(1), images[0], train=False, labels=jnp.zeros(2, jnp.int32))
    c = {**c, "params": {**c["params"], "projection": {"embedding": jax.random.normal(
        jax.random.PRNGKey(2), c["params"]["projection"]["embedding"].shape)}}}
    scores = [critic.apply(c, images[0], train=False, labels=jnp.full(2, k)) for k in (0, 1)]
    assert not np.allclose(scores[0], scores[1])
    unconditional = models.build(config.replace(conditional=False).nets)[1]
    assert "projection" not in unconditional.init(jax.random.PRNGKey(1), images[0], train=False)["params"]


def test_the_label_embedding_starts_as_loud_as_the_noise():
    """The generator's label embedding starts N(0, 1) like z (its 10 x 100 entries' standard
    deviation within 0.1 of 1: the sample deviation's own is about 0.022), and the critic's
    projection starts at zero (an unconditional critic)."""
    config = Config().replace(conditional=True, num_classes=10).validate()
    generator, critic = models.build(config.nets)
    z, labels = jnp.zeros((2, 100)), jnp.zeros(2, jnp.int32)
    params = generator.init(jax.random.PRNGKey(0), z, train=False, labels=labels)["params"]
    assert abs(float(np.std(params["label_embedding"]["embedding"])) - 1.0) < 0.1
    images = jnp.zeros((2, 28, 28, 1))
    projection = critic.init(jax.random.PRNGKey(1), images, train=False,
                             labels=labels)["params"]["projection"]["embedding"]
    assert not np.any(projection)


@pytest.mark.slow
def test_the_projection_terms_gradient_is_each_class_against_the_mean_of_all():
    """D(x, y) = psi(phi(x)) + <E[y] - mean_c E[c], phi(x)>, so d mean(D) / d E[c] = (1 / B) *
    (sum of the features phi(x_i) of the images labelled c - (1 / C) * sum of all), by hand, on
    a tiny critic (the unconditional part does not depend on E)."""
    critic = models.Critic(channels=(2, 3), dropout=0.0, norm="none", num_classes=3)
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 8, 8, 1), minval=-1, maxval=1)
    labels = jnp.array([0, 2, 2, 0, 2])
    variables = critic.init(jax.random.PRNGKey(1), x, train=False, labels=labels)
    params = {**variables["params"], "projection": {"embedding": jax.random.normal(
        jax.random.PRNGKey(2), variables["params"]["projection"]["embedding"].shape)}}
    _, sown = critic.apply({"params": params}, x, train=False, labels=labels,
                           mutable=["intermediates"])
    features = np.asarray(sown["intermediates"]["features"][0], np.float64)
    grad = jax.grad(lambda p: critic.apply({"params": p}, x, train=False, labels=labels).mean())(params)
    expected = np.stack([(features[np.asarray(labels) == c].sum(0) - features.sum(0) / 3) / 5
                         for c in range(3)])
    np.testing.assert_allclose(np.asarray(grad["projection"]["embedding"]), expected,
                               rtol=1e-5, atol=1e-6)
    # what every class shares gets no gradient: moving all embeddings alike changes no score
    np.testing.assert_allclose(expected.sum(0), 0.0, atol=1e-12)
    shifted = {**params, "projection": {"embedding": params["projection"]["embedding"] + 0.5}}
    np.testing.assert_allclose(critic.apply({"params": shifted}, x, train=False, labels=labels),
                               critic.apply({"params": params}, x, train=False, labels=labels),
                               rtol=1e-6, atol=1e-6)
