"""wgan_jax: the Wasserstein GAN (weight clipping, Arjovsky et al. 2017) as a functional JAX program.

Pure pieces, each usable on its own:

    config = wgan_jax.Config()                      # the seed recipe; or from_preset("quick")
    state = wgan_jax.init_state(config, jax.random.PRNGKey(0))
    state, metrics = wgan_jax.train_step(state, images_uint8, config)
    samples = wgan_jax.generate(state, z, config)

    from wgan_jax import pretrained                  # a generator the project trained and ships
    generator = pretrained.load("mnist")
    samples = wgan_jax.draw(generator.variables, z, generator.config)
"""

from wgan_jax.config import PRESETS, Config, Program, from_preset
from wgan_jax.core.draws import real_batch
from wgan_jax.core.generation import draw, generate, generator_variables
from wgan_jax.core.losses import critic_loss, generator_loss, wasserstein_loss
from wgan_jax.core.models import Critic, Generator
from wgan_jax.core.optim import clip_params, rmsprop
from wgan_jax.core.state import NetState, TrainState, init_state
from wgan_jax.core.steps import critic_step, critic_steps, generator_step, train_step
from wgan_jax.errors import UserError

__all__ = [
    "PRESETS", "Config", "Critic", "Generator", "NetState", "Program", "TrainState",
    "UserError", "clip_params", "critic_loss", "critic_step", "critic_steps", "draw",
    "from_preset", "generate", "generator_loss", "generator_step", "generator_variables",
    "init_state", "real_batch", "rmsprop", "train_step", "wasserstein_loss",
]
