"""Shared fixtures. Tests run on the CPU; a GPU is never needed."""

import os
import re
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache per test session, shared by the xdist workers and by the
# train.py subprocesses they start (they inherit the environment): a program several of them
# compile (the tests' tiny config, the quick preset) is compiled once. Tests of --compile-cache
# pass their own folder.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"wgan-jax-tests-{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}"))
# Every program, however quick to compile: the tests compile many small ones several times over
# (each worker, and each config that compiles to the same program).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# LLVM -O0 for XLA:CPU: compiles 3-5x faster, runs ~2x slower; tests are compile-bound. Numerics
# stay IEEE f32 (tolerances below allow for the reordering it may bring).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()



def optimised_env() -> dict:
    """The environment for a subprocess that spends its time running a big network (the FID's
    Inception) rather than compiling small ones: XLA's usual optimisation level, at which the
    Inception compiles and runs ~1.6x faster than at -O0 on this CPU."""
    flags = os.environ["XLA_FLAGS"].replace("--xla_backend_optimization_level=0", "").strip()
    return {**os.environ, "XLA_FLAGS": flags}


def pytest_collection_modifyitems(items):
    """The slow tests first: pytest-xdist hands tests out in this order, so the long ones run
    beside the many short ones instead of alone at the end of the run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from wgan_jax import Config, data, init_state  # noqa: E402
from wgan_jax.core.runs import init_states  # noqa: E402
from wgan_jax.train import loop  # noqa: E402
from wgan_jax.core.state import abstract  # noqa: E402

# Narrow networks keep compilation short; the layer structure is the seed's. No FID: the
# Inception network takes ~0.3 s per image on 2 CPU cores (tests/eval/test_fid.py and the colour
# end-to-end test turn it on, on a few hundred images).
TINY = Config().replace(batch_size=8, n_critic=3, latent_dim=16, gen_channels=(8, 4),
                        critic_channels=(4, 4, 8, 8), iterations=4, log_every=2, sample_every=2,
                        eval_every=0, eval_fid="off")


@pytest.fixture(scope="session")
def mnist_train():
    return data.load_bundled_mnist("train")


@pytest.fixture(scope="session")
def images(mnist_train):
    """The first 512 real MNIST training images, on the device, uint8 (N, 28, 28, 1)."""
    return jax.device_put(mnist_train.images[:512])


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished two-iteration run of the tiny config, a checkpoint at each iteration and an
    averaged generator: the workdir that sample, evaluate and export read. Readers only."""
    workdir = tmp_path_factory.mktemp("tiny") / "run"
    loop.run(TINY.replace(iterations=2, checkpoint_every=1, ema=0.5), workdir)
    return workdir


@pytest.fixture(scope="session")
def config():
    return TINY


@pytest.fixture
def state(config):
    return init_state(config, jax.random.PRNGKey(42))


def target(config):
    """The states of `config`'s runs (leading run axis) as a restore target on the first device."""
    return abstract(init_states, config,
                    jax.sharding.SingleDeviceSharding(jax.devices()[0]))


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


# A conv bias that feeds straight into training-mode BatchNorm cancels out (BN subtracts the batch
# mean), so its exact gradient is 0 and its f32 gradient is rounding noise, which RMSprop's
# g / sqrt(v) turns into full-size steps: its value depends on the op order of the compiled program,
# and so does the BatchNorm running mean that follows it. Seed-exact (Keras' Conv2D has the bias
# too); tests compare these leaves only against the clip bound. The critic's Conv_1 is not among
# them: the seed's ZeroPadding2D sits between it and its BatchNorm, so the batch mean holds only
# 49/64 of its bias and its gradient is real.
_NOISE_DRIVEN = re.compile(r"(\['Conv_[23]'\]|\['UpsampleConv_[01]'\])\['bias'\]|\['mean'\]")


def noise_driven(path) -> bool:
    return bool(_NOISE_DRIVEN.search(jax.tree_util.keystr(path)))


def assert_trees_close(a, b, atol=1e-6, rtol=1e-5):
    """Leaf-by-leaf closeness, except the noise-driven leaves (see above)."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    compared = 0
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
        if noise_driven(path):
            continue
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol,
                                   err_msg=jax.tree_util.keystr(path))
        compared += 1
    assert compared > 0
