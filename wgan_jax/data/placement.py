"""Where a run's training images live, decided before they are read into memory.

"device": the whole set in host memory and on every device, batches drawn inside the step (no
host work per iteration). "stream": the set stays in its memory-mapped file on disk and the host
gathers each iteration's batches (wgan_jax.data.stream). "auto" keeps the set on the device where
its decoded size fits the memory budget and streams it otherwise.
"""

from __future__ import annotations

import dataclasses
import os

from wgan_jax.errors import UserError

# A set is placed on the device only if it takes at most this share of the free memory of the
# host and of each device: the networks, their optimizer states, activations and the evaluation
# need the rest.
SHARE = 0.5
# Overrides the measured budget (bytes; K, M, G suffixes): lets a test, or a user sharing the
# machine, make a set count as too big without having one.
BUDGET_VARIABLE = "WGAN_JAX_MEMORY_BUDGET"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def gigabytes(count: int) -> str:
    return f"{count / 1e9:.2f} GB"


def host_available() -> int:
    """Bytes of host memory available to a new allocation (Linux's MemAvailable), else the
    physical memory."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def device_available() -> int | None:
    """The least free memory of this process's devices, in bytes; None where the devices report
    none (the CPU, whose memory is the host's)."""
    import jax

    free = []
    for device in jax.local_devices():
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return min(free) if free else None


def parse_bytes(text: str) -> int:
    """'2000000', '512M' or '1.5G' as a count of bytes; a one-line error otherwise."""
    value = text.strip().upper().removesuffix("B")
    unit = value[-1:] if value[-1:] in _UNITS and value[-1:] else ""
    try:
        count = float(value[:-1] if unit else value) * _UNITS[unit]
    except ValueError:
        raise UserError(f"{BUDGET_VARIABLE}={text!r}: not a size (give bytes, or a number with "
                        f"K, M or G)") from None
    if count <= 0:
        raise UserError(f"{BUDGET_VARIABLE}={text!r}: must be positive")
    return int(count)


def budget() -> tuple[int, str]:
    """The most bytes of images the device placement may take, and where the figure comes from."""
    if os.environ.get(BUDGET_VARIABLE):
        count = parse_bytes(os.environ[BUDGET_VARIABLE])
        return count, f"{BUDGET_VARIABLE}={os.environ[BUDGET_VARIABLE]}"
    host, device = host_available(), device_available()
    if device is not None and device < host:
        return int(SHARE * device), f"half the free memory of a device, {gigabytes(device)}"
    return int(SHARE * host), f"half the available host memory, {gigabytes(host)}"


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the images go, and the line that says why where it is not the usual place."""

    mode: str  # "device" or "stream"
    line: str | None  # printed before training; None for the everyday case (it fits)


def decide(requested: str, size: int, what: str, source: str) -> Placement:
    """The placement of `size` bytes of decoded images (`what`: their count and shape, in
    words; `source`: where the host reads them, in words) under --data-placement `requested`
    (auto, device or stream)."""
    if requested == "stream":
        return Placement("stream", f"Streaming {what} ({gigabytes(size)}) from {source}, as "
                                   f"--data-placement stream asks.")
    limit, why = budget()
    if requested == "device":
        line = None if size <= limit else (
            f"Placing {what} ({gigabytes(size)}) in memory as --data-placement device asks, "
            f"above the budget of {gigabytes(limit)} ({why}).")
        return Placement("device", line)
    if size <= limit:
        return Placement("device", None)
    return Placement("stream", f"Streaming {what}: decoded they take {gigabytes(size)}, above the "
                               f"memory budget of {gigabytes(limit)} ({why}); each iteration's "
                               f"batches are gathered from {source} (--data-placement device "
                               f"to override).")
