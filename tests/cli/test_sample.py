"""python -m wgan_jax.cli.sample: images from a run's checkpoint (or a batched run's), reproducible
from the seed, in every output format, and one-line errors for every bad argument."""


import matplotlib.image
import numpy as np
import pytest

from wgan_jax import sample
from wgan_jax.train import loop
from wgan_jax.core.runs import init_states, run_configs
from wgan_jax.eval import viz
from wgan_jax.core import generation
from wgan_jax.ckpt import read_states
from wgan_jax.core.state import select
from wgan_jax.cli import sample as sample_cli

from conftest import TINY


def npz(workdir, tmp_path, *flags, name="a.npz"):
    out = tmp_path / name
    assert sample_cli.main([str(workdir), "--format", "npz", "--out", str(out), *flags]) == 0
    return np.load(out)["images"]


def test_the_same_seed_gives_the_same_images_and_the_npz_is_uint8(tiny_run, tmp_path):
    a = npz(tiny_run, tmp_path, "--n", "6", "--seed", "3")
    b = npz(tiny_run, tmp_path, "--n", "6", "--seed", "3", name="b.npz")
    c = npz(tiny_run, tmp_path, "--n", "6", "--seed", "4", name="c.npz")
    assert a.shape == (6, 28, 28, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_images_are_the_averaged_generators_at_the_chosen_step(tiny_run, tmp_path):
    config = TINY.replace(iterations=2, checkpoint_every=1, ema=0.5)
    state = select(read_states(tiny_run, 1, init_states).states, 0)
    z = sample.latents(config, 5, 0)
    expected = viz.to_uint8(generation.generate(state, z, config.program()))  # averaged (ema on)
    np.testing.assert_array_equal(npz(tiny_run, tmp_path, "--n", "5", "--step", "1"), expected)
    raw = viz.to_uint8(generation.generate(state, z, config.program(), averaged=False))
    assert not np.array_equal(expected, raw)


def test_interpolation_rows_end_at_the_generators_images_of_their_end_points(tiny_run, tmp_path):
    images = npz(tiny_run, tmp_path, "--interpolate", "2", "--seed", "1")
    assert images.shape == (2 * sample.INTERPOLATION_STEPS, 28, 28, 1)
    config, variables = sample.from_run(tiny_run)
    ends = sample.latents(config, 4, 1)
    expected = viz.to_uint8(sample.draw(variables, config, ends))
    rows = images.reshape(2, sample.INTERPOLATION_STEPS, 28, 28, 1)
    for r in range(2):
        np.testing.assert_array_equal(rows[r, 0], expected[2 * r])
        np.testing.assert_array_equal(rows[r, -1], expected[2 * r + 1])
    assert not np.array_equal(rows[0, 1], rows[0, 0])  # the path moves between them


def test_slerp_keeps_the_norm_of_orthogonal_unit_vectors():
    z0, z1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    path = np.asarray(sample.slerp(z0, z1, np.linspace(0, 1, 5)))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(path[[0, -1]], [z0, z1], atol=1e-6)
    np.testing.assert_allclose(sample.slerp(z0, z0, np.array([0.5]))[0], z0, atol=1e-6)


def test_grid_and_png_dir_formats(tiny_run, tmp_path):
    assert sample_cli.main([str(tiny_run), "--n", "6", "--out", str(tmp_path / "g.png")]) == 0
    picture = matplotlib.image.imread(tmp_path / "g.png")
    assert picture.shape[:2] == (2 * (2 * 30 + 2), 2 * (3 * 30 + 2))  # 2 rows x 3 columns
    assert sample_cli.main([str(tiny_run), "--n", "3", "--format", "png-dir",
                        "--out", str(tmp_path / "d")]) == 0
    files = sorted((tmp_path / "d").iterdir())
    assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png"]
    assert matplotlib.image.imread(files[0]).shape[:2] == (28, 28)


@pytest.mark.slow
def test_a_batched_run_needs_run_and_gives_that_runs_generator(tmp_path):
    config = TINY.replace(iterations=1, seeds=2, run_clips=(0.01, 0.02))
    loop.run(config, tmp_path / "runs")
    assert sample_cli.main([str(tmp_path / "runs"), "--n", "2"]) == 2
    images = npz(tmp_path / "runs", tmp_path, "--n", "3", "--run", "1")
    states = read_states(tmp_path / "runs", None, init_states).states
    second = run_configs(config)[1].program()
    expected = generation.generate(select(states, 1), sample.latents(second, 3, 0), second)
    np.testing.assert_array_equal(images, viz.to_uint8(expected))


@pytest.mark.parametrize("flags, message", [
    (["--n", "0"], "--n must be between 1 and 100000, got 0"),
    (["--step", "7"], "has no checkpoint at step 7 (it has 1, 2)"),
    (["--run", "3"], "holds one run; --run 3 does not exist"),
    (["--interpolate", "0"], "--interpolate must be between 1 and 1000"),
    (["--pretrained", "mnist"], "give a training workdir or --pretrained NAME (one of them)"),
])
def test_bad_arguments_are_one_line_errors_with_status_2(tiny_run, tmp_path, capsys, flags, message):
    assert sample_cli.main([str(tiny_run), *flags, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "x.png").exists()


def test_a_folder_without_checkpoints_is_a_one_line_error(tmp_path, capsys):
    assert sample_cli.main([str(tmp_path), "--n", "2"]) == 2
    assert "no checkpoints folder" in capsys.readouterr().err
    assert sample_cli.main(["--pretrained", "nonesuch"]) == 2
    assert "no pretrained generator 'nonesuch'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def conditional_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sample") / "conditional"
    loop.run(TINY.replace(iterations=2, conditional=True), workdir)
    return workdir


@pytest.mark.slow
def test_label_draws_that_class_and_all_draws_a_row_per_class(conditional_dir, tmp_path):
    out = tmp_path / "sevens.npz"
    assert sample_cli.main([str(conditional_dir), "--label", "7", "--n", "4", "--format", "npz",
                        "--out", str(out)]) == 0
    sevens = np.load(out)
    assert sevens["labels"].tolist() == [7] * 4 and sevens["images"].shape == (4, 28, 28, 1)
    config, variables = sample.from_run(conditional_dir)
    z = sample.latents(config, 4, 0)
    expected = viz.to_uint8(sample.draw(variables, config, z, np.full(4, 7)))
    np.testing.assert_array_equal(sevens["images"], expected)
    other = viz.to_uint8(sample.draw(variables, config, z, np.full(4, 3)))
    assert not np.array_equal(other, expected)  # the label reaches the generator
    grid = tmp_path / "all.png"
    assert sample_cli.main([str(conditional_dir), "--label", "all", "--n", "30", "--out", str(grid)]) == 0
    # 10 rows (classes) of 3: tiles of 28 + 2 gap, drawn at 2x
    assert matplotlib.image.imread(grid).shape[:2] == (2 * (10 * 30 + 2), 2 * (3 * 30 + 2))


@pytest.mark.slow
@pytest.mark.parametrize("which, label, message", [
    ("conditional", "10", "--label 10 is out of range: this generator draws classes 0..9"),
    ("conditional", "-1", "--label -1 is out of range"),
    ("conditional", "seven", "--label must be a class 0..9 or all, got 'seven'"),
    ("unconditional", "7", "--label 7: this generator is not conditional"),
])
def test_a_bad_label_is_one_line_and_exit_2(conditional_dir, tiny_run, tmp_path, capsys, which,
                                            label, message):
    workdir = conditional_dir if which == "conditional" else tiny_run
    assert sample_cli.main([str(workdir), "--label", label, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}" or (err.startswith("error: ") and message in err)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("fmt, out, expected", [
    (None, "a.npz", "npz"), (None, "a.png", "grid"), (None, "a.JPG", "grid"), (None, "a.webp", "grid"),
    (None, "pngs/", "png-dir"), (None, "pngs", "png-dir"), ("png-dir", "pngs.d", "png-dir"),
    ("npz", "a.npz", "npz"), ("grid", "a.png", "grid"), ("png-dir", "pngs/", "png-dir"),
    ("grid", None, "grid"), ("npz", None, "npz"), (None, None, "grid"),
])
def test_the_format_follows_the_output_path(tmp_path, fmt, out, expected):
    assert sample.output(fmt, out and str(tmp_path / out) + ("/" if out.endswith("/") else ""))[0] == expected


@pytest.mark.parametrize("fmt, out, message", [
    ("grid", "a.npz", "--format grid does not fit --out"),
    ("npz", "a.png", "--format npz does not fit --out"),
    ("png-dir", "a.npz", "--format png-dir does not fit --out"),
    ("npz", "pngs/", "--format npz does not fit --out"),
    (None, "a.txt", "cannot write anything as '.txt'"),
    ("npz", "a.bin", "cannot write npz as '.bin'; use .npz"),
    ("grid", "a.tif", "cannot write grid as '.tif'"),
])
def test_a_format_that_contradicts_the_path_is_one_line(tiny_run, tmp_path, capsys, fmt, out, message):
    flags = ["--format", fmt] if fmt else []
    assert sample_cli.main([str(tiny_run), "--n", "2", *flags, "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_samples_npz_without_format_writes_an_array(tiny_run, tmp_path):
    assert sample_cli.main([str(tiny_run), "--n", "3", "--out", str(tmp_path / "samples.npz")]) == 0
    assert np.load(tmp_path / "samples.npz")["images"].shape == (3, 28, 28, 1)
    existing = tmp_path / "there"
    existing.mkdir()
    assert sample_cli.main([str(tiny_run), "--n", "2", "--out", str(existing)]) == 0
    assert len(list(existing.glob("*.png"))) == 2


def test_a_workdir_locked_by_a_training_run_can_still_be_sampled(tiny_run, tmp_path):
    from wgan_jax.train.lock import WorkdirLock

    with WorkdirLock(tiny_run):
        assert sample_cli.main([str(tiny_run), "--n", "2", "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").is_file()
