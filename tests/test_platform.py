"""The accelerator probe and its one-line hint, with the operating system's view faked both ways:
a GPU (or TPU) JAX cannot use gets the install command; a machine without one, or a JAX that
uses it, gets nothing."""

import pytest

from wgan_jax import platform


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """An empty /proc/driver/nvidia/gpus and /dev, to fill per test."""
    gpus, dev = tmp_path / "gpus", tmp_path / "dev"
    gpus.mkdir()
    dev.mkdir()
    monkeypatch.setattr(platform, "NVIDIA_GPUS", gpus)
    monkeypatch.setattr(platform, "TPU_DEVICES", dev)
    return gpus, dev


def test_a_gpu_beside_a_cpu_only_jax_gets_the_install_command(machine):
    gpus, _ = machine
    (gpus / "0000:01:00.0").mkdir()
    assert platform.on_cpu()  # the tests' JAX (JAX_PLATFORMS=cpu)
    hint = platform.accelerator_hint()
    assert hint.startswith("This machine has an NVIDIA GPU, but the installed JAX is its "
                           "CPU-only build; `pip install -e '.[cuda12]'`")
    assert "\n" not in hint


def test_tpu_chips_get_the_tpu_install_command(machine):
    _, dev = machine
    (dev / "accel0").touch()
    assert "`pip install -e '.[tpu]'`" in platform.accelerator_hint()


def test_no_accelerator_or_a_jax_that_uses_it_gets_no_hint(machine, monkeypatch):
    gpus, _ = machine
    assert platform.visible_accelerator() is None and platform.accelerator_hint() is None
    (gpus / "0000:01:00.0").mkdir()
    monkeypatch.setattr(platform, "on_cpu", lambda: False)  # JAX's CUDA build in use
    assert platform.accelerator_hint() is None


def test_a_driver_without_gpus_listed_is_no_gpu(machine):
    """The driver's folder exists but lists nothing (a driver left after the card went)."""
    assert platform.visible_accelerator() is None
