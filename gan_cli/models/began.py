"""BEGAN's networks (Berthelot et al. 2017): an autoencoder discriminator and a generator shaped
like its decoder.

The paper's blocks: 3x3 convolutions with ELUs, no batch norm; the encoder halves the resolution
with stride-2 convolutions while its width grows linearly (n, 2n, 3n, ...), and ends in a fully
connected layer to an embedding h; the decoder (and G) maps h (or z) by a fully connected layer to
an n-channel base map, then at each resolution convolves and upsamples by nearest neighbour, with a
3x3 convolution to the image channels at the end. The number of resolutions follows the image size
as for the DCGAN (gan_cli.models.dcgan.resolution_stages): 28 = 7 * 2^2, 32 = 4 * 2^3, 64 = 4 * 2^4.

`depth` is the number of convolutions at each resolution: the paper's 2, or 1 for a network about
as cheap as the default DCGAN on two CPU cores (the MNIST preset's choice).
"""

import torch
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.models.base import Generator
from gan_cli.models.dcgan import resolution_stages


def conv_block(w_in: int, w_out: int, depth: int) -> list[nn.Module]:
    """`depth` 3x3 convolutions, each followed by an ELU; the first maps w_in to w_out channels."""
    layers = []
    for i in range(depth):
        layers += [nn.Conv2d(w_in if i == 0 else w_out, w_out, 3, 1, 1), nn.ELU(inplace=True)]
    return layers


class BEGANEncoder(nn.Module):
    """images (B, C, S, S) -> embeddings (B, hidden)."""

    def __init__(self, shape: DataShape, hidden: int, width: int, depth: int):
        super().__init__()
        base, stages = resolution_stages(shape.image_size)
        widths = [width * (i + 1) for i in range(stages + 1)]  # e.g. [32, 64, 96] for 28x28: n, 2n, 3n
        layers = [nn.Conv2d(shape.channels, width, 3, 1, 1), nn.ELU(inplace=True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += conv_block(w_in, w_in, depth - 1)  # (the paper's extra convolutions at this resolution)
            layers += [nn.Conv2d(w_in, w_out, 3, 2, 1), nn.ELU(inplace=True)]  # halves the resolution
        layers += conv_block(widths[-1], widths[-1], depth)
        layers += [nn.Flatten(), nn.Linear(widths[-1] * base * base, hidden)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BEGANDecoder(nn.Module):
    """codes (B, input_dim) -> images (B, C, S, S), unbounded (the discriminator's decoder) or
    squashed into [-1, 1] by a tanh (`bounded`: the generator)."""

    def __init__(self, shape: DataShape, input_dim: int, width: int, depth: int, bounded: bool):
        super().__init__()
        base, stages = resolution_stages(shape.image_size)
        self.base_shape = (width, base, base)
        self.project = nn.Linear(input_dim, width * base * base)
        layers = []
        for _ in range(stages):  # each stage doubles the resolution
            layers += conv_block(width, width, depth) + [nn.Upsample(scale_factor=2, mode="nearest")]
        layers += conv_block(width, width, depth) + [nn.Conv2d(width, shape.channels, 3, 1, 1)]
        if bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(h).view(len(h), *self.base_shape))


class BEGANDiscriminator(nn.Module):
    """The autoencoder: images (B, C, S, S) -> their reconstructions (B, C, S, S).

    Its energy is the L1 reconstruction error (gan_cli.games.began.reconstruction_error); it has no
    logits, so it is not a gan_cli.models.base.Discriminator."""

    def __init__(self, shape: DataShape, hidden: int, width: int, depth: int):
        super().__init__()
        self.encoder = BEGANEncoder(shape, hidden, width, depth)
        self.decoder = BEGANDecoder(shape, hidden, width, depth, bounded=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class BEGANGenerator(Generator):
    """z (B, latent_dim) -> images (B, C, S, S) in [-1, 1]: D's decoder architecture with its own weights.

    The paper draws z uniformly in [-1, 1]; here z ~ N(0, I) like every generator of the package (the
    contract's `sample_inputs`), which the fully connected first layer takes just as well."""

    def __init__(self, shape: DataShape, latent_dim: int, width: int, depth: int):
        super().__init__(latent_dim)
        self.sample_shape = shape.sample_shape
        self.decoder = BEGANDecoder(shape, latent_dim, width, depth, bounded=True)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)
