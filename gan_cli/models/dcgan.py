"""DCGAN (Radford et al. 2016), with as many stride-2 stages as the image size needs.

The paper's rules: no pooling (strided convolutions), batch norm everywhere except G's output and
D's input layer, ReLU in G with tanh at the output, LeakyReLU(0.2) in D, no hidden fully-connected
layers. An image of size S is built from a base of size b = S / 2^n (b <= 7): 28 = 7 * 2^2,
32 = 4 * 2^3, 64 = 4 * 2^4. Widths double at each lower resolution.

Conditioning (Mirza & Osindero 2014): G reads [z, one-hot y, c]; D reads the image with K extra
constant channels, the one-hot label broadcast over the pixels. InfoGAN's Q head (Chen et al. 2016)
sits on D's last feature map: FC 128 - norm - LeakyReLU - FC, as in the paper's MNIST network.
"""

from itertools import chain

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.models.base import Discriminator, Generator
from gan_cli.models.codes import CodeSpec
from gan_cli.models.layers import (
    InnerConv2d,
    InnerConvTranspose2d,
    ThinConvTranspose2d,
    ThinInputConv2d,
    WholeMapConv2d,
)

D_NORMS = ("batch", "layer", "none")


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


def feature_norm(kind: str, channels: int) -> nn.Module:
    """D's normalisation: batch norm (DCGAN), layer norm over (C, H, W) (WGAN-GP critics), or none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def generator_stages(input_dim: int, channels: int, image_size: int, width: int) -> list[list[nn.Module]]:
    """DCGAN's generator as its layers' modules, one list per layer: a projection of the (B, input_dim,
    1, 1) input to a base x base map, stride-2 stages that each double the resolution, and the output
    layer to `channels` with tanh. Fresh modules at every call (CoGAN builds one copy per domain)."""
    base, stages = resolution_stages(image_size)
    widths = [width * 2 ** (stages - 1 - i) for i in range(stages)]  # e.g. [128, 64] for 28x28
    layers = [[ThinConvTranspose2d(input_dim, widths[0], base, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]]
    for w_in, w_out in zip(widths, widths[1:]):
        layers.append([InnerConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(inplace=True)])
    layers.append([ThinConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()])
    return layers


def discriminator_stages(in_channels: int, image_size: int, width: int, norm: str) -> tuple[list[list[nn.Module]], tuple[int, int]]:
    """DCGAN's discriminator body as its layers' modules, one list per stride-2 layer (no normalisation
    on the input layer, as the paper says), and the (channels, size) of the map it ends in, which the
    caller's head reads whole."""
    base, stages = resolution_stages(image_size)
    widths = [width * 2**i for i in range(stages)]  # e.g. [64, 128] for 28x28
    layers = [[ThinInputConv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]]
    for w_in, w_out in zip(widths, widths[1:]):
        layers.append([InnerConv2d(w_in, w_out, 4, 2, 1, bias=norm == "none"), feature_norm(norm, w_out), nn.LeakyReLU(0.2, inplace=True)])
    return layers, (widths[-1], base)


class DCGANGenerator(Generator):
    """[z, y, c] (B, input_dim) -> images (B, C, S, S) in [-1, 1]."""

    def __init__(self, shape: DataShape, latent_dim: int, width: int, num_classes: int = 0, codes=CodeSpec()):
        super().__init__(latent_dim, num_classes, codes)
        self.sample_shape = shape.sample_shape  # (C, S, S)
        stages = generator_stages(self.input_dim, shape.channels, shape.image_size, width)
        self.net = nn.Sequential(*chain(*stages))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.joined_input(z, y, c)[:, :, None, None])


class DCGANDiscriminator(Discriminator):
    """images (B, C, S, S) [+ labels] -> DiscriminatorOutput(logits (B / pack,), Q's code predictions or None, features)."""

    def __init__(
        self, shape: DataShape, width: int, norm: str = "batch", num_classes: int = 0, codes=CodeSpec(),
        pack: int = 1, minibatch_std: bool = False,
    ):
        super().__init__(num_classes, codes, pack, minibatch_std)
        stages, (channels, base) = discriminator_stages(pack * (shape.channels + num_classes), shape.image_size, width, norm)
        self.body = nn.Sequential(*chain(*stages))  # -> (B, channels, base, base)
        self.head = WholeMapConv2d(channels + self.head_extra, 1, base, 1, 0)  # -> (B, 1, 1, 1)
        if codes:
            q_norm = {"batch": nn.BatchNorm1d(128), "layer": nn.LayerNorm(128)}.get(norm, nn.Identity())
            self.code_head = nn.Sequential(
                nn.Flatten(), nn.Linear(channels * base * base, 128), q_norm, nn.LeakyReLU(0.2, inplace=True),
                nn.Linear(128, codes.q_dim),
            )

    def condition(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Append the one-hot label as K constant channels: (B, C, S, S) -> (B, C + K, S, S)."""
        if not self.num_classes:
            return x
        label_maps = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
        return torch.cat([x, label_maps.expand(-1, -1, *x.shape[2:])], dim=1)
