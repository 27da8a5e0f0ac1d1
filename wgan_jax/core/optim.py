"""The optimizers a config asks for, and the WGAN weight clip."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from wgan_jax.config import Config


def rmsprop(config: Config, lr: float | jax.Array | None = None) -> optax.GradientTransformation:
    """RMSprop with the config's decay, eps and eps placement (see Config.rmsprop_eps_in_sqrt).

    Keras 2: v = rho * v + (1 - rho) * g^2; w -= lr * g / (sqrt(v) + eps), v starting at 0.
    `lr` (default config.lr) may be a traced value: the steps pass the state's, so runs batched
    with vmap can each have their own.
    """
    return optax.rmsprop(config.lr if lr is None else lr, decay=config.rmsprop_decay,
                         eps=config.rmsprop_eps, eps_in_sqrt=config.rmsprop_eps_in_sqrt)


def optimizer(config: Config, lr: float | jax.Array | None = None) -> optax.GradientTransformation:
    """The config's optimizer, for either network: RMSprop, or Adam (eps 1e-8, as in PyTorch
    and the DCGAN / WGAN-GP reference code). Neither's state depends on the learning rate."""
    if config.optimizer == "adam":
        return optax.adam(config.lr if lr is None else lr, b1=config.adam_b1, b2=config.adam_b2,
                          eps=1e-8)
    return rmsprop(config, lr)


def clip_params(params, clip_value: float | jax.Array):
    """Every leaf clipped to [-clip_value, clip_value]: the WGAN Lipschitz constraint."""
    return jax.tree_util.tree_map(lambda p: jnp.clip(p, -clip_value, clip_value), params)
