"""What can be proved about the accelerators without one: the training and sampling programs
(wgan_jax.train.programs, as the loop runs them) lower for CUDA and for TPU on this CPU-only jaxlib,
for every kind of network and loss, and hold no host callback: nothing in an iteration waits
for Python. Lowering is the step before XLA compiles for the device; what a device run adds
(its compiler, its kernels, its timings) is benchmarks/gpu_check.sh's."""

import re

import jax
import jax.numpy as jnp
import pytest

from wgan_jax import from_preset
from wgan_jax.train import programs
from wgan_jax.core.runs import init_states

# How a GPU runs them: the critic scan as a device loop (the CPU unrolls it), runs vmapped.
ON_DEVICE = dict(critic_unroll=1)
VARIANTS = {
    "seed": from_preset("seed", image_shape=(28, 28, 1), **ON_DEVICE),
    "dcgan-64": from_preset("official", image_shape=(64, 64, 3), **ON_DEVICE),
    "conditional": from_preset("seed", image_shape=(28, 28, 1), conditional=True,
                               num_classes=10, **ON_DEVICE),
    "wgan-gp": from_preset("seed", image_shape=(28, 28, 1), loss="wgan-gp", **ON_DEVICE),
    "bfloat16": from_preset("seed", image_shape=(28, 28, 1), compute_dtype="bfloat16",
                            **ON_DEVICE),
}
# Operations that hand data to or from the host mid-program.
_HOST = re.compile(r"custom_call @\w*callback\w*|stablehlo\.(send|recv|infeed|outfeed)\b")


def host_transfers(module_text: str) -> list[str]:
    return [m.group(0) for m in _HOST.finditer(module_text)]


def lowered(config, platform: str) -> tuple[str, str]:
    """The StableHLO of the training and sampling programs of `config` for `platform`."""
    built = programs.build(config, "vmap", programs.device_mesh(config))
    states = jax.eval_shape(lambda: init_states(config))
    images = jax.ShapeDtypeStruct((512, *config.nets.image_shape), jnp.uint8)
    if config.nets.conditional:
        images = (images, jax.ShapeDtypeStruct((512,), jnp.int32))
    z = jax.ShapeDtypeStruct((1, 25, config.nets.latent_dim), jnp.float32)
    train = built.train.trace(states, images).lower(lowering_platforms=(platform,))
    generate = built.generate.trace(states, z).lower(lowering_platforms=(platform,))
    return train.as_text(), generate.as_text()


@pytest.mark.parametrize("platform", ["cuda", "tpu"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_programs_lower_for_the_accelerator_with_no_host_callback(variant, platform):
    train, generate = lowered(VARIANTS[variant], platform)
    assert "stablehlo.while" in train  # the n_critic critic updates stay one device loop
    assert "stablehlo.convolution" in train and "stablehlo.convolution" in generate
    assert host_transfers(train) == [] and host_transfers(generate) == []


def test_the_check_finds_a_host_callback():
    """The check above can fail: a step that calls back into Python shows up in it (lowered for
    this CPU: a CPU-only jaxlib refuses to lower a callback for another platform at all)."""
    def step(x):
        jax.debug.callback(print, x)
        return x * 2

    assert host_transfers(jax.jit(step).trace(jnp.ones(3)).lower().as_text())
    assert not host_transfers(jax.jit(lambda x: x * 2).trace(jnp.ones(3)).lower().as_text())
