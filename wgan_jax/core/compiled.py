"""Jitting a function of a program: compiled once per program, not once per config."""

from __future__ import annotations

import functools
import inspect

import jax

from wgan_jax.config import Config, Program


def program_jit(fn, static: tuple[str, ...] = ("program",)):
    """`fn` jitted with its `program` (and the other `static` arguments) static. The caller may
    pass a whole Config there: it is keyed by its `program()`, so calls whose configs differ only
    in what the state carries (seeds, clip, learning rates) or what the host reads share one
    compilation. `lower` and `_cache_size` are the jitted function's."""
    jitted = jax.jit(fn, static_argnames=static)
    signature = inspect.signature(fn)

    def keyed(args, kwargs):
        bound = signature.bind(*args, **kwargs)
        given: Config | Program = bound.arguments["program"]
        bound.arguments["program"] = given.program() if isinstance(given, Config) else given
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
