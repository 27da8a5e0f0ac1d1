"""--tensorboard: the event files hold what metrics.jsonl holds, read back with TensorBoard's own
reader, once per step across a resume; without tensorboardX the flag is a one-line error."""

import json
import shutil
import sys

import pytest

from wgan_jax.train import loop

from conftest import TINY

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


@pytest.mark.slow
def test_events_match_metrics_jsonl_once_per_step_across_a_resume(tmp_path):
    config = TINY.replace(iterations=3, log_every=1, sample_every=1, eval_every=2,
                                 eval_samples=100, checkpoint_every=2, tensorboard=True)
    workdir = tmp_path / "w"
    loop.run(config, workdir)
    # A crash after iteration 3 was logged but before its checkpoint: the run resumes from 2,
    # and iteration 3 is computed and logged again.
    shutil.rmtree(workdir / "checkpoints" / "3")
    loop.run(config.replace(iterations=4), workdir, resume=True)
    assert len(list((workdir / "tensorboard").glob("events.out.tfevents.*"))) == 2

    events = event_accumulator.EventAccumulator(str(workdir / "tensorboard"),
                                                size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "critic_loss" in r]
    evaluated = [r for r in records if "fd_mnist" in r]
    assert [r["iteration"] for r in logged] == [1, 2, 3, 4]
    for group, rows in (("train", logged), ("eval", evaluated)):
        for key in ("critic_loss", "wasserstein_estimate") if group == "train" else ("fd_mnist", "recall"):
            scalars = events.Scalars(f"{group}/{key}")
            assert [s.step for s in scalars] == [r["iteration"] for r in rows]  # each step once
            assert [s.value for s in scalars] == pytest.approx([r[key] for r in rows], rel=1e-6)
    assert [e.step for e in events.Images("samples")] == [1, 2, 3, 4]
    assert {"train/critic_loss", "eval/fd_mnist", "eval/classifier_score"} <= set(events.Tags()["scalars"])


def test_without_tensorboardx_the_flag_is_a_one_line_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    import train

    assert train.main(["--tensorboard", "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err == "error: --tensorboard needs tensorboardX, an optional extra: " \
                  "pip install -e '.[tensorboard]'\n"
    assert not (tmp_path / "w").exists()
