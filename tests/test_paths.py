"""Any path a user can type: workdirs, data folders and output paths whose names hold glob
characters, spaces, percent signs, quotes and non-ASCII letters, through every command, end to
end and in-process (train, resume, sample, evaluate, pretrained export, --init-from, a picture
folder), with the messages printing each path verbatim (wgan_jax.paths, wgan_jax.terminal)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wgan_jax import platform, pretrained
from wgan_jax.cli import evaluate as evaluate_cli, export as export_cli, sample as sample_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import train  # noqa: E402  (the top-level train.py, as a user runs it)

# The tests' tiny networks (conftest.TINY) as flags: compiled once for every name.
TINY = ["--batch-size", "8", "--n-critic", "3", "--latent-dim", "16", "--gen-channels", "8,4",
        "--critic-channels", "4,4,8,8", "--log-every", "1", "--sample-every", "2",
        "--eval-every", "0", "--checkpoint-every", "1"]
NAMES = ["[exp1]", "a*b?", "two words", "lr=1e-4 100%", "it's \"quoted\"", "näme-ø"]


def run(main, argv, capsys) -> str:
    """A command's stderr and stdout; fails on a non-zero exit."""
    try:
        status = main(argv)
    except SystemExit as stop:
        status = stop.code
    out = capsys.readouterr()
    assert status == 0, out.err
    return out.err + out.out


def pictures(folder: Path, count: int = 24) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n == "[exp1]" else pytest.mark.slow)
                                  for n in NAMES])
def test_every_command_takes_the_path_as_typed(tmp_path, capsys, name, monkeypatch):
    base = tmp_path / name
    workdir = base / "runs" / name
    err = run(train.main, ["--workdir", str(workdir), "--iterations", "2", *TINY], capsys)
    assert f"outputs in {workdir}" in err or str(workdir) in err  # printed verbatim
    err = run(train.main, ["--workdir", str(workdir), "--resume", "--iterations", "3"], capsys)
    assert "warning" not in err and "damaged" not in err
    out = run(sample_cli.main, [str(workdir), "--n", "4", "--out", str(base / f"{name}.png")], capsys)
    assert (base / f"{name}.png").is_file() and str(base / f"{name}.png") in out
    out = run(evaluate_cli.main, [str(workdir), "--samples", "100"], capsys)
    assert (workdir / "report.md").is_file() and f"Evaluating {workdir}:" in out
    run(export_cli.main, [str(workdir), "--name", "odd", "--samples", "100", "--out",
                          str(base / "gens" / name)], capsys)
    assert pretrained.load("odd", base / "gens" / name).card["iterations"] == 3
    run(train.main, ["--workdir", str(base / f"warm {name}"), "--init-from", f"{workdir}:2",
                     "--iterations", "1", *TINY], capsys)
    folder = pictures(base / f"pics {name}" / name)
    run(train.main, ["--workdir", str(base / f"folder {name}"), "--data", str(folder.parent),
                     "--channels", "1", "--image-size", "28", "--iterations", "1", *TINY], capsys)


def test_hints_print_brackets_verbatim(tmp_path, capsys, monkeypatch):
    """A faked NVIDIA GPU beside this CPU-only JAX: train.py's first line is the install hint,
    with its `.[cuda12]` intact (rich markup would have dropped it), before the CPU estimate."""
    gpus = tmp_path / "gpus"
    (gpus / "0000:01:00.0").mkdir(parents=True)
    monkeypatch.setattr(platform, "NVIDIA_GPUS", gpus)
    err = run(train.main, ["--workdir", str(tmp_path / "[run]"), "--iterations", "1", *TINY],
              capsys)
    lines = err.splitlines()
    assert "`pip install -e '.[cuda12]'`" in lines[0] and "CPU-only build" in lines[0]
    assert "roughly" in lines[1]
