"""Checkpoints of the whole training state with orbax: `store` (a workdir's checkpoints, written
asynchronously), `layout` (the state a checkpoint must hold), `reading` (a run's checkpoint by
step). The best-scoring checkpoint is wgan_jax.train.best. What the command-line programs set up around orbax is
wgan_jax.terminal.quiet_libraries."""

from wgan_jax.ckpt.reading import Saved, open_step, parse_step, read_states
from wgan_jax.ckpt.store import BEST, SET_ASIDE, Checkpoints


__all__ = ["BEST", "SET_ASIDE", "Checkpoints", "Saved", "open_step", "parse_step",
           "read_states"]
