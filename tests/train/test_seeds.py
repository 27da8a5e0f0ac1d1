"""Batched runs (wgan_jax.core.runs): each run of the vmapped program equals the single run with its
seed, clip and learning rate; the loop writes each run's outputs and a summary, and resumes."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import UserError, init_state
from wgan_jax.config import to_dict
from wgan_jax.train import loop, programs
from wgan_jax.core.runs import init_states, run_configs, sample_noise
from wgan_jax.train.summary import runs_summary, summary_markdown
from wgan_jax.core import generation, steps
from wgan_jax.ckpt import read_states
from wgan_jax.core.state import select

from conftest import TINY, assert_trees_close, leaves

BATCH = TINY.replace(seeds=2, run_clips=(0.01, 0.03), run_lrs=(5e-5, 2e-4))


def programs_of(config):
    """The loop's programs for `config` on this process's devices (one CPU device here)."""
    return programs.build(config, programs.batching(config), programs.device_mesh(config))


def train(config, states, images, iterations):
    """`iterations` of the loop's program; metrics stacked (iterations, runs)."""
    run = programs_of(config)
    states, images, history = run.place_states(states), run.place_data(images), []
    for _ in range(iterations):
        states, metrics = run.train(states, images)
        history.append(metrics)
    return states, jax.tree_util.tree_map(lambda *m: np.stack(m), *history)


@pytest.mark.slow
@pytest.mark.parametrize("batching", ["vmap", "loop"])
def test_each_batched_run_equals_its_single_run(images, batching):
    config = BATCH.replace(seed_batching=batching)
    batched, metrics = train(config, init_states(config), images, 2)
    assert metrics["critic_loss"].shape == (2, 2)
    runs = run_configs(BATCH)
    assert [(r.runs.seed, r.runs.clip, r.runs.lr, r.runs.seeds) for r in runs] == [(0, 0.01, 5e-5, 1), (1, 0.03, 2e-4, 1)]
    for i, run in enumerate(runs):
        single, single_metrics = init_state(run, jax.random.PRNGKey(run.runs.seed)), []
        for _ in range(2):
            single, m = steps.train_step(single, images, run)
            single_metrics.append(m)
        if batching == "loop":  # the single-run step per run: the bits `train.py --seed` gets
            alone, _ = train(run, init_states(run), images, 2)
            for a, b in zip(leaves(select(alone, 0)), leaves(select(batched, i))):
                np.testing.assert_array_equal(a, b)
        # vmap batches the convolutions (other kernels, other summation orders): f32 rounding
        # differences only, as between the scan and the unrolled loop (test_steps)
        assert_trees_close(single, select(batched, i))
        for name in single_metrics[0]:
            np.testing.assert_allclose(metrics[name][:, i], [m[name] for m in single_metrics],
                                       rtol=1e-4, atol=1e-9)
        # each run keeps its own clip bound, and reaches it
        critic = np.concatenate([x.ravel() for x in leaves(select(batched, i).critic.params)])
        assert np.abs(critic).max() == np.float32(run.runs.clip)
    # different seeds: different networks
    assert not np.allclose(*(leaves(select(batched, i).gen.params)[0] for i in range(2)))


@pytest.mark.slow
def test_vmapped_official_schedule_branches_instead_of_running_both():
    config = BATCH.replace(critic_schedule="official", seed_batching="vmap")
    run = programs_of(config)
    states = run.place_states(init_states(config))
    data = run.place_data(jnp.zeros((16, 28, 28, 1), jnp.uint8))
    jaxpr = str(jax.make_jaxpr(run.train)(states, data))
    assert "cond[" in jaxpr  # a batched predicate would have turned it into select_n of both
    out = jax.eval_shape(run.train, states, data)
    assert out[0].step.shape == (2,) and out[1]["critic_loss"].shape == (2,)


@pytest.mark.parametrize("batching", ["vmap", "loop"])
def test_generate_gives_each_run_its_own_samples(batching):
    config = BATCH.replace(seed_batching=batching)
    z = sample_noise(config, 5)
    assert z.shape == (2, 5, config.nets.latent_dim)
    np.testing.assert_array_equal(z[1], jax.random.normal(
        jax.random.fold_in(jax.random.PRNGKey(1), 3), (5, config.nets.latent_dim)))  # SAMPLES stream
    run = programs_of(config)
    states = init_states(config)
    images = run.generate(run.place_states(states), run.place_noise(z))
    for i in range(2):
        np.testing.assert_allclose(images[i], generation.generate(select(states, i), z[i], config),
                                   atol=1e-6)


def test_summary_is_mean_and_spread_of_the_final_records():
    finals = [{"iteration": 4, "critic_loss": 1.0, "fd_mnist": 300.0, "class_shares": [0.1]},
              {"iteration": 4, "critic_loss": 3.0, "fd_mnist": 200.0, "class_shares": [0.2]}]
    summary = runs_summary(BATCH, finals)
    assert summary["stats"]["critic_loss"] == {"mean": 2.0, "std": np.sqrt(2.0), "min": 1.0, "max": 3.0}
    assert summary["stats"]["fd_mnist"]["mean"] == 250.0 and "class_shares" not in summary["stats"]
    assert [(r["seed"], r["clip"], r["lr"]) for r in summary["runs"]] == [(0, 0.01, 5e-5), (1, 0.03, 2e-4)]
    table = summary_markdown(summary)
    assert "| critic_loss | 2 | 1.41 | 1 | 3 |" in table and "| 1 | 1 | 0.03 | 0.0002 |" in table


@pytest.mark.slow
def test_batched_loop_writes_each_run_and_resumes_exactly(tmp_path):
    config = BATCH.replace(iterations=3, log_every=1, sample_every=3,
                                 checkpoint_every=2)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    summary = loop.run(config, straight)
    loop.run(config.replace(iterations=2), resumed)
    loop.run(config, resumed, resume=True)
    for i, run in enumerate(run_configs(config)):
        folder = straight / f"run-{i}"
        written = json.loads((folder / "config.json").read_text())
        assert written["run"] == i and written["runs"] == to_dict(run)["runs"]
        assert (written["runs"]["seed"], written["runs"]["clip"]) == (run.runs.seed, run.runs.clip)
        assert (folder / "samples" / "final.png").exists() and (folder / "samples" / "iter_000003.png").exists()
        lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        again = [json.loads(line) for line in (resumed / f"run-{i}" / "metrics.jsonl").read_text().splitlines()]
        assert [r["iteration"] for r in lines] == [r["iteration"] for r in again] == [1, 2, 3]
        for a, b in zip(lines, again):
            assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
        assert summary["runs"][i]["critic_loss"] == lines[-1]["critic_loss"]
    assert json.loads((straight / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert "| run | seed | clip | lr |" in (straight / "summary.md").read_text()
    state = read_states(straight, None, init_states).states
    assert state.step.shape == (2,) and np.all(np.asarray(state.step) == 3)
    np.testing.assert_array_equal(state.clip, np.float32([0.01, 0.03]))


@pytest.mark.parametrize("fields, message", [
    (dict(seeds=0), "seeds must be a positive integer"),
    (dict(seeds=3, run_clips=(0.01, 0.02)), "2 clips given for 3 seeds"),
    (dict(seeds=2, run_lrs=(1e-4, -1.0)), "lr must be a positive"),
])
def test_bad_seed_settings_are_refused(fields, message):
    with pytest.raises(UserError, match=message):
        TINY.replace(**fields).validate()


def test_the_state_holds_both_learning_rates_and_clip_as_values():
    state = init_state(TINY, jax.random.PRNGKey(0))
    assert state.lr_critic.dtype == state.lr_generator.dtype == state.clip.dtype == jnp.float32
    assert (float(state.lr_critic), float(state.lr_generator), float(state.clip)) == \
        (np.float32(TINY.runs.lr), np.float32(TINY.runs.lr), np.float32(TINY.runs.clip))
    two = TINY.replace(seeds=2, run_lrs=(1e-4, 2e-4), lr_generator=3e-5)
    states = init_states(two)  # per-run critic rates from run_lrs, the generator's fixed
    np.testing.assert_array_equal(states.lr_critic, np.float32([1e-4, 2e-4]))
    np.testing.assert_array_equal(states.lr_generator, np.float32([3e-5, 3e-5]))
