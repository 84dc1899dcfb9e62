"""What every generator and discriminator shares: their inputs, conditioning and heads.

Generator inputs are a dict of tensors: `z` (n, latent_dim) ~ N(0, I), for conditional models `y`
(n,) int64 class labels, and for InfoGAN models `c` (n, code_dim) codes. A dict keeps every caller
(training loop, sample grids, gan-sample) independent of which inputs a model takes:
`G(**G.sample_inputs(n))`.

A discriminator returns DiscriminatorOutput(logits (B,), codes): raw logits, never a sigmoid, and
for InfoGAN models Q's code predictions from a head that shares D's body (None otherwise).
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.models.codes import CodeSpec


class DiscriminatorOutput(NamedTuple):
    logits: torch.Tensor  # (B,)
    codes: torch.Tensor | None = None  # (B, q_dim) for InfoGAN models


class Generator(nn.Module):
    """Base of all generators. Subclasses build their body on `input_dim` inputs, call `joined_input`,
    and set `sample_shape`: (C, H, W) for images, (D,) for vectors."""

    sample_shape: tuple[int, ...]

    def __init__(self, latent_dim: int, num_classes: int = 0, codes: CodeSpec = CodeSpec()):
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes  # 0: unconditional
        self.codes = codes
        self.input_dim = latent_dim + num_classes + codes.dim

    def sample_inputs(
        self,
        n: int,
        rng: torch.Generator | None = None,
        device: torch.device | None = None,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw n inputs; conditional models use `labels` (n,) when given, uniform classes otherwise."""
        inputs = {"z": torch.randn(n, self.latent_dim, generator=rng, device=device)}
        if self.num_classes:
            if labels is None:
                labels = torch.randint(self.num_classes, (n,), generator=rng, device=device)
            inputs["y"] = labels.to(inputs["z"].device)
        if self.codes:
            inputs["c"] = self.codes.sample(n, rng, device)
        return inputs

    def joined_input(self, z: torch.Tensor, y: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """[z, one-hot y, c] as one (B, input_dim) vector: how Mirza & Osindero and InfoGAN feed G."""
        parts = [z]
        if self.num_classes:
            parts.append(F.one_hot(y, self.num_classes).to(z.dtype))
        if self.codes:
            parts.append(c.to(z.dtype))
        return torch.cat(parts, dim=1)


class Discriminator(nn.Module):
    """Base of all discriminators: a body to features, a logit head, and an optional Q head.

    Subclasses set `self.body` (taking the conditioned input) and `self.head` / `self.code_head`
    (taking the body's features), and may override `condition` for how labels join the input.
    """

    def __init__(self, num_classes: int = 0, codes: CodeSpec = CodeSpec()):
        super().__init__()
        self.num_classes = num_classes
        self.codes = codes

    def condition(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Join the labels to the input; the default appends one-hot labels to a flat input."""
        if not self.num_classes:
            return x
        return torch.cat([x, F.one_hot(y, self.num_classes).to(x.dtype)], dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiscriminatorOutput:
        features = self.body(self.condition(x, y))
        logits = self.head(features).flatten()
        codes = self.code_head(features) if self.codes else None
        return DiscriminatorOutput(logits, codes)
