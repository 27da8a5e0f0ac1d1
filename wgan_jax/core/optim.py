"""The optimizers the optim section asks for, and the WGAN weight clip."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from wgan_jax.config import Optim


def rmsprop(optim: Optim, lr: float | jax.Array) -> optax.GradientTransformation:
    """RMSprop with the section's decay, eps and eps placement (see Optim.rmsprop_eps_in_sqrt).

    Keras 2: v = rho * v + (1 - rho) * g^2; w -= lr * g / (sqrt(v) + eps), v starting at 0.
    `lr` may be a traced value: the steps pass the state's, so runs batched with vmap can each
    have their own.
    """
    return optax.rmsprop(lr, decay=optim.rmsprop_decay, eps=optim.rmsprop_eps,
                         eps_in_sqrt=optim.rmsprop_eps_in_sqrt)


def optimizer(optim: Optim, lr: float | jax.Array) -> optax.GradientTransformation:
    """The section's optimizer, for either network: RMSprop, or Adam (eps 1e-8, as in PyTorch
    and the DCGAN / WGAN-GP reference code). Neither's state depends on the learning rate."""
    if optim.optimizer == "adam":
        return optax.adam(lr, b1=optim.adam_b1, b2=optim.adam_b2, eps=1e-8)
    return rmsprop(optim, lr)


def clip_params(params, clip_value: float | jax.Array):
    """Every leaf clipped to [-clip_value, clip_value]: the WGAN Lipschitz constraint."""
    return jax.tree_util.tree_map(lambda p: jnp.clip(p, -clip_value, clip_value), params)
