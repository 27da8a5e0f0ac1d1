"""The losses: Wasserstein in the seed's label convention, DCGAN's cross-entropy, WGAN-GP's
gradient penalty, and the registry of objectives (`OBJECTIVES`) the steps take them from.
Scores are the critic's raw (linear) outputs throughout."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
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


def binary_cross_entropy(label: float, logits: jnp.ndarray) -> jnp.ndarray:
    """mean BCE(label, sigmoid(logits)), from the logits: -log sigmoid(x) = softplus(-x) never
    overflows, where log(sigmoid(x)) of a saturated sigmoid gives -inf."""
    return jnp.mean(label * jax.nn.softplus(-logits) + (1 - label) * jax.nn.softplus(logits))


def gradient_penalty(critic: Callable[[jnp.ndarray], jnp.ndarray], real: jnp.ndarray,
                     fake: jnp.ndarray, mix: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """WGAN-GP's mean (||grad_x D(x_hat)||_2 - 1)^2 over x_hat = mix * real + (1 - mix) * fake,
    `mix` (B,) uniform in [0, 1]; returns it and the per-sample gradient norms.

    `critic` must treat samples independently (no BatchNorm): then the gradient of the summed
    scores with respect to the batch holds each sample's own gradient.
    """
    mix = mix.reshape(-1, *([1] * (real.ndim - 1)))
    x_hat = mix * real + (1 - mix) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
    norms = safe_norm(grads.reshape(grads.shape[0], -1))
    return jnp.mean((norms - 1.0) ** 2), norms


def safe_norm(x: jnp.ndarray) -> jnp.ndarray:
    """Euclidean norm of each row, with a finite gradient (zero) where a row is all zeros: the
    derivative of sqrt at 0 is infinite, and 0 * inf would make the whole gradient NaN. Exact
    elsewhere (the usual double `where`, rather than an epsilon that biases every norm)."""
    squared = jnp.sum(x ** 2, axis=-1)
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


Term = Callable[[jnp.ndarray], jnp.ndarray]


@dataclasses.dataclass(frozen=True)
class Objective:
    """What one `Config.loss` trains: the critic's loss as a real-batch term plus a fake-batch
    term (apart, since the seed's Keras program updates on each in turn) and the generator's
    loss. How the critic is kept Lipschitz (clipping or the penalty) and the optimizer a loss
    brings are the config's (wgan_jax.config.LOSSES)."""

    real: Term  # the real batch's part of the critic loss
    fake: Term  # the fake batch's part of the critic loss
    generator: Term  # the generator's loss on the critic's scores of its images

    def critic(self, scores_real: jnp.ndarray, scores_fake: jnp.ndarray) -> jnp.ndarray:
        return self.real(scores_real) + self.fake(scores_fake)


_wasserstein_real = functools.partial(wasserstein_loss, REAL)
_wasserstein_fake = functools.partial(wasserstein_loss, FAKE)

OBJECTIVES: dict[str, Objective] = {
    # The WGAN (the seed): critic loss D(fake) - D(real), generator loss -D(G(z)).
    "wgan": Objective(_wasserstein_real, _wasserstein_fake, generator_loss),
    # DCGAN: cross-entropy with labels 1 real / 0 fake, the non-saturating generator loss
    # (fakes labelled 1).
    "dcgan": Objective(functools.partial(binary_cross_entropy, 1.0),
                       functools.partial(binary_cross_entropy, 0.0),
                       functools.partial(binary_cross_entropy, 1.0)),
    # WGAN-GP: the Wasserstein losses; the penalty is added by the critic update.
    "wgan-gp": Objective(_wasserstein_real, _wasserstein_fake, generator_loss),
}
