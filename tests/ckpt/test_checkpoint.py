"""Checkpoints: exact resume, atomic writes, refusal of a checkpoint that does not fit."""

import dataclasses
import io
import json
import shutil
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from rich.console import Console

from wgan_jax import UserError, data, init_state
from wgan_jax.train import loop, programs
from wgan_jax import config as config_lib
from wgan_jax.ckpt import Checkpoints
from wgan_jax.train.workdirs import resumed_config
from wgan_jax.core.state import select

from conftest import TINY, leaves, target

RUN = TINY.replace(iterations=4, log_every=1, sample_every=2, checkpoint_every=2)


def records(workdir):
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def final_state(workdir, config):
    manager = Checkpoints(workdir)
    try:
        return select(manager.restore(target(config)), 0)
    finally:
        manager.close()


def compilations(config):
    """Programs compiled so far for `config`'s runs on this machine (the loop's, cached)."""
    built = programs.build(config, programs.batching(config), programs.device_mesh(config))
    return built.train._cache_size() + built.generate._cache_size()


@pytest.mark.slow
def test_resumed_run_is_bitwise_identical_to_an_uninterrupted_one(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run = RUN.replace(eval_every=2, eval_samples=100)  # evaluation must resume too
    before = compilations(run)  # the programs are shared with any test of the same program key
    loop.run(run, straight)
    compiled = compilations(run)
    loop.run(run.replace(iterations=2), resumed)
    assert not (resumed / "samples" / "iter_000004.png").exists()
    loop.run(run, resumed, resume=True)
    # run length is not part of the compiled programs: the three runs share one compilation
    assert compiled == compilations(run) and compiled - before <= 2

    a, b = final_state(straight, RUN), final_state(resumed, RUN)
    assert int(a.step) == int(b.step) == 4
    assert int(a.critic_updates) == int(b.critic_updates) == 4 * RUN.algorithm.n_critic
    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_array_equal(x, y)  # bitwise, every leaf, key and counters included
    assert records(straight) == records(resumed)
    assert [r["iteration"] for r in records(resumed)] == [1, 2, 2, 3, 4, 4]
    assert "fd_mnist" in records(resumed)[2] and "fd_mnist" in records(resumed)[5]


@pytest.mark.slow
def test_resume_with_generator_averaging_is_bitwise_exact_and_scores_both_generators(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run = RUN.replace(ema=0.5, eval_every=2, eval_samples=100)
    loop.run(run, straight)
    loop.run(run.replace(iterations=2), resumed)
    loop.run(run, resumed, resume=True)
    a, b = final_state(straight, run), final_state(resumed, run)
    assert jax.tree_util.tree_structure(a.ema["params"]) == jax.tree_util.tree_structure(a.gen.params)
    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_array_equal(x, y)  # the average included
    assert records(straight) == records(resumed)
    evaluations = [r for r in records(resumed) if "fd_mnist" in r]
    assert [r["iteration"] for r in evaluations] == [2, 4]
    assert all(r["fd_mnist_raw"] != r["fd_mnist"] for r in evaluations)


@pytest.mark.slow
def test_only_the_newest_checkpoints_are_kept_and_hold_config_and_dataset(tmp_path):
    config = RUN.replace(iterations=4, checkpoint_every=1, keep_checkpoints=2)
    loop.run(config, tmp_path / "w")
    manager = Checkpoints(tmp_path / "w")
    assert manager.manager.all_steps() == [3, 4]
    meta = manager.metadata()
    manager.close()
    assert meta["config"]["runs"]["lr"] == config.runs.lr
    assert meta["config"]["nets"]["image_shape"] == [28, 28, 1]
    identity = data.load_bundled_mnist().identity()
    assert meta["dataset"] == identity and identity["shape"] == [60000, 28, 28, 1]


@pytest.mark.slow
def test_a_crash_mid_write_leaves_the_previous_checkpoint_latest(tmp_path):
    workdir = tmp_path / "w"
    loop.run(RUN.replace(iterations=2), workdir)
    # What a process killed while orbax writes step 3 leaves: an unfinished temporary folder.
    partial = workdir / "checkpoints" / "3.orbax-checkpoint-tmp-1700000000000000"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\x00" * 100)
    manager = Checkpoints(workdir)
    assert manager.latest() == 2
    manager.close()
    loop.run(RUN.replace(iterations=3), workdir, resume=True)
    assert final_state(workdir, RUN).step == 3


@pytest.mark.slow
def test_a_checkpoint_of_other_networks_is_refused(tmp_path):
    loop.run(RUN.replace(iterations=2), tmp_path / "w")
    manager = Checkpoints(tmp_path / "w")
    wider = RUN.replace(gen_channels=(16, 4))
    with pytest.raises(UserError, match="does not match this config's networks") as info:
        manager.restore(target(wider))
    manager.close()
    assert "\n" not in str(info.value)


def test_a_checkpoint_of_an_older_state_layout_is_refused_in_one_line(tmp_path, capsys):
    """Before the networks became NetStates with a leading run axis, a checkpoint held
    gen_params, critic_opt, ... and its config iters_per_dispatch: never misread, each way in
    gives one line that names the incompatibility."""
    state = init_state(RUN, jax.random.PRNGKey(0))
    old_layout = {"gen_params": state.gen.params, "gen_stats": state.gen.stats,
                  "critic_params": state.critic.params, "critic_stats": state.critic.stats,
                  "gen_opt": state.gen.opt, "critic_opt": state.critic.opt, "key": state.key,
                  "lr": state.lr_critic, "clip": state.clip, "step": state.step,
                  "critic_updates": state.critic_updates}
    workdir = tmp_path / "w"
    manager = Checkpoints(workdir)
    meta = {"config": {**config_lib.to_dict(RUN), "iters_per_dispatch": 1},
            "dataset": data.load_bundled_mnist().identity()}
    manager.manager.save(2, args=ocp.args.Composite(state=ocp.args.StandardSave(old_layout),
                                                    meta=ocp.args.JsonSave(meta)))
    manager.close()
    manager = Checkpoints(workdir)
    with pytest.raises(UserError, match=r"has the state layout of an older wgan_jax \(with "
                                        r"critic_opt, critic_params, .*cannot read it") as layout:
        manager.restore(target(RUN))
    manager.close()
    with pytest.raises(UserError, match=r"hold a config this version does not read \(unknown "
                                        r"config field\(s\): iters_per_dispatch\); were they "
                                        r"written by an older wgan_jax\?") as config:
        resumed_config(workdir)
    with pytest.raises(UserError, match="state layout of an older wgan_jax") as resume:
        loop.run(RUN.replace(iterations=4), workdir, resume=True)
    for error in (layout, config, resume):
        assert "\n" not in str(error.value)
    assert "warning" not in capsys.readouterr().err  # refused, not skipped as damaged


def test_resume_refuses_changed_data(tmp_path, monkeypatch):
    loop.run(RUN.replace(iterations=2), tmp_path / "w")
    real = data.load_splits

    def altered(*args, **kwargs):
        splits = real(*args, **kwargs)
        images = splits.train.images.copy()
        images[0, 0, 0, 0] ^= 1
        return dataclasses.replace(splits, train=dataclasses.replace(splits.train, images=images))

    monkeypatch.setattr(data, "load_splits", altered)
    with pytest.raises(UserError, match="the checkpoint was trained on mnist"):
        loop.run(RUN, tmp_path / "w", resume=True)


@pytest.mark.slow
def test_non_finite_training_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    absurd = RUN.replace(lr=1e30, iterations=6, checkpoint_every=1)
    with pytest.raises(loop.TrainingDiverged, match=r"non-finite .* at iteration 2; the last good "
                                                    r"checkpoint \(iteration 1\)") as info:
        loop.run(absurd, tmp_path / "w")
    assert "\n" not in str(info.value)
    state = final_state(tmp_path / "w", absurd)
    assert int(state.step) == 1
    assert all(np.all(np.isfinite(x)) for x in leaves(state.gen.params))


def test_init_state_shapes_match_what_a_checkpoint_restores(tmp_path):
    loop.run(RUN.replace(iterations=1), tmp_path / "w")
    restored = final_state(tmp_path / "w", RUN)
    fresh = init_state(RUN, jax.random.PRNGKey(0))
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(fresh)


@pytest.mark.slow
def test_a_torn_metrics_file_resumes_with_a_notice_and_no_record_twice(tmp_path):
    straight, torn = tmp_path / "straight", tmp_path / "torn"
    run = RUN.replace(iterations=4, checkpoint_every=2)
    loop.run(run, straight)
    loop.run(run.replace(iterations=3), torn)
    # A crash after iteration 3's record (its checkpoint not yet written) and mid-way through
    # writing the next record: a checkpoint at 2, records up to 3, and a torn last line.
    shutil.rmtree(torn / "checkpoints" / "3")
    with open(torn / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 4, "critic_loss": -0.00')
    notices = io.StringIO()
    loop.run(run, torn, console=Console(file=notices, width=200), resume=True)
    assert "dropped 1 damaged line(s)" in notices.getvalue()
    assert "kept the 2 complete records up to iteration 2" in notices.getvalue()
    assert records(torn) == records(straight)
    assert [r["iteration"] for r in records(torn)] == [1, 2, 3, 4]


def _truncate_arrays(step):
    for f in (step / "state").rglob("d/*"):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _garbage_metadata(step):
    (step / "state" / "_METADATA").write_bytes(b"\x00garbage{")


def _empty(step):
    for child in step.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


DAMAGE = {"truncated arrays": _truncate_arrays,
          "deleted metadata": lambda step: (step / "state" / "_METADATA").unlink(),
          "garbage metadata": _garbage_metadata, "empty folder": _empty}


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("damaged") / "w"
    loop.run(RUN.replace(iterations=3, checkpoint_every=1), workdir)
    return workdir


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_latest_checkpoint_is_skipped_with_a_warning(three_checkpoints, tmp_path,
                                                               capsys, damage):
    workdir = tmp_path / "w"
    shutil.copytree(three_checkpoints, workdir)
    DAMAGE[damage](workdir / "checkpoints" / "3")
    manager = Checkpoints(workdir)
    try:
        state = select(manager.restore(target(RUN)), 0)
        older = select(manager.restore(target(RUN), 2), 0)
    finally:
        manager.close()
    assert int(state.step) == 2
    for x, y in zip(leaves(state), leaves(older)):
        np.testing.assert_array_equal(x, y)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "checkpoints/3 is damaged" in warnings[0]
    # asked for by step, the damaged one is an error, not a silent substitute
    manager = Checkpoints(workdir)
    try:
        with pytest.raises(UserError, match=r"checkpoints/3 is damaged \("):
            manager.restore(target(RUN), 3)
    finally:
        manager.close()


@pytest.mark.slow
def test_resume_falls_back_to_the_newest_intact_checkpoint_and_resume_from_picks_one(
        three_checkpoints, tmp_path):
    straight = tmp_path / "straight"
    loop.run(RUN.replace(iterations=4, checkpoint_every=1), straight)
    workdir = tmp_path / "w"
    shutil.copytree(three_checkpoints, workdir)
    _truncate_arrays(workdir / "checkpoints" / "3")
    run = RUN.replace(iterations=4, checkpoint_every=1)
    loop.run(run, workdir, resume=True)  # from 2, the newest intact one
    assert records(workdir) == records(straight)
    for x, y in zip(leaves(final_state(workdir, run)), leaves(final_state(straight, run))):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(UserError, match=r"no checkpoint at step 9 .* \(there are 2, 3, 4\)"):
        loop.run(run.replace(iterations=5), workdir, resume=True, resume_from=9)
    loop.run(run.replace(iterations=3), tmp_path / "again")
    loop.run(run, tmp_path / "again", resume=True, resume_from=2)
    assert records(tmp_path / "again") == records(straight)


def test_no_intact_checkpoint_is_one_line(three_checkpoints, tmp_path):
    workdir = tmp_path / "w"
    shutil.copytree(three_checkpoints, workdir)
    for step in (workdir / "checkpoints").iterdir():
        _garbage_metadata(step)
    manager = Checkpoints(workdir)
    try:
        with pytest.raises(UserError, match=r"no intact checkpoint in .*checkpoints \(damaged: 3, 2, 1\)"):
            manager.restore(target(RUN))
    finally:
        manager.close()


def test_readers_leave_a_save_in_flight_alone(tmp_path):
    """sample, evaluate and a resume's config check read a workdir a run may be saving into:
    only the writer clears half-written step folders."""
    in_flight = tmp_path / "checkpoints" / "120.orbax-checkpoint-tmp"
    (in_flight / "state.orbax-checkpoint-tmp").mkdir(parents=True)

    def cleared_within(seconds: float) -> bool:  # orbax clears in the background
        deadline = time.time() + seconds
        while in_flight.exists() and time.time() < deadline:
            time.sleep(0.05)
        return not in_flight.exists()

    Checkpoints(tmp_path, read_only=True).close()
    assert not cleared_within(2.0)
    Checkpoints(tmp_path).close()  # the run that writes (holding the lock) clears it
    assert cleared_within(30.0)
