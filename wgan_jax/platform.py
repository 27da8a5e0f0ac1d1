"""Where the programs run: the one answer to "is this a CPU", and what to say when the machine
has an accelerator that the installed JAX cannot use (`pip install -e .` installs JAX's CPU
build; its CUDA and TPU builds are extras, see the README's "On a GPU or TPU")."""

from __future__ import annotations

import os
from pathlib import Path

import jax

INSTALL = {"gpu": "pip install -e '.[cuda12]'", "tpu": "pip install -e '.[tpu]'"}
# What the NVIDIA driver and a Cloud TPU VM leave on a Linux machine, with or without a JAX that
# can use them: the driver lists each GPU here; a TPU VM exposes its chips as accel devices.
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
TPU_DEVICES = Path("/dev")


def on_cpu() -> bool:
    """Whether JAX's default backend is the CPU (no GPU or TPU it can use)."""
    return jax.default_backend() == "cpu"


def visible_accelerator() -> str | None:
    """"gpu" where an NVIDIA driver lists a GPU, "tpu" where TPU chips are present, else None;
    read from the operating system, not from JAX."""
    try:
        if NVIDIA_GPUS.is_dir() and any(NVIDIA_GPUS.iterdir()):
            return "gpu"
        if any(name.startswith("accel") for name in os.listdir(TPU_DEVICES)):
            return "tpu"
    except OSError:
        pass
    return None


def accelerator_hint() -> str | None:
    """One line for a machine whose GPU or TPU this JAX cannot use (a CPU-only build), with the
    install command; None where JAX uses an accelerator or the machine has none."""
    if not on_cpu():
        return None
    kind = visible_accelerator()
    if kind is None:
        return None
    name = "an NVIDIA GPU" if kind == "gpu" else "TPU chips"
    return (f"This machine has {name}, but the installed JAX is its CPU-only build; "
            f"`{INSTALL[kind]}` installs the {kind.upper()} build (README: On a GPU or TPU).")
