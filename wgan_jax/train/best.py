"""The best-scoring checkpoint of a run, kept beside the newest."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np

from wgan_jax.ckpt.store import Checkpoints
from wgan_jax.config import Config
from wgan_jax.eval import records as records_lib


class Best:
    """Keeps the checkpoint whose evaluation scored the lowest Fréchet distance so far (the mean
    over batched runs) in workdir/best_checkpoint/. The state of an evaluation point is donated
    to the next iteration before its score is back, so `candidate` keeps a device copy until `offer`
    gets the score. Off without evaluation, and with several processes (only process 0 scores,
    and a save needs them all)."""

    def __init__(self, workdir: Path, runs_records: list[list[dict]], active: bool):
        self.checkpoints = Checkpoints(workdir, best=True) if active else None
        self.best = min(self._scores(runs_records).values(), default=math.inf)

    @staticmethod
    def _scores(runs_records: list[list[dict]]) -> dict[int, float]:
        """Mean Fréchet distance over the runs, per evaluated iteration, from each run's
        metric records."""
        by_iteration: dict[int, list[float]] = {}
        for run in runs_records:
            for record in run:
                key = records_lib.quality_key(record)  # the averaged generator's, if any
                if key:
                    by_iteration.setdefault(record["iteration"], []).append(record[key])
        return {at: float(np.mean(v)) for at, v in by_iteration.items()
                if len(v) == len(runs_records)}

    def candidate(self, state):
        return jax.tree_util.tree_map(jax.numpy.copy, state) if self.checkpoints else None

    def offer(self, state, at: int, runs_records: list[list[dict]], config: Config,
              identity: dict) -> None:
        score = self._scores(runs_records).get(at, math.inf)
        if self.checkpoints and score < self.best:
            self.best = score
            self.checkpoints.save(state, at, config, identity, {"fd": score, "iteration": at})

    def close(self) -> None:
        if self.checkpoints:
            self.checkpoints.close()
