"""Runs written by earlier code still resume, sample and export, and resume to exactly what a
fresh run computes: tests/reference/run-2026-12-06 (written by commit f02ea31, before the package
was laid out in folders; its config.json and checkpoint metadata hold the flat config) and
run-2026-12-06-sections (written by the first code with the config in sections). Both are the
tiny config, 2 iterations, an averaged generator."""

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from wgan_jax import pretrained
from wgan_jax.ckpt import read_states
from wgan_jax.cli import export as export_cli, sample as sample_cli
from wgan_jax.config import from_dict, load_file
from wgan_jax.core.runs import init_states
from wgan_jax.train import loop

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


@pytest.fixture(params=["run-2026-12-06", "run-2026-12-06-sections"])
def old_run(request, tmp_path):
    """A copy of an old run (resuming writes into it)."""
    return Path(shutil.copytree(REFERENCE / request.param, tmp_path / "old"))


def test_the_reference_runs_hold_both_config_formats():
    flat, sections = (json.loads((REFERENCE / name / "config.json").read_text())
                      for name in ("run-2026-12-06", "run-2026-12-06-sections"))
    assert flat["lr"] == 5e-5 and "nets" not in flat
    assert sections["runs"]["lr"] == 5e-5 and "lr" not in sections
    assert from_dict(load_file(str(REFERENCE / "run-2026-12-06" / "config.json"))) == \
        from_dict(load_file(str(REFERENCE / "run-2026-12-06-sections" / "config.json")))


def config_of(workdir):
    """The run's config as `train.py --config WORKDIR/config.json` reads it."""
    return from_dict(load_file(str(workdir / "config.json")))


@pytest.mark.slow
def test_an_old_run_resumes_to_what_a_fresh_run_computes(old_run, tmp_path):
    config = config_of(old_run).replace(iterations=3)
    loop.run(config, old_run, resume=True)
    loop.run(config, tmp_path / "fresh")
    old, fresh = (read_states(w, None, init_states).states for w in (old_run, tmp_path / "fresh"))
    assert int(old.step[0]) == int(fresh.step[0]) == 3
    for a, b in zip(jax.tree_util.tree_leaves(old), jax.tree_util.tree_leaves(fresh)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_an_old_run_samples_and_exports(old_run, tmp_path):
    out = tmp_path / "grid.npz"
    assert sample_cli.main([str(old_run), "--n", "4", "--format", "npz", "--out", str(out)]) == 0
    with np.load(out) as saved:
        assert saved["images"].shape == (4, 28, 28, 1)
    assert export_cli.main([str(old_run), "--name", "old", "--samples", "100", "--fid", "off",
                            "--out", str(tmp_path / "gens")]) == 0
    shipped = pretrained.load("old", where=tmp_path / "gens")
    assert shipped.card["iterations"] == 2 and shipped.card["averaged"]
