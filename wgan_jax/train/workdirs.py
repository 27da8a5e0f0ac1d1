"""A training workdir's policy: which folders a new run may start in, whether one holds a run,
and what a resume may change. The checkpoints' own reading and writing is wgan_jax.ckpt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from wgan_jax import config as config_lib
from wgan_jax.ckpt import BEST, SET_ASIDE, Checkpoints
from wgan_jax.config import Config
from wgan_jax.errors import UserError, writable_folder
from wgan_jax.train import lock


# What a run (or a batched run's run-N folders, or evaluate) writes into a workdir; anything
# else there is the user's, which a new run must not mix itself into or overwrite.
RUN_ENTRIES = re.compile(r"config\.json|metrics\.jsonl|losses\.png|samples|checkpoints|tensorboard|"
                         r"summary\.(md|json)|report(\.md|\.json)?|run-\d+|\.write-test-.*|"
                         + "|".join(re.escape(name) for name in (BEST, SET_ASIDE, lock.NAME)))


def foreign_entries(workdir: Path) -> list[str]:
    """The names in `workdir` that no run wrote. Hidden entries (a file manager's .DS_Store, a
    notebook's checkpoints) do not count: a run never writes over a name that starts with a dot
    other than its own."""
    return sorted(p.name for p in workdir.iterdir()
                  if not RUN_ENTRIES.fullmatch(p.name) and not p.name.startswith("."))


def holds_run(workdir: Path) -> bool:
    """Whether `workdir` holds a checkpoint (a run killed before its first one holds nothing to
    resume or to protect)."""
    return any(step.name.isdigit() for step in (workdir / "checkpoints").glob("*"))


def require_run(workdir: Path) -> None:
    """Refuses a --resume of a workdir without a checkpoint."""
    if not holds_run(workdir):
        raise UserError(f"--resume: no checkpoints in {workdir}; run without --resume to start")


def check_workdir(workdir: Path, resume: bool) -> None:
    """Refuses, before any data loading or compilation, a workdir the run cannot use."""
    if workdir.exists() and not workdir.is_dir():
        raise UserError(f"workdir {workdir} exists and is not a folder")
    if resume:
        require_run(workdir)
    elif holds_run(workdir):
        raise UserError(f"workdir {workdir} already holds a run; pass --resume to continue it or "
                        f"choose another --workdir")
    elif workdir.is_dir() and (foreign := foreign_entries(workdir)):
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"workdir {workdir} holds files no run wrote ({shown}); choose a new or "
                        f"empty folder")
    writable_folder(workdir, "workdir")


def resumed_config(workdir: Path, step: int | None = None, **overrides: Any) -> Config:
    """The config of the workdir's checkpoint `step` (default: the newest intact one) with
    `overrides` (flat names, None values ignored) applied; only the host's sections (training,
    data, outputs) may change."""
    require_run(workdir)
    manager = Checkpoints(workdir, read_only=True)
    try:
        saved = manager.config(step)
    finally:
        manager.close()
    requested = saved.replace(**{k: v for k, v in overrides.items() if v is not None}).validate()
    changed = config_lib.resume_differences(saved, requested)
    if changed:
        raise UserError(f"--resume: the checkpoint was trained with a different config "
                        f"({'; '.join(changed)}); only run length, outputs and devices may change")
    return requested
