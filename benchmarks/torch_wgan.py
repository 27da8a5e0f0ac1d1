"""The WGAN as a PyTorch user writes it: eager modules (or `torch.compile`d ones),
torch.optim.RMSprop, a clamp_ loop.

Same networks and algorithm as wgan_jax's (REFERENCE.md section 1): real and fake batches
through the critic separately, one RMSprop update per critic step (alpha 0.9, eps 1e-7, which
PyTorch adds outside the square root as Keras does), clip after each update, then one generator
step. The networks are the seed's (28x28 grey) or the WGAN authors' DCGAN_G / DCGAN_D
(models/dcgan.py, any power-of-two size). The whole dataset sits on the device as uint8, as in
the JAX program, so the comparison measures the training step and not a data loader.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


def generator(latent: int = 100, widths=(128, 64)) -> nn.Module:
    return nn.Sequential(
        nn.Linear(latent, widths[0] * 7 * 7), nn.ReLU(), nn.Unflatten(1, (widths[0], 7, 7)),
        nn.Upsample(scale_factor=2), nn.Conv2d(widths[0], widths[0], 4, padding="same"),
        nn.BatchNorm2d(widths[0], momentum=0.2, eps=1e-3), nn.ReLU(),  # Keras momentum 0.8
        nn.Upsample(scale_factor=2), nn.Conv2d(widths[0], widths[1], 4, padding="same"),
        nn.BatchNorm2d(widths[1], momentum=0.2, eps=1e-3), nn.ReLU(),
        nn.Conv2d(widths[1], 1, 4, padding="same"), nn.Tanh())


def critic(widths=(16, 32, 64, 128)) -> nn.Module:
    def block(c_in, c_out, stride, norm, pad=False):
        layers = [nn.Conv2d(c_in, c_out, 3, stride, padding=1)]
        if pad:
            layers.append(nn.ZeroPad2d((0, 1, 0, 1)))
        if norm:
            layers.append(nn.BatchNorm2d(c_out, momentum=0.2, eps=1e-3))
        return layers + [nn.LeakyReLU(0.2), nn.Dropout(0.25)]

    return nn.Sequential(*block(1, widths[0], 2, False), *block(widths[0], widths[1], 2, True, True),
                         *block(widths[1], widths[2], 2, True), *block(widths[2], widths[3], 1, True),
                         nn.Flatten(), nn.Linear(widths[3] * 4 * 4, 1))


def dcgan_generator(size: int, channels: int, ngf: int = 64, latent: int = 100) -> nn.Module:
    """The authors' DCGAN_G without extra layers: 4x4 from the noise, then x2 per level."""
    width, side = ngf // 2 * (size // 4), 4
    layers = [nn.Unflatten(1, (latent, 1, 1)), nn.ConvTranspose2d(latent, width, 4, 1, 0, bias=False),
              nn.BatchNorm2d(width), nn.ReLU()]
    while side < size // 2:
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(width // 2), nn.ReLU()]
        width, side = width // 2, side * 2
    return nn.Sequential(*layers, nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh())


def dcgan_critic(size: int, channels: int, ndf: int = 64) -> nn.Module:
    """The authors' DCGAN_D without extra layers: /2 per level down to 4x4, then one score."""
    layers, width, side = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)], ndf, size // 2
    while side > 4:
        layers += [nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width),
                   nn.LeakyReLU(0.2)]
        width, side = 2 * width, side // 2
    return nn.Sequential(*layers, nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Flatten())


class TorchWGAN:
    """One object holding both nets, both optimizers and the data; `iteration()` trains one
    generator iteration. `arch` "seed" (28x28x1 data) or "dcgan" (the data's size and channels);
    `compiled` wraps both networks in torch.compile."""

    def __init__(self, images_uint8: np.ndarray, batch_size: int, device: str, n_critic: int = 5,
                 lr: float = 5e-5, clip: float = 0.01, seed: int = 0, arch: str = "seed",
                 compiled: bool = False):
        torch.manual_seed(seed)
        torch.backends.cudnn.benchmark = True
        self.device, self.batch, self.n_critic, self.clip = device, batch_size, n_critic, clip
        # NHWC uint8 -> NCHW uint8 on the device, scaled per batch.
        self.data = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).contiguous().to(device)
        size, channels = images_uint8.shape[1], images_uint8.shape[3]
        nets = (generator(), critic()) if arch == "seed" else \
            (dcgan_generator(size, channels), dcgan_critic(size, channels))
        self.G, self.D = (net.to(device) for net in nets)
        if compiled:
            self.G, self.D = torch.compile(self.G), torch.compile(self.D)
        self.opt_g = torch.optim.RMSprop(self.G.parameters(), lr=lr, alpha=0.9, eps=1e-7)
        self.opt_d = torch.optim.RMSprop(self.D.parameters(), lr=lr, alpha=0.9, eps=1e-7)

    def _real(self) -> torch.Tensor:
        index = torch.randint(0, self.data.shape[0], (self.batch,), device=self.device)
        return (self.data[index].float() - 127.5) / 127.5

    def _noise(self) -> torch.Tensor:
        return torch.randn(self.batch, 100, device=self.device)

    def iteration(self) -> torch.Tensor:
        for _ in range(self.n_critic):
            with torch.no_grad():
                fake = self.G(self._noise())
            self.opt_d.zero_grad(set_to_none=True)
            loss_d = self.D(fake).mean() - self.D(self._real()).mean()
            loss_d.backward()
            self.opt_d.step()
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.clip, self.clip)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = -self.D(self.G(self._noise())).mean()
        loss_g.backward()
        self.opt_g.step()
        return loss_d.detach()

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


def benchmark(images: np.ndarray, batch_size: int, iterations: int, warmup: int = 10,
              arch: str = "seed", compiled: bool = False) -> dict:
    """ms per generator iteration of the eager (or compiled) loop, after `warmup` iterations,
    which also hold torch.compile's compilation."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = TorchWGAN(images, batch_size, device, arch=arch, compiled=compiled)
    start = time.perf_counter()
    for _ in range(warmup):
        model.iteration()
    model.sync()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iterations):
        model.iteration()
    model.sync()
    seconds = time.perf_counter() - start
    return {"impl": "pytorch-compile" if compiled else "pytorch-eager", "batch": batch_size,
            "ms_per_iter": 1000 * seconds / iterations,
            "compile_s": warm, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "version": torch.__version__}
