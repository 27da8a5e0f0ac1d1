import dataclasses

import pytest

from wgan_jax import PRESETS, Config, UserError, from_preset
from wgan_jax import config as config_lib


def test_default_config_is_the_seed_recipe():
    c = from_preset("seed")
    assert (c.batch_size, c.iterations, c.n_critic, c.clip, c.lr) == (32, 4000, 5, 0.01, 5e-5)
    assert (c.rmsprop_decay, c.rmsprop_eps, c.rmsprop_eps_in_sqrt) == (0.9, 1e-7, False)
    assert c.gen_channels == (128, 64) and c.critic_channels == (16, 32, 64, 128)
    assert (c.bn_momentum, c.bn_eps, c.dropout, c.latent_dim) == (0.8, 1e-3, 0.25, 100)
    assert c == Config()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_round_trip_through_json_dicts(name):
    c = from_preset(name)
    assert config_lib.from_dict(config_lib.to_dict(c)) == c
    hash(c)  # static argument of the jitted steps


def test_overrides_apply_and_none_is_ignored():
    c = from_preset("quick", lr=3e-4, clip=None)
    assert c.lr == 3e-4 and c.clip == from_preset("quick").clip


@pytest.mark.parametrize("field, value, message", [
    ("lr", 0.0, "lr must be a positive"), ("lr", -1e-4, "lr must be a positive"),
    ("lr", float("nan"), "lr must be a positive"), ("clip", 0.0, "clip must be a positive"),
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("iterations", -5, "iterations must be a positive integer"),
    ("n_critic", 0, "n_critic must be at least 1"),
    ("log_every", 0, "log_every must be a positive integer"),
    ("rmsprop_decay", 1.0, "rmsprop_decay must be in"),
    ("image_shape", (30, 30, 1), "multiples of 4"),
    ("image_size", 2, "image_size must be 0"), ("channels", 2, "channels must be 1"),
    ("holdout", 0.9, "holdout must be in"), ("eval_fid", "maybe", "eval_fid must be one of"),
    ("arch", "resnet", "arch must be one of seed, dcgan"), ("data", "", "data must name"),
    ("loss", "hinge", "loss must be one of wgan, dcgan, wgan-gp"),
    ("optimizer", "sgd", "optimizer must be one of"),
    ("ema", 1.0, "ema must be in"), ("ema", -0.1, "ema must be in"),
    ("ema_stats", "fresh", "ema_stats must be one of"),
    ("critic_norm", "group", "critic_norm must be one of"),
    ("clip_when", "never", "clip_when must be one of"),
    ("adam_b2", 1.0, "adam_b2 must be in"),
    ("gp_weight", 0.0, "gp_weight must be a positive"),
    ("eval_every", -1, "eval_every must be >= 0"),
])
def test_bad_values_raise_a_one_line_user_error(field, value, message):
    with pytest.raises(UserError, match=message) as info:
        dataclasses.replace(Config(), **{field: value}).validate()
    assert "\n" not in str(info.value)


def test_unknown_preset_and_field():
    with pytest.raises(UserError, match="unknown preset 'fast'"):
        from_preset("fast")
    with pytest.raises(UserError, match="unknown config field"):
        config_lib.from_dict({"learning_rate": 1.0})


def test_each_loss_brings_its_published_optimizer_unless_set():
    dcgan = from_preset("seed", loss="dcgan")
    assert (dcgan.optimizer, dcgan.lr, dcgan.adam_b1, dcgan.adam_b2) == ("adam", 2e-4, 0.5, 0.999)
    gp = from_preset("seed", loss="wgan-gp")
    assert (gp.optimizer, gp.lr, gp.adam_b1, gp.adam_b2) == ("adam", 1e-4, 0.0, 0.9)
    assert gp.critic_norm == "layer" and gp.dropout == 0.0  # the paper's critics have none
    assert from_preset("seed", loss="wgan-gp", lr=3e-4, adam_b1=0.5).adam_b1 == 0.5
    assert from_preset("seed", loss="wgan-gp", lr=3e-4).lr == 3e-4
    assert from_preset("seed", loss="wgan") == from_preset("seed")


@pytest.mark.parametrize("fields, message", [
    (dict(loss="wgan-gp"), "wgan-gp needs a critic without BatchNorm"),
    (dict(loss="wgan-gp", critic_norm="none", keras_exact=True), "keras_exact splits"),
])
def test_contradictory_rules_are_refused(fields, message):
    with pytest.raises(UserError, match=message):
        dataclasses.replace(Config(), **fields).validate()


def test_parity_presets_follow_their_references():
    paper, official, keras = (from_preset(p) for p in ("paper", "official", "keras-exact"))
    assert (paper.batch_size, paper.n_critic, paper.clip, paper.clip_when) == (64, 5, 0.01, "after")
    assert (official.batch_size, official.clip_when, official.critic_schedule) == (64, "before", "official")
    assert (official.rmsprop_decay, official.rmsprop_eps, official.rmsprop_eps_in_sqrt) == (0.99, 1e-8, False)
    assert official.fake_batches == "train-update" and not official.clip_batch_stats
    assert keras.keras_exact and keras.clip_batch_stats and keras.fake_batches == "inference"
    assert (keras.batch_size, keras.iterations, keras.rmsprop_decay, keras.rmsprop_eps) == (32, 4000, 0.9, 1e-7)


def test_every_field_belongs_to_exactly_one_part():
    """The StepConfig part is what the programs compile and a resume keeps; the RunConfig part
    only the host reads. A field in neither (declared on Config itself) or in both fails here."""
    step = {f.name for f in dataclasses.fields(config_lib.StepConfig)}
    run = {f.name for f in dataclasses.fields(config_lib.RunConfig)}
    assert not step & run, step & run
    assert {f.name for f in dataclasses.fields(Config)} == step | run
    assert {"iterations", "log_every", "devices", "data", "image_size", "seed_batching"} <= run
    assert {"loss", "clip", "lr", "seed", "seeds", "gen_channels", "image_shape", "arch"} <= step


def test_the_compiled_part_ignores_run_fields_and_resume_compares_it():
    base = from_preset("quick")
    longer = dataclasses.replace(base, iterations=9000, log_every=7, devices=2, eval_every=0)
    assert longer.step() == base.step() and hash(longer.step()) == hash(base.step())
    assert isinstance(base.step(), config_lib.StepConfig) and not isinstance(base.step(), Config)
    assert config_lib.step_differences(base, longer) == []
    other = dataclasses.replace(base, clip=0.05, seed=3)
    assert other.step() != base.step()
    assert config_lib.step_differences(base, other) == ["clip: 0.1 -> 0.05", "seed: 0 -> 3"]


def test_configs_written_before_the_data_registry_read_as_data_specs():
    assert config_lib.from_dict({"dataset": "fashion_mnist", "data_dir": None}).data == "fashion_mnist"
    assert config_lib.from_dict({"dataset": "mnist", "data_dir": "/d"}).data == "idx:/d"
    assert from_preset("seed", dataset="cifar10").data == "cifar10"


def test_arch_dcgan_brings_the_authors_batchnorm_unless_set():
    dcgan = from_preset("seed", arch="dcgan", image_size=32)
    assert (dcgan.bn_momentum, dcgan.bn_eps, dcgan.dropout) == (0.9, 1e-5, 0.0)
    assert from_preset("seed", arch="dcgan", image_size=32, bn_eps=1e-3).bn_eps == 1e-3
    official = from_preset("official")
    assert (official.arch, official.image_size, official.ngf, official.ndf) == ("dcgan", 64, 64, 64)
