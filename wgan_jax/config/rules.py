"""What the choices of a few fields mean for the rest of a run: each loss's rules, the
augmentation policies, the network families."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class LossRules:
    """What choosing a `loss` means for the rest of a run (the loss functions themselves are
    wgan_jax.core.losses.OBJECTIVES)."""

    clipped: bool  # clip the critic's parameters to [-clip, clip] around each update
    penalised: bool  # add gp_weight times the gradient penalty to the critic loss
    # Fields choosing this loss brings unless they are set too: its published optimizer
    # (from_preset). A dict field is unhashable, so the pairs are a tuple.
    defaults: tuple[tuple[str, Any], ...] = ()


LOSSES: dict[str, LossRules] = {
    # The WGAN (the seed): weight clipping.
    "wgan": LossRules(clipped=True, penalised=False),
    # DCGAN with Radford et al. 2016's optimizer: Adam 2e-4, beta1 0.5.
    "dcgan": LossRules(clipped=False, penalised=False, defaults=(
        ("optimizer", "adam"), ("lr", 2e-4), ("adam_b1", 0.5), ("adam_b2", 0.999))),
    # WGAN-GP: the gradient penalty instead of clipping; Gulrajani et al. 2017's Adam 1e-4,
    # betas (0, 0.9), and a critic without BatchNorm (the penalty is per sample) and, as in the
    # paper's critics, without dropout.
    "wgan-gp": LossRules(clipped=False, penalised=True, defaults=(
        ("optimizer", "adam"), ("lr", 1e-4), ("adam_b1", 0.0), ("adam_b2", 0.9),
        ("critic_norm", "layer"), ("dropout", 0.0))),
}

# DiffAugment's transforms (wgan_jax.core.augment).
AUGMENTATIONS = ("color", "translation", "cutout")


def augment_policy(policy: str) -> tuple[str, ...]:
    """The transforms of an `augment` policy: "off" (none) or a comma-separated subset of
    AUGMENTATIONS, in the order given; raises ValueError naming a bad one."""
    if policy == "off":
        return ()
    names = tuple(name.strip() for name in policy.split(","))
    bad = [name for name in names if name not in AUGMENTATIONS]
    if bad or not names:
        raise ValueError(f"unknown augmentation {', '.join(bad) or repr(policy)}: use off or a "
                         f"comma-separated subset of {', '.join(AUGMENTATIONS)}")
    return names

# The network families `arch` picks (wgan_jax.core.models).
ARCHS = ("seed", "dcgan")
