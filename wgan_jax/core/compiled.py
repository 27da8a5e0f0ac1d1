"""Jitting a function of a config: compiled once per program, not once per config."""

from __future__ import annotations

import functools
import inspect

import jax


def config_jit(fn, static: tuple[str, ...] = ("config",)):
    """`fn` jitted with its `config` (and the other `static` arguments) static, the config
    keyed by `program()`: calls whose configs differ only in what the state carries (seed, clip,
    learning rates) share one compilation. `lower` and `_cache_size` are the jitted function's."""
    jitted = jax.jit(fn, static_argnames=static)
    signature = inspect.signature(fn)

    def keyed(args, kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["config"] = bound.arguments["config"].program()
        return bound.args, bound.kwargs

    @functools.wraps(fn)
    def call(*args, **kwargs):
        args, kwargs = keyed(args, kwargs)
        return jitted(*args, **kwargs)

    def lower(*args, **kwargs):
        args, kwargs = keyed(args, kwargs)
        return jitted.lower(*args, **kwargs)

    call.lower, call._cache_size = lower, jitted._cache_size
    return call
