"""What a checkpoint's state must look like before it is read, and reading it: a checkpoint of
another layout is a one-line error, one whose files do not read is `Damaged` (skipped for an
older one where no step was asked for)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from wgan_jax.core.state import TrainState
from wgan_jax.errors import UserError


class Damaged(Exception):
    """A checkpoint whose files cannot be read: truncated, missing or garbage."""


def _key_name(key) -> str:
    return str(getattr(key, "name", getattr(key, "key", getattr(key, "idx", key))))


def _shapes(tree) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Each leaf's path (as names) and shape."""
    return {tuple(_key_name(k) for k in path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree) if hasattr(leaf, "shape")}


def check(where: Path, abstract: TrainState) -> None:
    """Refuses a checkpoint whose state differs from `abstract`'s in any leaf's path or
    shape: one of an older wgan_jax, or of other networks or optimizers. Raises _Damaged if
    its metadata cannot be read. Runs before any array is read."""
    try:  # orbax's metadata: the global shapes (a sharded save writes shards)
        meta = ocp.PyTreeCheckpointer().metadata(where / "state")
        tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)
        saved = _shapes(tree)
    except Exception as err:  # noqa: BLE001 - missing, truncated or garbage metadata
        raise Damaged(f"unreadable metadata: {type(err).__name__}: {err}") from None
    if not saved:  # orbax answers a step whose array store does not read with no tree
        raise Damaged("unreadable metadata: no arrays listed")
    older = sorted({path[0] for path in saved} - {f.name for f in dataclasses.fields(abstract)})
    if older:
        raise UserError(f"checkpoint {where} has the state layout of an older wgan_jax (with "
                        f"{', '.join(older)}; now networks are gen/critic (params, stats, opt) "
                        f"with a leading run axis): this version cannot read it; train anew, "
                        f"or read it with the wgan_jax release that wrote it")
    expected = _shapes(abstract)
    if saved != expected:
        differ = sorted(set(saved.items()) ^ set(expected.items()))[0][0]
        raise UserError(f"checkpoint {where} does not match this config's networks: "
                        f"{'/'.join(differ)} differs (saved {saved.get(differ, 'none')}, "
                        f"expected {expected.get(differ, 'none')})")


def read(manager: ocp.CheckpointManager, step: int, abstract: TrainState) -> TrainState:
    """Reads the state; raises Damaged if the files do not read (the layout matched)."""
    try:
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        return manager.restore(step, args=args)["state"]
    except Exception as err:  # noqa: BLE001 - orbax and tensorstore raise many types
        raise Damaged(f"{type(err).__name__}: {err}") from None
