"""What each generator iteration's programs take as training data, in either placement
(wgan_jax.data.placement): the whole set, placed on the devices once ("device"), or the
iteration's real batches, gathered by the host from the images on disk ("stream").

Streamed batches are the ones the step would draw from the whole set: run r's critic update u
takes the images at `draws.real_indices(key_r, u, ...)`, its key a function of its seed, and u
a function of the iteration (`draws.critic_updates_before`). So an iteration's batches are a
pure function of (seed, iteration): a resumed stream starts at the resumed iteration and draws
exactly what the interrupted one would have, and both placements train the same run. grain runs
the gathering in threads ahead of the loop (a random-access source of iterations, prefetched),
each process gathering only the batch rows of its own devices.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import grain
import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax.config import Config
from wgan_jax.core import draws
from wgan_jax.core.runs import run_configs
from wgan_jax.data import Dataset, cache
from wgan_jax.train.programs import Programs


# Iterations gathered ahead of the loop, and the threads gathering them: two iterations in
# flight hide a gather behind the step in the runs measured (benchmarks/NOTES.md).
PREFETCH, THREADS = 4, 2

Feed = Callable[[int], list]


def feed(config: Config, programs: Programs, train: Dataset, start_at: int) -> Feed:
    """`feed(at)`: the data of each program generator iteration `at` dispatches, iterations
    asked for in order from `start_at`."""
    if not programs.streamed:
        whole = programs.place_data((train.images, train.labels) if config.nets.conditional
                                    else train.images)
        return lambda at: [whole] * programs.pieces(at)
    return Stream(config, programs, train, start_at)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _indices(keys: jax.Array, first: jax.Array, count: int, batch_size: int,
             size: int) -> jax.Array:
    """Every run's real-batch indices (R, count, batch_size) from critic update `first` on."""
    return jax.vmap(lambda key: draws.real_indices(key, first, count, batch_size, size))(keys)


class Stream:
    """The streamed feed: each iteration's real batches, gathered ahead by grain's threads."""

    def __init__(self, config: Config, programs: Programs, train: Dataset, start_at: int):
        self.config, self.programs = config, programs
        self.images = train.images
        # a cache file is read row by row; an array in memory is indexed
        self.rows = cache.Rows(train.file, train.images.shape[1:]).read if train.file else \
            (lambda indices: np.asarray(self.images[indices]))
        self.labels = train.labels if config.nets.conditional else None
        cpu = jax.local_devices(backend="cpu")[0]
        self.keys = jax.device_put(jnp.stack([jax.random.PRNGKey(run.runs.seed)
                                              for run in run_configs(config)]), cpu)
        iterations = grain.MapDataset.range(start_at, config.training.iterations).map(self.draw)
        self.batches = iter(iterations.to_iter_dataset(
            grain.ReadOptions(num_threads=THREADS, prefetch_buffer_size=PREFETCH)))
        self.next_at = start_at

    def __call__(self, at: int) -> list[draws.Drawn]:
        if at != self.next_at:
            raise ValueError(f"the stream is at iteration {self.next_at}, not {at}")
        self.next_at += 1
        return next(self.batches)

    def draw(self, at: int) -> list[draws.Drawn]:
        """Iteration `at`'s batches, one draws.Drawn (R, n_critic, B, ...) per program, on the
        devices."""
        config, pieces = self.config, self.programs.pieces(at)
        per_piece = config.algorithm.n_critic
        indices = np.asarray(_indices(self.keys, draws.critic_updates_before(at, config),
                                      pieces * per_piece, config.algorithm.batch_size, len(self.images)))
        return [self._placed(indices[:, p * per_piece:(p + 1) * per_piece])
                for p in range(pieces)]

    def _placed(self, indices: np.ndarray) -> draws.Drawn:
        """The images (and labels) at `indices` (R, U, B) as arrays spread like the programs'
        drawn batches, each device's block gathered alone."""
        sharding = self.programs.drawn_sharding

        def gather(read: Callable[[np.ndarray], np.ndarray], row: tuple) -> jax.Array:
            return jax.make_array_from_callback((*indices.shape, *row), sharding,
                                                lambda index: read(indices[index[:3]]))

        labels = None if self.labels is None else gather(lambda i: self.labels[i], ())
        return draws.Drawn(gather(self.rows, self.images.shape[1:]), labels)
