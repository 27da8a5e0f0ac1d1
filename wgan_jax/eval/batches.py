"""One network over many images: fixed-size batches (one compilation for any count), the last
one padded, the outputs joined and cut back to the count."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Advance = Callable[[int], None]


def apply(fn: Callable, *arrays, batch: int, advance: Advance | None = None):
    """fn over `arrays` (same leading length N) in slices of `batch`: fn's output, an array or a
    tuple of arrays, for all N rows. With `advance` (a progress bar's), each slice is waited for
    and its real row count reported, so the bar moves as the work does; without it, every slice
    is only dispatched."""
    count = arrays[0].shape[0]
    padded = [jnp.pad(jnp.asarray(a), [(0, -count % batch)] + [(0, 0)] * (a.ndim - 1))
              for a in arrays]
    outputs = []
    for start in range(0, len(padded[0]), batch):
        outputs.append(fn(*(a[start:start + batch] for a in padded)))
        if advance is not None:
            jax.block_until_ready(outputs[-1])
            advance(min(batch, count - start))
    if isinstance(outputs[0], tuple):
        return tuple(jnp.concatenate(parts)[:count] for parts in zip(*outputs))
    return jnp.concatenate(outputs)[:count]


def generate(variables: dict, config, z: jax.Array, labels=None, batch: int = 1000,
             advance: Advance | None = None) -> jax.Array:
    """Images in [-1, 1] of generator `variables` for latent vectors `z` (and a conditional
    generator's labels), `batch` at a time (bounded memory)."""
    from wgan_jax.core import generation  # imported here, where it is used

    if labels is None:
        return apply(lambda zs: generation.draw(variables, zs, config), z, batch=batch,
                     advance=advance)
    return apply(lambda zs, ys: generation.draw(variables, zs, config, ys), z, jnp.asarray(labels),
                 batch=batch, advance=advance)
