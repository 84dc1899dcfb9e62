"""The original GAN's fully-connected networks (Goodfellow et al. 2014).

G: ReLU hidden layers, tanh output (the paper's sigmoid, moved to [-1, 1]). D: maxout hidden units
with dropout, as in the paper's MNIST model. Both work on any sample shape: an image (C, H, W) is
flattened, a vector (D,) is used as it is. Conditional variants join the one-hot label to G's
input and to D's flattened input (Mirza & Osindero 2014).
"""

import math

import torch
from torch import nn

from gan_cli.models.base import Discriminator, Generator
from gan_cli.models.codes import CodeSpec


class Maxout(nn.Module):
    """The max over `pieces` linear maps: (B, in) -> (B, units)."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.units, self.pieces).amax(dim=2)


class MLPGenerator(Generator):
    """[z, y, c] (B, input_dim) -> samples (B, *sample_shape) in [-1, 1]."""

    def __init__(self, sample_shape: tuple[int, ...], latent_dim: int, hidden: list[int], num_classes=0, codes=CodeSpec()):
        super().__init__(latent_dim, num_classes, codes)
        self.sample_shape = tuple(sample_shape)
        layers, width = [], self.input_dim
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(inplace=True)]
            width = units
        layers += [nn.Linear(width, math.prod(self.sample_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.joined_input(z, y, c)).view(-1, *self.sample_shape)


class MLPDiscriminator(Discriminator):
    """samples (B, *sample_shape) [+ labels] -> DiscriminatorOutput(logits (B / pack,), codes or None, features)."""

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        hidden: list[int],
        pieces: int,
        dropout: float,
        input_dropout: float,
        num_classes: int = 0,
        codes=CodeSpec(),
        pack: int = 1,
        minibatch_std: bool = False,
    ):
        super().__init__(num_classes, codes, pack, minibatch_std)
        # m packed samples, each flattened with its one-hot label
        layers, width = [nn.Dropout(input_dropout)], pack * (math.prod(sample_shape) + num_classes)
        for i, units in enumerate(hidden):
            if i:
                layers.append(nn.Dropout(dropout))
            layers.append(Maxout(width, units, pieces))
            width = units
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width + self.head_extra, 1))
        if codes:
            self.code_head = nn.Linear(width, codes.q_dim)

    def condition(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return super().condition(x.flatten(1), y)
