"""The named presets (sets of field overrides) and what --arch brings with it."""

from __future__ import annotations

from typing import Any


# Each preset is a set of overrides of the defaults; the first line says what it is for. The
# parity presets keep the seed's networks: they pin down the algorithm (docs/algorithm.md).
PRESETS: dict[str, dict[str, Any]] = {
    # The seed program's recipe: Keras-GAN wgan.py's networks and hyper-parameters, one fused
    # update per critic step.
    "seed": {},
    # Draws readable digits in under 10 minutes on a 2-core CPU: a half-width generator (the
    # generator is ~99% of the FLOPs), four times the seed's learning rate, a looser clip bound
    # and no dropout in the critic, chosen over 3 seeds each by benchmarks/quick_sweep.py
    # (docs/quality.md). No generator averaging: in runs this short it scored worse. Three
    # critic steps, not five: the FLOPs of 2000 iterations at five buy 2730 generator updates,
    # which beat them over the same 3 seeds.
    "quick": dict(gen_channels=(64, 32), lr=2e-4, clip=0.1, dropout=0.0, n_critic=3,
                  iterations=2730, sample_every=200, log_every=25),
    # The paper's Algorithm 1: batch 64, one RMSProp update per critic step, clip after it. The
    # paper gives no RMSProp decay or eps; these are the authors' code's (PyTorch defaults).
    "paper": dict(batch_size=64, rmsprop_decay=0.99, rmsprop_eps=1e-8),
    # The authors' PyTorch code (martinarjovsky/WassersteinGAN) in full: its DCGAN networks at
    # 64x64 (ngf = ndf = 64, PyTorch's BatchNorm momentum and eps); 100 critic steps for the
    # first 25 generator iterations and every 500th; clip at the start of each critic step
    # (gamma/beta included, running statistics not); RMSprop alpha 0.99, eps 1e-8 outside the
    # sqrt; the generator's train-mode forward updates its running averages during critic steps.
    "official": dict(arch="dcgan", image_size=64, dropout=0.0, batch_size=64, rmsprop_decay=0.99,
                     rmsprop_eps=1e-8, clip_when="before", critic_schedule="official",
                     fake_batches="train-update"),
    # The seed's Keras program step for step: two train_on_batch updates per critic step, every
    # critic layer weight clipped (BatchNorm moving statistics too), generator.predict (inference
    # mode) for fake batches, the generator trained on the last critic step's noise, and a
    # '%d [D loss: %f] [G loss: %f]' line per iteration.
    "keras-exact": dict(keras_exact=True, clip_batch_stats=True, fake_batches="inference",
                        log_every=1),
}


# What --arch changes besides the networks, unless set explicitly: the DCGAN networks come with
# the BatchNorm of the authors' PyTorch code (momentum 0.1 in PyTorch's convention, eps 1e-5)
# and, as there, no dropout.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "seed": {},
    "dcgan": dict(bn_momentum=0.9, bn_eps=1e-5, dropout=0.0),
}
