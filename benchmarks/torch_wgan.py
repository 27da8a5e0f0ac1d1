"""The seed's WGAN as a PyTorch user writes it: eager modules, torch.optim.RMSprop, clamp_ loop.

Same networks and algorithm as wgan_jax's seed preset (REFERENCE.md section 1): real and fake
batches through the critic separately, one RMSprop update per critic step (alpha 0.9, eps 1e-7,
which PyTorch adds outside the square root as Keras does), clip after each update, then one
generator step. The whole dataset sits on the device as uint8, as in the JAX program, so the
comparison measures the training step and not a data loader.
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


class TorchWGAN:
    """One object holding both nets, both optimizers and the data; `iteration()` trains one
    generator iteration."""

    def __init__(self, images_uint8: np.ndarray, batch_size: int, device: str, n_critic: int = 5,
                 lr: float = 5e-5, clip: float = 0.01, seed: int = 0):
        torch.manual_seed(seed)
        torch.backends.cudnn.benchmark = True
        self.device, self.batch, self.n_critic, self.clip = device, batch_size, n_critic, clip
        # NHWC uint8 -> NCHW uint8 on the device, scaled per batch.
        self.data = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).contiguous().to(device)
        self.G, self.D = generator().to(device), critic().to(device)
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


def benchmark(images: np.ndarray, batch_size: int, iterations: int, warmup: int = 10) -> dict:
    """ms per generator iteration of the eager loop, after `warmup` iterations."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = TorchWGAN(images, batch_size, device)
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
    return {"impl": "pytorch-eager", "batch": batch_size, "ms_per_iter": 1000 * seconds / iterations,
            "compile_s": warm, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "version": torch.__version__}
