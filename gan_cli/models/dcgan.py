"""DCGAN (Radford et al. 2016), with as many stride-2 stages as the image size needs.

The paper's rules: no pooling (strided convolutions), batch norm everywhere except G's output and
D's input layer, ReLU in G with tanh at the output, LeakyReLU(0.2) in D, no hidden fully-connected
layers. An image of size S is built from a base of size b = S / 2^n (b <= 7): 28 = 7 * 2^2,
32 = 4 * 2^3, 64 = 4 * 2^4. Widths double at each lower resolution.
"""

import torch
from torch import nn

from gan_cli.data.source import ImageShape
from gan_cli.errors import GanError
from gan_cli.models.base import Generator


def resolution_stages(image_size: int) -> tuple[int, int]:
    """(base size, number of stride-2 stages) such that base * 2**stages == image_size."""
    base, stages = image_size, 0
    while base > 7 and base % 2 == 0:
        base //= 2
        stages += 1
    if stages == 0 or base < 3 or base > 7:
        raise GanError(
            f"a DCGAN cannot be built for image size {image_size}: it needs size = b * 2^n with "
            "3 <= b <= 7 and n >= 1 (for example 28, 32, 48, 64, 128)"
        )
    return base, stages


class DCGANGenerator(Generator):
    """z (B, latent_dim) -> images (B, C, S, S) in [-1, 1]."""

    def __init__(self, shape: ImageShape, latent_dim: int, width: int):
        super().__init__(latent_dim)
        base, stages = resolution_stages(shape.image_size)
        widths = [width * 2 ** (stages - 1 - i) for i in range(stages)]  # e.g. [128, 64] for 28x28
        layers = [  # project z to a base x base map: (B, latent_dim, 1, 1) -> (B, widths[0], b, b)
            nn.ConvTranspose2d(latent_dim, widths[0], base, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for w_in, w_out in zip(widths, widths[1:]):  # each stage doubles the resolution
            layers += [
                nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], shape.channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """images (B, C, S, S) -> logits (B,). No sigmoid: losses work on logits."""

    def __init__(self, shape: ImageShape, width: int):
        super().__init__()
        base, stages = resolution_stages(shape.image_size)
        widths = [width * 2**i for i in range(stages)]  # e.g. [64, 128] for 28x28
        layers = [  # no batch norm on the input layer (paper)
            nn.Conv2d(shape.channels, widths[0], 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for w_in, w_out in zip(widths, widths[1:]):  # each stage halves the resolution
            layers += [
                nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers += [nn.Conv2d(widths[-1], 1, base, 1, 0)]  # (B, w, b, b) -> (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
