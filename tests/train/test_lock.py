"""One training run per workdir: the lock refuses a second writer in one line and never outlives
its process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from wgan_jax.errors import UserError
from wgan_jax.train.lock import NAME, WorkdirLock, holder

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    with WorkdirLock(tmp_path):
        with pytest.raises(UserError) as info:
            WorkdirLock(tmp_path).acquire()
        message = str(info.value)
        assert "\n" not in message
        assert f"workdir {tmp_path} is in use by another training run (pid {os.getpid()} on " in message
        assert holder(tmp_path)["pid"] == os.getpid()
    with WorkdirLock(tmp_path):  # released: the next run takes it
        pass


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys, time; from pathlib import Path; "
                              "from wgan_jax.train.lock import WorkdirLock; "
                              f"WorkdirLock(Path({str(tmp_path)!r})).acquire(); "
                              "print('held', flush=True); time.sleep(600)"],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"pid {child.pid} on "):
            WorkdirLock(tmp_path).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert holder(tmp_path)["pid"] == child.pid  # the stale file remains, and blocks nothing
    with WorkdirLock(tmp_path):
        assert holder(tmp_path)["pid"] == os.getpid()


def test_an_unwritable_workdir_is_one_line(tmp_path):
    with pytest.raises(UserError, match="cannot create the lock file") as info:
        WorkdirLock(tmp_path / "missing" / "w").acquire()
    assert "\n" not in str(info.value)


TINY = ["--set", "batch_size=8", "--set", "n_critic=3", "--set", "latent_dim=16",
        "--set", "gen_channels=8,4", "--set", "critic_channels=4,4,8,8", "--eval-every", "0",
        "--iterations", "400", "--log-every", "1", "--sample-every", "200",
        "--checkpoint-every", "20"]


def start(workdir, *extra, cache):
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *TINY, "--workdir",
                             str(workdir), "--compile-cache", str(cache), *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.heavy
def test_two_processes_on_one_workdir_one_is_refused_the_other_finishes_untouched(tmp_path):
    cache, shared, alone = tmp_path / "cache", tmp_path / "shared", tmp_path / "alone"
    first = start(shared, cache=cache)
    deadline = time.time() + 600
    while not any(p.name.isdigit() for p in (shared / "checkpoints").glob("*")):
        assert first.poll() is None and time.time() < deadline, first.communicate()[1]
        time.sleep(0.1)
    second = start(shared, "--resume", cache=cache)  # what a restarting scheduler runs
    _, err = second.communicate(timeout=300)
    assert second.returncode == 2, err
    assert "Traceback" not in err and err.count("error:") == 1
    assert err.strip().splitlines()[-1] == (f"error: workdir {shared} is in use by another training run (pid "
                           f"{first.pid} on {holder(shared)['host']}, since "
                           f"{holder(shared)['since']}); wait for it to end or stop it, or "
                           f"choose another --workdir")
    assert first.poll() is None, "the first run ended before the second tried: lengthen it"
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0 and "Traceback" not in err, err
    lone = start(alone, cache=cache)
    assert lone.wait(timeout=600) == 0
    iterations = [json.loads(line)["iteration"]
                  for line in (shared / "metrics.jsonl").read_text().splitlines()]
    assert iterations == list(range(1, 401))
    import jax

    from wgan_jax.core.runs import init_states
    from wgan_jax.ckpt import read_states

    leaves = [jax.tree_util.tree_leaves(read_states(run, None, init_states).states)
              for run in (shared, alone)]
    assert len(leaves[0]) == len(leaves[1]) > 0
    for a, b in zip(*leaves):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (shared / NAME).is_file()
