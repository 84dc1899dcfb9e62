"""Toy vector data: mixtures of isotropic Gaussians in 1-D and 2-D, where the game can be drawn.

- gaussians_1d: the picture of Goodfellow et al. 2014, Fig. 1 (a data density on a line; a mixture
  when given several means).
- ring_2d: 8 Gaussians on a circle (Metz et al. 2017, Unrolled GANs: radius 2, std 0.02).
- grid_2d: 25 Gaussians on a 5x5 grid (VEEGAN, PacGAN: points -4, -2, 0, 2, 4, std 0.05).

Scale: G's output is a tanh, in (-1, 1). The configs give the mixtures in those units: the ring and
the grid are the papers' scaled by 0.4 and 0.2, so their outermost modes sit at 0.8 and three
standard deviations stay inside (-1, 1); the mode metrics use the same scaled units.
"""

import math
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from gan_cli.errors import GanError


@dataclass(frozen=True)
class GaussianMixture:
    """Equally weighted isotropic Gaussians: centres (K, D) and one standard deviation per mode (K,)."""

    centers: torch.Tensor
    stds: torch.Tensor

    @property
    def dim(self) -> int:
        return self.centers.shape[1]

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n points float32 (n, D) and the mode each came from, int64 (n,); the same for a seed."""
        g = torch.Generator().manual_seed(seed)
        modes = torch.randint(len(self.centers), (n,), generator=g)
        noise = torch.randn(n, self.dim, generator=g)
        return self.centers[modes] + self.stds[modes, None] * noise, modes

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """p(x) of 1-D points x (M,) -> (M,)."""
        if self.dim != 1:
            raise ValueError("density is drawn for 1-D mixtures only")
        z = (x[:, None] - self.centers[None, :, 0]) / self.stds  # (M, K)
        return (torch.exp(-0.5 * z**2) / (self.stds * math.sqrt(2 * math.pi))).mean(dim=1)

    def reach(self) -> float:
        """The largest |coordinate| within three standard deviations of a mode."""
        return (self.centers.abs().amax(dim=1) + 3 * self.stds).max().item()


def _gaussians_1d(cfg: DictConfig) -> GaussianMixture:
    if len(cfg.means) != len(cfg.stds) or not len(cfg.means):
        raise GanError(f"dataset.means ({len(cfg.means)} values) and dataset.stds ({len(cfg.stds)}) need one value per mode")
    return GaussianMixture(torch.tensor(list(cfg.means)).view(-1, 1), torch.tensor(list(cfg.stds)))


def _ring_2d(cfg: DictConfig) -> GaussianMixture:
    angles = 2 * math.pi * torch.arange(cfg.modes) / cfg.modes
    centers = cfg.radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (modes, 2)
    return GaussianMixture(centers, torch.full((cfg.modes,), float(cfg.std)))


def _grid_2d(cfg: DictConfig) -> GaussianMixture:
    ticks = torch.linspace(-cfg.extent, cfg.extent, cfg.grid_size)
    centers = torch.cartesian_prod(ticks, ticks)  # (grid_size^2, 2)
    return GaussianMixture(centers, torch.full((len(centers),), float(cfg.std)))


MIXTURES = {"gaussians_1d": _gaussians_1d, "ring_2d": _ring_2d, "grid_2d": _grid_2d}


def toy_mixture(cfg: DictConfig) -> GaussianMixture:
    """The mixture a toy dataset config describes."""
    return MIXTURES[cfg.name](cfg)


def load_toy(cfg: DictConfig) -> torch.Tensor:
    """dataset.num_samples points float32 (N, D) of the toy dataset, fixed by dataset.seed."""
    points, _ = toy_mixture(cfg).sample(cfg.num_samples, cfg.seed)
    return points
