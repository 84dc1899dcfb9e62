"""The networks of the image-to-image translation families (CycleGAN, StarGAN).

ResnetGenerator (Johnson et al. 2016, as CycleGAN and StarGAN use it): a 7x7 stem, `downsamplings`
stride-2 convolutions, residual blocks at the lowest resolution, as many stride-2 transposed
convolutions back up, and a 7x7 head with tanh; instance norm throughout. Extra input channels carry
a condition (StarGAN's target-domain planes).

PatchDiscriminator (Isola et al. 2017's PatchGAN): stride-2 4x4 convolutions, then a stride-1 one and
a 1-channel output map: each output judges one patch of the input. With `num_domains` it also has
StarGAN's auxiliary classifier: one convolution spanning the last feature map -> domain logits.

Both are sized from the data: 28x28 digits go 28 -> 14 -> 7 with two downsamplings, and the
discriminator's output map stays several patches wide.
"""

from dataclasses import dataclass

import torch
from torch import nn


def _norm(channels: int) -> nn.Module:
    # Instance norm with learned scale and shift (CycleGAN's pytorch code: affine=False; StarGAN's: True).
    return nn.InstanceNorm2d(channels, affine=True)


class ResidualBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x), reflection padded: (B, C, H, W) -> same."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), _norm(channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Images (B, channels + condition_channels, S, S) (images in [-1, 1], then any condition planes)
    -> images (B, channels, S, S) in [-1, 1]. S must divide by 2**downsamplings (28 with 2: 28 -> 14 -> 7)."""

    def __init__(self, channels: int, condition_channels: int, width: int, blocks: int, downsamplings: int):
        super().__init__()
        self.condition_channels = condition_channels
        # The stem pads with zeros when condition planes join the input (as StarGAN's code): a constant
        # plane, reflection padded, gives every output channel a constant that the instance norm right
        # after subtracts, so G would never see its target; against zeros its response varies near the
        # border and survives the norm.
        stem_padding = nn.ZeroPad2d(3) if condition_channels else nn.ReflectionPad2d(3)
        layers = [stem_padding, nn.Conv2d(channels + condition_channels, width, 7, bias=False), _norm(width), nn.ReLU(inplace=True)]
        image_channels, channels = channels, width
        for _ in range(downsamplings):  # S -> S/2, channels doubled
            layers += [nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False), _norm(2 * channels), nn.ReLU(inplace=True)]
            channels *= 2
        layers += [ResidualBlock(channels) for _ in range(blocks)]
        for _ in range(downsamplings):  # S/2 -> S, channels halved
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=False),
                _norm(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, image_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class PatchOutput:
    logits: torch.Tensor  # (B, 1, P, P): one real/fake logit per patch
    domain_logits: torch.Tensor | None  # (B, num_domains): StarGAN's classifier, None without one


class PatchDiscriminator(nn.Module):
    """Images (B, C, S, S) -> PatchOutput.

    `downsamplings` stride-2 4x4 convolutions (width doubling from `width`), one stride-1 4x4 (the
    PatchGAN's last feature layer), then a 3x3 one to the patch logits, so the output map keeps about
    S / 2**downsamplings patches a side (28 with 2 -> 7 -> a 6x6 map). LeakyReLU 0.2; instance norm
    on every layer but the first (norm="none": none, as StarGAN's D, which plays WGAN-GP)."""

    def __init__(self, channels: int, image_size: int, width: int, downsamplings: int, norm: str = "instance", num_domains: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels, out_channels, size = channels, width, image_size
        for index in range(downsamplings + 1):
            stride = 2 if index < downsamplings else 1
            layers.append(nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=1))
            if norm == "instance" and index > 0:
                layers.append(_norm(out_channels))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            size = (size + 2 - 4) // stride + 1
            in_channels, out_channels = out_channels, 2 * out_channels
        self.features = nn.Sequential(*layers)
        self.patch = nn.Conv2d(in_channels, 1, 3, padding=1)
        # StarGAN's classifier reads the whole last feature map: a convolution as large as it.
        self.classify = nn.Conv2d(in_channels, num_domains, size) if num_domains else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> PatchOutput:
        """`labels` is unused: D(x, y) is the discriminator call the input-gradient penalties make."""
        h = self.features(x)  # (B, F, P, P)
        domain_logits = self.classify(h).flatten(1) if self.classify is not None else None
        return PatchOutput(self.patch(h), domain_logits)
