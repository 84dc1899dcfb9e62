"""CoGAN's networks (Liu & Tuzel 2016): a pair of DCGAN-like GANs, one per domain, that share weights.

The two generators share their first layers, which decode the high-level semantics of z, and keep
their last ones, which render them in each domain; the two discriminators keep their first layers,
which read each domain's pixels, and share their last ones, which judge the semantics. With the
sharing, one z gives the same digit in both domains, although no pair was ever shown.

G is DCGAN's generator whose last stride-2 stage ends in features at full resolution, rendered by a
3x3 stride-1 convolution (as the paper's last layer, a stride-1 deconvolution): the shared layers
then carry the digit to full resolution and a domain's own layer draws it. With DCGAN's output layer
as the domain's own, one linear map of half-resolution features could not draw an edge map of the
digit the other side draws (an edge is a max filter minus the stroke), and the two sides drifted
apart (README: measured).

`shared_layers` (k) counts the shared layers from the input of G and from the output of D, each
network keeping at least its one domain layer: G shares min(k, stages + 1) of its stages + 2 layers,
D min(k, stages) of its stages + 1 (stages: DCGAN's stride-2 stages, 2 at 28x28). k = 0 gives two
independent GANs.
"""

from itertools import chain

import torch
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.models.base import DiscriminatorOutput, Generator
from gan_cli.models.dcgan import discriminator_stages, generator_stages, resolution_stages
from gan_cli.models.layers import InnerConvTranspose2d, WholeMapConv2d

DOMAINS = 2


def most_shared_layers(image_size: int) -> tuple[int, int]:
    """(G's, D's): the most layers each can share at `image_size`, all but its one domain layer."""
    stages = resolution_stages(image_size)[1]
    return stages + 1, stages


def check_shared_layers(shared_layers: int, image_size: int) -> None:
    most = max(most_shared_layers(image_size))
    if not 0 <= shared_layers <= most:
        raise GanError(f"model.shared_layers={shared_layers} must be between 0 (two independent GANs) and {most} (all "
                       f"but each network's one domain layer, at image size {image_size})")


def generator_layers(latent_dim: int, channels: int, image_size: int, width: int) -> list[list[nn.Module]]:
    """G's layers' modules, one list per layer: DCGAN's up to half resolution (`width` features), a
    stride-2 stage to full resolution (width / 2 features), and the 3x3 rendering into `channels`."""
    layers = generator_stages(latent_dim, channels, image_size, width)[:-1]  # without DCGAN's output layer
    layers.append([InnerConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(inplace=True)])
    layers.append([nn.Conv2d(width // 2, channels, 3, 1, 1), nn.Tanh()])
    return layers


class CoupledGenerator(Generator):
    """z (B, latent_dim) -> one image per domain from the same z.

    `pair(z)` gives the two images, (B, C, S, S) each. `forward` puts them side by side, (B, C, S, 2S),
    so that everything that draws from a generator (grids, gan-sample) shows pairs."""

    def __init__(self, shape: DataShape, latent_dim: int, width: int, shared_layers: int):
        super().__init__(latent_dim)
        check_shared_layers(shared_layers, shape.image_size)
        channels, size = shape.channels, shape.image_size
        self.sample_shape = (channels, size, 2 * size)
        shared = min(shared_layers, most_shared_layers(size)[0])
        self.shared = nn.Sequential(*chain(*generator_layers(latent_dim, channels, size, width)[:shared]))  # empty: the identity
        self.heads = nn.ModuleList(
            nn.Sequential(*chain(*generator_layers(latent_dim, channels, size, width)[shared:])) for _ in range(DOMAINS)
        )

    def pair(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        semantics = self.shared(z[:, :, None, None])  # computed once: both domains read the same tensor
        return tuple(head(semantics) for head in self.heads)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat(self.pair(z), dim=3)


class CoupledDiscriminator(nn.Module):
    """(images (B, C, S, S) of one domain, that domain's index) -> DiscriminatorOutput(logits (B,)).

    `view(domain)` is one domain's discriminator as a module of its own (what the loss penalties and
    the judging of gan_cli.games.judging take)."""

    def __init__(self, shape: DataShape, width: int, norm: str, shared_layers: int):
        super().__init__()
        check_shared_layers(shared_layers, shape.image_size)

        def layers() -> list[list[nn.Module]]:  # fresh modules: the input layers are built once per domain
            body, (channels, base) = discriminator_stages(shape.channels, shape.image_size, width, norm)
            return body + [[WholeMapConv2d(channels, 1, base, 1, 0)]]  # the head: the whole map -> (B, 1, 1, 1)

        most = most_shared_layers(shape.image_size)[1]
        own = most + 1 - min(shared_layers, most)  # D has stages + 1 layers (its head)
        self.inputs = nn.ModuleList(nn.Sequential(*chain(*layers()[:own])) for _ in range(DOMAINS))
        self.shared = nn.Sequential(*chain(*layers()[own:]))

    def forward(self, x: torch.Tensor, domain: int) -> DiscriminatorOutput:
        return DiscriminatorOutput(self.shared(self.inputs[domain](x)).flatten())

    def view(self, domain: int) -> nn.Module:
        return DomainDiscriminator(self, domain)


class DomainDiscriminator(nn.Module):
    """One domain's side of a CoupledDiscriminator: D_k(x, labels) with the discriminator contract."""

    def __init__(self, coupled: CoupledDiscriminator, domain: int):
        super().__init__()
        self.coupled, self.domain = coupled, domain

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiscriminatorOutput:
        return self.coupled(x, self.domain)
