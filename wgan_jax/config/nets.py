"""The `nets` section: the generator and the critic, and the images they can be built for."""

from __future__ import annotations

import dataclasses

from wgan_jax.config.knobs import (check_choices, knob, positive_finite, positive_int,
                                   unit_interval)
from wgan_jax.config.rules import ARCHS
from wgan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Nets:
    """The generator and the critic; `models.build` takes this section whole."""

    arch: str = knob(
        "seed", "seed: the Keras-GAN wgan.py networks, any image size and channel count; dcgan: "
        "the DCGAN networks of the WGAN authors' code, square images of 16, 32, 64, ... pixels "
        "(docs/algorithm.md)", choices=ARCHS)
    conditional: bool = knob(
        False, "class-conditional WGAN: the generator takes a class label (a learned embedding "
        "joined to the noise), the critic adds a projection term <embed(y), features(x)> (Miyato "
        "and Koyama 2018) clipped with every other critic weight; labels from the data (MNIST's "
        "digits, a folder's sub-folders), uniform ones for fake batches")
    latent_dim: int = knob(100, "length of the generator's N(0, 1) input vector")
    gen_channels: tuple[int, ...] = knob(
        (128, 64), "seed networks: channels of the generator's upsampling blocks, one x2 block "
        "each, so it starts at the image size / 2^len (the seed: 128,64 from 7x7 to 28x28)",
        metavar="C,C")
    critic_channels: tuple[int, ...] = knob(
        (16, 32, 64, 128), "seed networks: channels of the critic's conv blocks; each halves the "
        "size while it is above 4 (the seed: 16,32,64,128)", metavar="C,C,...")
    ngf: int = knob(64, "DCGAN networks: the generator's last hidden width, doubling per level "
                        "towards the 4x4 start (the authors' 64)")
    ndf: int = knob(64, "DCGAN networks: the critic's first width, doubling per level towards "
                        "the 4x4 end (the authors' 64)")
    critic_norm: str = knob(
        "batch", "normalisation in the critic's blocks after the first: batch (the seed, the "
        "authors' code), layer (per sample) or none (the authors' _nobn critic); the gradient "
        "penalty needs layer or none", choices=("batch", "layer", "none"))
    dropout: float = knob(0.25, "dropout rate after each critic conv block")
    bn_momentum: float = knob(0.8, "BatchNorm momentum, Keras/Flax convention (running = m * "
                                   "running + (1 - m) * batch)")
    bn_eps: float = knob(1e-3, "BatchNorm epsilon (Keras' default, the seed's)")
    compute_dtype: str = knob(
        "float32", "dtype of activations, matmuls and convolutions; bfloat16 halves memory "
        "traffic; parameters, BatchNorm statistics, reductions, losses and optimizer states stay "
        "float32", choices=("float32", "bfloat16"))
    # The two below are what the data tells the networks (wgan_jax.train.start.prepare fills them
    # in from the training split); they are part of the networks a checkpoint holds.
    image_shape: tuple[int, int, int] = knob(
        (28, 28, 1), "(height, width, channels) of the training images; filled in from the "
        "dataset", flag=None)
    num_classes: int = knob(0, "classes of a conditional run's labels; filled in from the "
                               "dataset", flag=None)

    def validate(self) -> None:
        positive_int(self, "latent_dim", "ngf", "ndf")
        check_choices(self)
        positive_finite("bn_eps", self.bn_eps)
        unit_interval(self, "dropout", "bn_momentum")
        for name in ("gen_channels", "critic_channels"):
            widths = getattr(self, name)
            if not widths or min(widths) < 1:
                raise UserError(f"{name} must be one or more positive widths, got {widths}")

    def check_images(self, height: int, width: int, channels: int) -> None:
        """The networks can be built for images of this shape."""
        if channels < 1:
            raise UserError(f"images need at least one channel, got {(height, width, channels)}")
        if self.arch == "dcgan":
            if height != width or height < 16 or height & (height - 1):
                raise UserError(f"arch dcgan needs square images of 16, 32, 64, ... pixels, got "
                                f"{height}x{width}; pass --image-size 32 or 64")
            if min(self.ngf, self.ndf) < 2:
                raise UserError(f"ngf and ndf must be at least 2, got {self.ngf}, {self.ndf}")
            if self.dropout:
                raise UserError(f"the DCGAN critic has no dropout (as in the authors' code); got "
                                f"dropout {self.dropout}")
            return
        factor = 2 ** len(self.gen_channels)
        if height % factor or width % factor:
            raise UserError(
                f"the seed generator doubles the size {len(self.gen_channels)} time(s) "
                f"(gen_channels {self.gen_channels}), so image sides must be multiples of "
                f"{factor}; got {height}x{width} (pass --image-size, or other gen_channels)")
