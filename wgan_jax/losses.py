"""The Wasserstein loss, in the seed's label convention."""

from __future__ import annotations

import jax.numpy as jnp

# Labels as the seed uses them: the critic minimises mean(-D(real)) + mean(+D(fake)).
REAL = -1.0
FAKE = 1.0


def wasserstein_loss(y_true: jnp.ndarray | float, y_pred: jnp.ndarray) -> jnp.ndarray:
    """mean(y_true * y_pred), as in the seed; y_true is -1 for real, +1 for fake (broadcasts)."""
    return jnp.mean(y_true * y_pred)


def critic_loss(scores_real: jnp.ndarray, scores_fake: jnp.ndarray) -> jnp.ndarray:
    """D(fake) - D(real) averaged; its negative is the Wasserstein estimate."""
    return wasserstein_loss(REAL, scores_real) + wasserstein_loss(FAKE, scores_fake)


def generator_loss(scores_fake: jnp.ndarray) -> jnp.ndarray:
    """-mean D(G(z)): the generator is trained with fakes labelled as real."""
    return wasserstein_loss(REAL, scores_fake)
