"""train.py as a user runs it: a real subprocess on the real bundled MNIST."""

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

ROOT = Path(__file__).resolve().parents[1]


def train(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "COLUMNS": "120"})


def test_short_quick_run_writes_every_output(tmp_path):
    workdir = tmp_path / "run"
    result = train("--preset", "quick", "--iterations", "6", "--log-every", "2",
                   "--sample-every", "3", "--batch-size", "16", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr
    assert "roughly" in result.stderr  # the CPU notice
    assert "done: 6 iterations" in result.stderr

    config = json.loads((workdir / "config.json").read_text())
    assert config["preset"] == "quick" and config["batch_size"] == 16 and config["iterations"] == 6
    assert config["image_shape"] == [28, 28, 1] and config["dataset_source"] == "mnist (bundled)"

    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [2, 4, 6]
    for r in records:
        assert set(r) == {"iteration", "critic_loss", "generator_loss", "wasserstein_estimate",
                          "seconds"}
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
    (["--n-critic", "0"], "n_critic must be at least 1"),
    (["--iterations", "0"], "iterations must be a positive integer"),
    (["--batch-size", "70000"], "larger than the dataset"),
    (["--data-dir", "/nonexistent/mnist"], "data folder not found"),
    (["--dataset", "no_such_dataset"], "no_such_dataset"),  # not found, or tfds not installed
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
    result = train(*args, "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_every_flag():
    result = train("--help")
    assert result.returncode == 0
    for flag in ("--preset", "--iterations", "--batch-size", "--n-critic", "--clip", "--lr",
                 "--seed", "--workdir", "--dataset", "--data-dir", "--sample-every", "--log-every"):
        assert flag in result.stdout
