import errno
import json
import re

import matplotlib.image
import numpy as np
import orbax.checkpoint as ocp
import pytest
from rich.console import Console

from wgan_jax.cli import sample
from wgan_jax.eval import report, viz
from wgan_jax.train import loop
from wgan_jax.errors import UserError, WriteFailed
from wgan_jax.ckpt import Checkpoints
from wgan_jax.eval.evaluator import Evaluator

from conftest import TINY, leaves, target


def test_due_marks_the_end_of_each_interval_and_zero_means_never():
    assert [i for i in range(1, 13) if loop.due(4, i)] == [4, 8, 12]
    assert not any(loop.due(0, i) for i in range(1, 100))


def test_outputs_fall_on_their_intervals_and_the_last_iteration(tmp_path):
    config = TINY.replace(iterations=7, log_every=3, sample_every=2,
                                 checkpoint_every=5, keep_checkpoints=5)
    loop.run(config, tmp_path / "w")
    logged = [json.loads(line)["iteration"]
              for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [3, 6, 7]  # the last, partial interval is logged too
    grids = sorted(p.name for p in (tmp_path / "w" / "samples").iterdir())
    assert grids == ["final.png", "iter_000002.png", "iter_000004.png", "iter_000006.png"]
    assert sorted(int(p.name) for p in (tmp_path / "w" / "checkpoints").iterdir()
                  if p.name.isdigit()) == [5, 7]


@pytest.mark.slow
def test_cifar10_through_tfds_trains_colour_networks(tmp_path):
    """cifar10 comes through tfds.data_source (mock data here: no network); the networks take its
    32x32x3 shape from the data, and evaluation is switched off for want of a classifier."""
    tfds = pytest.importorskip("tensorflow_datasets")
    config = TINY.replace(data="cifar10", iterations=2, eval_every=2)
    with tfds.testing.mock_data(num_examples=16):
        loop.run(config, tmp_path / "w")
    saved = json.loads((tmp_path / "w" / "config.json").read_text())
    assert saved["nets"]["image_shape"] == [32, 32, 3] and saved["dataset_source"] == "tfds:cifar10"
    grid = matplotlib.image.imread(tmp_path / "w" / "samples" / "final.png")
    assert grid.shape == (2 * (5 * 34 + 2), 2 * (5 * 34 + 2), 4)  # RGBA from RGB tiles
    assert not any("fd_" in line for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines())


@pytest.mark.slow
def test_the_best_scoring_checkpoint_is_kept_beside_the_newest(tmp_path, monkeypatch):
    """Quality goes up, then down (scripted fd 5, 3, 4 at iterations 1, 2, 3): the best
    checkpoint is iteration 2's, the state that scored 3, and --step best reads it."""
    scores = iter([5.0, 3.0, 4.0])
    real_finish = Evaluator.finish
    monkeypatch.setattr(Evaluator, "finish",
                        lambda self, outputs: {**real_finish(self, outputs), "fd_mnist": next(scores)})
    config = TINY.replace(iterations=3, log_every=1, eval_every=1, eval_samples=100,
                                 checkpoint_every=1, keep_checkpoints=5)
    workdir = tmp_path / "w"
    loop.run(config, workdir)
    monkeypatch.undo()  # real scores from here on
    best = Checkpoints(workdir, best=True)
    try:
        assert best.manager.all_steps() == [2]
        assert best.metadata()["score"] == {"fd": 3.0, "iteration": 2}
        kept = best.restore(target(config))
    finally:
        best.close()
    newest = Checkpoints(workdir)
    try:
        assert newest.manager.all_steps() == [1, 2, 3]
        second = newest.restore(target(config), 2)
    finally:
        newest.close()
    for a, b in zip(leaves(kept), leaves(second)):
        np.testing.assert_array_equal(a, b)
    outs = [tmp_path / f"{step}.npz" for step in ("best", "2")]
    for step, out in zip(("best", "2"), outs):
        assert sample.main([str(workdir), "--step", step, "--n", "4", "--format", "npz",
                            "--out", str(out)]) == 0
    np.testing.assert_array_equal(*(np.load(out)["images"] for out in outs))
    assert report.report(workdir, 100, "best")["iteration"] == 2


def test_step_best_without_evaluation_is_a_one_line_error(tmp_path, capsys):
    loop.run(TINY.replace(iterations=1), tmp_path / "w")
    assert sample.main([str(tmp_path / "w"), "--step", "best"]) == 2
    assert "has no best checkpoint" in capsys.readouterr().err
    assert sample.main([str(tmp_path / "w"), "--step", "last"]) == 2
    assert "--step must be an iteration or 'best', got 'last'" in capsys.readouterr().err


def _fail_on_call(real, count):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == count:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    return failing


@pytest.mark.parametrize("where, patch, message", [
    ("a sample grid", lambda m: m.setattr(viz, "save_grid", _fail_on_call(viz.save_grid, 3)),
     # a grid is read back after the next chunk is dispatched: iteration 3's checkpoint is saved
     r"cannot write \S+/samples/iter_000003.png: No space left on device; the last complete "
     r"checkpoint \(iteration 3\)"),
    ("the loss plot", lambda m: m.setattr(viz, "plot_losses", _fail_on_call(viz.plot_losses, 1)),
     r"metrics.jsonl or losses.png: No space left on device; the last complete checkpoint "
     r"\(iteration 4\)"),
    ("a checkpoint", lambda m: m.setattr(ocp.CheckpointManager, "save",
                                         _fail_on_call(ocp.CheckpointManager.save, 3)),
     r"cannot write a checkpoint in \S+: No space left on device; the last complete checkpoint "
     r"\(iteration 2\)"),
])
def test_an_oserror_while_writing_is_one_write_failure_and_the_run_resumes(
        tmp_path, monkeypatch, where, patch, message):
    config = TINY.replace(iterations=4, log_every=1, sample_every=1,
                                 checkpoint_every=1)
    patch(monkeypatch)
    with pytest.raises(WriteFailed, match=message) as info:
        loop.run(config, tmp_path / "w")
    assert "\n" not in str(info.value) and "resume with: python train.py" in str(info.value)
    monkeypatch.undo()
    if "iteration 4" not in message:  # space freed: the run goes on from its last checkpoint
        loop.run(config, tmp_path / "w", resume=True)
    lines = (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2, 3, 4]


@pytest.mark.slow
def test_the_progress_bar_a_failed_run_leaves_says_where_it_stopped(tmp_path, monkeypatch):
    """Logs every 10 iterations, a checkpoint write fails at the third: the bar left on the
    terminal counts 3 iterations, not the 0 of the last log."""
    monkeypatch.setattr(ocp.CheckpointManager, "save", _fail_on_call(ocp.CheckpointManager.save, 3))
    console = Console(record=True, width=100, force_terminal=False)
    with pytest.raises(WriteFailed, match=r"\(iteration 2\)"):
        loop.run(TINY.replace(iterations=8, log_every=10, checkpoint_every=1),
                 tmp_path / "w", console)
    assert re.search(r"\b3/8 iterations", console.export_text()), console.export_text()


@pytest.mark.slow
def test_a_conditional_run_is_scored_by_the_class_it_asked_for(tmp_path):
    config = TINY.replace(iterations=2, eval_every=2, eval_samples=100, conditional=True)
    loop.run(config, tmp_path / "w")
    saved = json.loads((tmp_path / "w" / "config.json").read_text())
    assert saved["nets"]["conditional"] and saved["nets"]["num_classes"] == 10
    final = [json.loads(line) for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["kind"] == "eval" and 0 <= final["conditional_accuracy"] <= 1
    assert len(final["class_accuracy"]) == 10 and "fd_mnist" in final


def test_conditional_training_needs_labels(tmp_path):
    pictures = tmp_path / "flat"
    pictures.mkdir()
    for i in range(4):
        matplotlib.image.imsave(pictures / f"{i}.png", np.full((8, 8), i * 60, np.uint8), cmap="gray")
    config = TINY.replace(data=str(pictures), conditional=True, gen_channels=(4,),
                                 batch_size=2, holdout=0.0)
    with pytest.raises(UserError, match="--conditional needs labelled images") as info:
        loop.run(config, tmp_path / "w")
    assert "\n" not in str(info.value)
