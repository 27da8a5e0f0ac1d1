"""A real two-process run on localhost: two CPU processes of two devices each join through
`jax.distributed` (gloo collectives), train a few iterations of one data-parallel program over
the four devices, write once, checkpoint through orbax, and agree on every parameter; then train
four batched runs spread over the four devices, one each, and evaluate them."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

# Run by each process: argv = workdir, then coordinator port, process count and id (none: alone).
SCRIPT = r"""
import dataclasses, hashlib, json, sys
sys.path.insert(0, TESTS)
from wgan_jax.train import distributed
workdir, *topology = sys.argv[1:]
if topology:
    distributed.initialize(f"localhost:{topology[0]}", int(topology[1]), int(topology[2]))
import jax, numpy as np
from conftest import TINY, noise_driven
from wgan_jax import data
from wgan_jax.train import loop, programs, start
from wgan_jax.core.runs import init_states
from wgan_jax.ckpt import Checkpoints
from wgan_jax.core.state import abstract, select

config = TINY.replace(iterations=3, log_every=1, checkpoint_every=2)
loop.run(config, workdir)
config, splits = start.prepare(config)
run = programs.build(config, programs.batching(config), programs.device_mesh(config))
manager = Checkpoints(workdir)
states = manager.restore(abstract(init_states, config, run.states_sharding), step=2)
manager.close()
states, _ = run.train(states, run.place_data(splits.train.images))
state = select(states, 0)
# 4 batched runs, one per device of either process, evaluated at the end
loop.run(config.replace(seeds=4, iterations=2),
         workdir + "-seeds")
copies = [[np.asarray(shard.data) for shard in leaf.addressable_shards]
          for leaf in jax.tree_util.tree_leaves((state.gen.params, state.critic.params))]
digest = hashlib.sha256(b"".join(c[0].tobytes() for c in copies)).hexdigest()
print(json.dumps({"process": jax.process_index(), "processes": jax.process_count(),
                  "devices": len(jax.devices()), "local_devices": len(jax.local_devices()),
                  "local_copies_equal": all(np.array_equal(c[0], x) for c in copies for x in c),
                  "digest": digest, "step": int(state.step),
                  "params": [float(np.abs(np.asarray(leaf)).sum()) for path, leaf in
                             jax.tree_util.tree_leaves_with_path((state.gen.params, state.critic.params))
                             if not noise_driven(path)]}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start(workdir: Path, devices: int, *topology) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": str(devices)}
    return subprocess.Popen([sys.executable, "-c", f"TESTS = {str(TESTS)!r}\n" + SCRIPT,
                             str(workdir), *map(str, topology)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(process: subprocess.Popen) -> dict:
    try:
        out, err = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.heavy
def test_two_processes_train_together_write_once_and_agree(tmp_path):
    port, workdir = _free_port(), tmp_path / "two"
    processes = [_start(workdir, 2, port, 2, i) for i in range(2)]
    # the reference, one process over four devices, alongside: it uses the cores while the
    # pair waits on each other
    processes.append(_start(tmp_path / "one", 4))
    try:
        results = [_finish(p) for p in processes[:2]]
        alone = _finish(processes[2])
    finally:
        for p in processes:
            p.kill()
    assert [r["process"] for r in results] == [0, 1]
    assert all(r["processes"] == 2 and r["devices"] == 4 and r["local_devices"] == 2
               for r in results)
    # after a checkpoint restored on both hosts and one more step: the same bits everywhere
    assert all(r["local_copies_equal"] for r in results)
    assert results[0]["digest"] == results[1]["digest"] and results[0]["step"] == 3
    # process 0 alone wrote: one record per iteration, the config naming both processes
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2, 3]
    assert json.loads((workdir / "config.json").read_text())["processes"] == 2
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["2", "3"]

    # the same program in one process over four devices: the same numbers, up to the order of
    # the cross-device sums (gloo between processes, XLA within one)
    assert alone["processes"] == 1 and alone["devices"] == 4
    single = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(records, single):
        for key in ("critic_loss", "generator_loss"):
            assert abs(a[key] - b[key]) <= 1e-3 * abs(b[key]) + 1e-8, (key, a[key], b[key])
    # (conftest.noise_driven explains the leaves left out)
    for a, b in zip(results[0]["params"], alone["params"], strict=True):
        assert abs(a - b) <= 1e-5 * abs(b) + 1e-7

    # batched runs spread over the two processes log, evaluate and summarise once, as one process
    # over four devices does: runs exchange nothing, so each run's numbers are its own program's
    assert sorted(p.name for p in (tmp_path / "two-seeds").iterdir()) == [
        ".wgan_jax.lock", "checkpoints", "run-0", "run-1", "run-2", "run-3", "summary.json", "summary.md"]
    for i in range(4):
        spread, local = ([json.loads(line) for line in (tmp_path / name / f"run-{i}" / "metrics.jsonl")
                          .read_text().splitlines()] for name in ("two-seeds", "one-seeds"))
        assert [r["iteration"] for r in spread] == [r["iteration"] for r in local] == [1, 2]
        for a, b in zip(spread, local):
            for key in ("critic_loss", "generator_loss", "fd_mnist", "kid_mnist"):
                if key in b:
                    assert abs(a[key] - b[key]) <= 1e-4 * abs(b[key]) + 1e-8, (i, key, a[key], b[key])
