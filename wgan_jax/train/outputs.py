"""What a training run writes and scores, for its R runs (a single run is R = 1): a writer and an
evaluator per run, the best checkpoint, and the run's closing summary. `wgan_jax.loop` holds one
`Outputs` and feeds it what the device sends back.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import jax
from rich.console import Console

from wgan_jax import data
from wgan_jax.train.best import Best
from wgan_jax.config import Config
from wgan_jax.core.runs import run_configs
from wgan_jax.eval import fid, records
from wgan_jax.eval.evaluator import Evaluator, no_classifier
from wgan_jax.train.summary import runs_summary
from wgan_jax.train.writers import Writer, events_folder, write_summary


class Outputs:
    """A writer per run (its records up to `start_at` kept; only the writing process writes), an
    evaluator per run (none where nothing can score the data, or with eval_every 0) and the best
    checkpoint (kept where there are evaluations and one process)."""

    def __init__(self, config: Config, workdir: Path, console: Console, splits: data.Splits,
                 start_at: int, mesh_devices: list[str]):
        self.config, self.workdir, self.console = config, workdir, console
        self.runs = run_configs(config)
        self.several = len(self.runs) > 1
        self.writes = jax.process_index() == 0
        self.evaluators = _evaluators(config, workdir, console, splits, self.runs) \
            if config.outputs.eval_every else []
        heldout = splits.heldout
        layout = {"mesh_devices": mesh_devices, "heldout": splits.heldout_note,
                  "heldout_size": 0 if heldout is None else len(heldout.images)}
        self.writers = [self._writer(i, run, splits.train, start_at, layout)
                        for i, run in enumerate(self.runs)]
        self.best = Best(workdir, self.records(),
                         bool(self.evaluators) and jax.process_count() == 1)

    def _writer(self, i: int, run: Config, dataset: data.Dataset, start_at: int,
                layout: dict) -> Writer:
        folder = self.workdir / f"run-{i}" if self.several else self.workdir
        record = {**layout, "run": i, "batched_runs": len(self.runs)} if self.several else layout
        events = events_folder(self.workdir, i, len(self.runs)) if self.config.outputs.tensorboard else None
        writer = Writer(folder, run, dataset, start_at, self.writes, record, events)
        if writer.damaged:
            self.console.print(f"{folder / 'metrics.jsonl'}: dropped {writer.damaged} damaged "
                               f"line(s) (a write cut off by a crash?); kept the "
                               f"{len(writer.records)} complete records up to iteration {start_at}")
        return writer

    def records(self) -> list[list[dict]]:
        """Each run's metric records so far."""
        return [writer.records for writer in self.writers]

    def samples(self, name: str, at: int, grids) -> None:
        """Each run's sample grid `name` (images (R, n, H, W, C) on the host)."""
        for writer, grid in zip(self.writers, grids):
            writer.samples(grid, name, at)

    def evaluated(self, at: int, outputs: list[dict], seconds: float) -> None:
        """Scores each run's dispatched evaluation outputs into its records."""
        if self.writes:  # the host-side metrics; only process 0 keeps records
            for evaluator, writer, output in zip(self.evaluators, self.writers, outputs):
                writer.log({"iteration": at, "kind": records.EVAL, **evaluator.finish(output),
                            "seconds": round(seconds, 3)})

    def close(self, quietly: bool = False) -> None:
        """Closes the best checkpoint and the writers; `quietly` while an error is in flight,
        which says what went wrong."""
        for close in (self.best.close, *(writer.close for writer in self.writers)):
            if quietly:
                with contextlib.suppress(Exception):
                    close()
            else:
                close()

    def result(self, done: int, elapsed: float) -> dict:
        """Prints the run's timing and final numbers; returns the last record, or the summary
        of several runs."""
        timing = (f"done: {done} iterations{f' of {len(self.runs)} runs' if self.several else ''}"
                  f" in {elapsed:.1f} s ({1000 * elapsed / done:.1f} ms/iteration incl. "
                  f"compilation and evaluation)")
        if not self.several:
            last = self.writers[0].final()
            quality = "".join(f", {k} {v:.4g}" for k, v in records.headline(last).items())
            self.console.print(f"{timing}, final Wasserstein estimate "
                               f"{last.get('wasserstein_estimate', math.nan):.4g}{quality}, "
                               f"outputs in {self.workdir}")
            return last
        summary = runs_summary(self.config, [writer.final() for writer in self.writers])
        if self.writes:
            write_summary(self.workdir, summary)
        self.console.print(f"{timing}, outputs in {self.workdir}/run-*, summary in "
                           f"{self.workdir / 'summary.md'}")
        for name, stat in summary["stats"].items():
            if name == "wasserstein_estimate" or name in records.headline(summary["stats"]):
                self.console.print(f"  final {name}: {stat['mean']:.4g} +- {stat['std']:.3g} "
                                   f"(min {stat['min']:.4g}, max {stat['max']:.4g})")
        return summary


def _evaluators(config: Config, workdir: Path, console: Console, splits: data.Splits,
                runs: list[Config]) -> list[Evaluator]:
    """An evaluator per run, or none (saying why) where there is nothing to score with."""
    if splits.heldout is None:
        console.print(f"No held-out split ({splits.heldout_note}): evaluation off.")
        return []
    evaluators = [Evaluator(run, heldout=splits.heldout) for run in runs]
    if not evaluators[0].active:
        console.print(f"Evaluation off: {no_classifier(splits.heldout)}; FID is "
                      f"{_fid_off(config)}.")
        return []
    if not evaluators[0].fid:
        console.print(f"FID {_fid_off(config)} during training; python -m wgan_jax.cli.evaluate "
                      f"{workdir} computes it afterwards.")
    return evaluators


def _fid_off(config: Config) -> str:
    """Why FID is not computed during training, in words."""
    if config.outputs.eval_fid == "off":
        return "off (eval_fid off)"
    if not fid.available():
        return f"not installed ({fid.INSTALL})"
    return "off on a CPU by default (minutes per evaluation; --set eval_fid=on)"
