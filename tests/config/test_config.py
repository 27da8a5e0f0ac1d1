import dataclasses

import pytest

from wgan_jax import PRESETS, Config, UserError, from_preset
from wgan_jax import config as config_lib


def test_default_config_is_the_seed_recipe():
    c = from_preset("seed")
    assert (c.algorithm.batch_size, c.training.iterations, c.algorithm.n_critic) == (32, 4000, 5)
    assert (c.runs.clip, c.runs.lr) == (0.01, 5e-5)
    assert (c.optim.rmsprop_decay, c.optim.rmsprop_eps, c.optim.rmsprop_eps_in_sqrt) == \
        (0.9, 1e-7, False)
    assert c.nets.gen_channels == (128, 64) and c.nets.critic_channels == (16, 32, 64, 128)
    assert (c.nets.bn_momentum, c.nets.bn_eps, c.nets.dropout, c.nets.latent_dim) == \
        (0.8, 1e-3, 0.25, 100)
    assert c == Config()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_round_trip_through_json_dicts(name):
    c = from_preset(name)
    assert config_lib.from_dict(config_lib.to_dict(c)) == c
    hash(c)  # static argument of the jitted steps


def test_overrides_apply_and_none_is_ignored():
    c = from_preset("quick", lr=3e-4, clip=None)
    assert c.runs.lr == 3e-4 and c.runs.clip == from_preset("quick").runs.clip


@pytest.mark.parametrize("field, value, message", [
    ("lr", 0.0, "lr must be a positive"), ("lr", -1e-4, "lr must be a positive"),
    ("lr", float("nan"), "lr must be a positive"), ("clip", 0.0, "clip must be a positive"),
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("iterations", -5, "iterations must be a positive integer"),
    ("n_critic", 0, "n_critic must be a positive integer"),
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
        Config().replace(**{field: value}).validate()
    assert "\n" not in str(info.value)


def test_unknown_preset_and_field():
    with pytest.raises(UserError, match="unknown preset 'fast'"):
        from_preset("fast")
    with pytest.raises(UserError, match="unknown config field"):
        config_lib.from_dict({"learning_rate": 1.0})


def test_each_loss_brings_its_published_optimizer_unless_set():
    dcgan = from_preset("seed", loss="dcgan")
    assert (dcgan.optim, dcgan.runs.lr) == (config_lib.Optim("adam", adam_b1=0.5, adam_b2=0.999), 2e-4)
    gp = from_preset("seed", loss="wgan-gp")
    assert (gp.optim, gp.runs.lr) == (config_lib.Optim("adam", adam_b1=0.0, adam_b2=0.9), 1e-4)
    assert gp.nets.critic_norm == "layer" and gp.nets.dropout == 0.0  # the paper's critics have none
    assert from_preset("seed", loss="wgan-gp", lr=3e-4, adam_b1=0.5).optim.adam_b1 == 0.5
    assert from_preset("seed", loss="wgan-gp", lr=3e-4).runs.lr == 3e-4
    assert from_preset("seed", loss="wgan") == from_preset("seed")


@pytest.mark.parametrize("fields, message", [
    (dict(loss="wgan-gp"), "wgan-gp needs a critic without BatchNorm"),
    (dict(loss="wgan-gp", critic_norm="none", keras_exact=True), "keras_exact splits"),
])
def test_contradictory_rules_are_refused(fields, message):
    with pytest.raises(UserError, match=message):
        Config().replace(**fields).validate()


def test_parity_presets_follow_their_references():
    paper, official, keras = (from_preset(p) for p in ("paper", "official", "keras-exact"))
    assert paper.algorithm == config_lib.Algorithm(batch_size=64, n_critic=5, clip_when="after")
    assert paper.runs.clip == 0.01
    assert official.algorithm == config_lib.Algorithm(
        batch_size=64, clip_when="before", critic_schedule="official", fake_batches="train-update")
    assert official.optim == config_lib.Optim(rmsprop_decay=0.99, rmsprop_eps=1e-8)
    assert keras.algorithm == config_lib.Algorithm(keras_exact=True, clip_batch_stats=True,
                                                   fake_batches="inference")
    assert (keras.training.iterations, keras.optim) == (4000, config_lib.Optim())


def test_every_field_has_one_flat_name_and_one_section():
    """The sections hold the fields; each has a flat name no other field has (from_preset,
    --set, the flags and the flat config.json of older runs use it)."""
    sections = [getattr(Config(), name) for name in config_lib.SECTIONS]
    fields = [(type(s).__name__, f.name) for s in sections for f in dataclasses.fields(s)]
    assert len(config_lib.FIELDS) == len(fields) + 1  # and the top-level preset
    assert config_lib.FIELDS["data"][0] == "data" and config_lib.FIELDS["data"][1].name == "source"
    assert config_lib.FIELDS["data_placement"][1].name == "placement"
    assert {name for _, name in fields} - set(config_lib.FIELDS) == {"source", "placement"}
    assert [f.name for f in dataclasses.fields(Config)] == ["preset", *config_lib.SECTIONS]


def test_the_program_is_the_compiled_sections_and_resume_compares_the_kept_ones():
    base = from_preset("quick")
    longer = base.replace(iterations=9000, log_every=7, devices=2, eval_every=0, data="cifar10")
    assert longer.program() == base.program() and hash(longer.program()) == hash(base.program())
    assert [f.name for f in dataclasses.fields(base.program())] == list(config_lib.COMPILED)
    assert config_lib.resume_differences(base, longer) == []
    other = base.replace(clip=0.05, seed=3)
    assert other.program() == base.program()  # the state carries them
    assert config_lib.resume_differences(base, other) == ["runs.seed: 0 -> 3",
                                                         "runs.clip: 0.1 -> 0.05"]
    wider = base.replace(gen_channels=(64, 64), preset="seed")
    assert wider.program() != base.program()
    assert config_lib.resume_differences(base, wider) == [
        "preset: 'quick' -> 'seed'", "nets.gen_channels: (64, 32) -> (64, 64)"]
    with pytest.raises(ValueError, match="iterations is in section training"):
        base.program().replace(iterations=3)


def test_to_dict_writes_sections_and_from_dict_reads_them_flat_or_mixed():
    config = from_preset("quick", conditional=True)
    written = config_lib.to_dict(config)
    assert written["nets"]["gen_channels"] == [64, 32] and written["data"]["source"] == "mnist"
    assert written["preset"] == "quick" and set(written) == {"preset", *config_lib.SECTIONS}
    flat = {key: getattr(getattr(config, section), field.name) if section else config.preset
            for key, (section, field) in config_lib.FIELDS.items()}
    assert config_lib.from_dict(flat) == config
    mixed = {"nets": {"conditional": True}, "algorithm": {"n_critic": 3}, "preset": "quick",
             "lr": 2e-4, "iterations": 2730, "gen_channels": [64, 32], "clip": 0.1, "dropout": 0.0,
             "sample_every": 200, "log_every": 25}
    assert config_lib.from_dict(mixed) == config
    with pytest.raises(UserError, match=r"unknown config field\(s\): nets.width"):
        config_lib.from_dict({"nets": {"width": 3}})


def test_configs_written_before_the_data_registry_read_as_data_specs():
    read = config_lib.from_dict({"dataset": "fashion_mnist", "data_dir": None})
    assert read.data.source == "fashion_mnist"
    assert config_lib.from_dict({"dataset": "mnist", "data_dir": "/d"}).data.source == "idx:/d"
    assert from_preset("seed", dataset="cifar10").data.source == "cifar10"


def test_arch_dcgan_brings_the_authors_batchnorm_unless_set():
    dcgan = from_preset("seed", arch="dcgan", image_size=32)
    assert (dcgan.nets.bn_momentum, dcgan.nets.bn_eps, dcgan.nets.dropout) == (0.9, 1e-5, 0.0)
    assert from_preset("seed", arch="dcgan", image_size=32, bn_eps=1e-3).nets.bn_eps == 1e-3
    official = from_preset("official")
    assert (official.nets.arch, official.data.image_size, official.nets.ngf, official.nets.ndf) == \
        ("dcgan", 64, 64, 64)
