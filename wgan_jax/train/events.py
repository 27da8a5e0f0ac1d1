"""A run's scalars and sample grids as TensorBoard event files (`--tensorboard`).

tensorboardX writes them, so no TensorFlow is needed; it is an optional extra:
`pip install -e '.[tensorboard]'`. Training scalars are tagged `train/<key>`, evaluation metrics
`eval/<key>` and sample grids `samples`, each at its generator iteration: the same numbers as
metrics.jsonl, so `tensorboard --logdir WORKDIR/tensorboard` plots what the file holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wgan_jax.errors import UserError
from wgan_jax.eval import records


INSTALL = "pip install -e '.[tensorboard]'"


def require() -> None:
    """Raises a one-line UserError saying how to install tensorboardX, if it is missing."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise UserError(f"--tensorboard needs tensorboardX, an optional extra: {INSTALL}") from None


class EventWriter:
    """Event files in `folder`. A resumed run (`start` > 0) recomputes the iterations after its
    checkpoint: purge_step tells TensorBoard to drop the events a crashed process had written
    from there on, so no step appears twice."""

    def __init__(self, folder: Path, start: int):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(folder), purge_step=start + 1 if start else None)
        self.last_image = start

    def record(self, record: dict) -> None:
        """A metrics.jsonl record: its numbers as scalars at its iteration."""
        group = records.kind(record)
        for key, value in record.items():
            if key not in ("iteration", "seconds") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{group}/{key}", value, record["iteration"])
        self.writer.flush()

    def image(self, picture: np.ndarray, step: int) -> None:
        """A sample grid (uint8, H, W, C) at `step`, once per step."""
        if step > self.last_image:
            self.writer.add_image("samples", picture, step, dataformats="HWC")
            self.writer.flush()
            self.last_image = step

    def close(self) -> None:
        self.writer.close()
