"""What every generator and discriminator shares: their inputs, conditioning and heads.

Generator inputs are a dict of tensors: `z` (n, latent_dim) ~ N(0, I), for conditional models `y`
(n,) int64 class labels, and for InfoGAN models `c` (n, code_dim) codes. A dict keeps every caller
(training loop, sample grids, gan-sample) independent of which inputs a model takes:
`G(**G.sample_inputs(n))`.

A discriminator returns DiscriminatorOutput(logits (B,), codes, features): raw logits, never a
sigmoid; for InfoGAN models Q's code predictions from a head that shares D's body (None otherwise);
and the body's output, D's last hidden features (what feature matching compares). A packed D
(PacGAN, model.pack=m) reads m samples as one and returns B / m of each.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.models.codes import CodeSpec
from gan_cli.models.minibatch import MinibatchStd, packed


class DiscriminatorOutput(NamedTuple):
    logits: torch.Tensor  # (B,)
    codes: torch.Tensor | None = None  # (B, q_dim) for InfoGAN models
    features: torch.Tensor | None = None  # (B, ...): the body's output, before any batch statistic


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

    Subclasses set `self.body` (taking the conditioned and packed input: `pack` times its channels
    or features) and `self.head` (taking the body's features plus `head_extra` of them) and
    `self.code_head` (the body's features), and may override `condition` for how labels join the input.
    The remedies for mode collapse (gan_cli.models.minibatch) sit around the body: `pack` samples
    are judged as one, and `minibatch_std` gives the logit head one more feature, a batch statistic.
    """

    def __init__(self, num_classes: int = 0, codes: CodeSpec = CodeSpec(), pack: int = 1, minibatch_std: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.codes = codes
        self.pack = pack
        # Only the logit head reads the batch statistic: Q predicts each sample's own codes.
        self.batch_statistic = MinibatchStd() if minibatch_std else nn.Identity()
        self.head_extra = int(minibatch_std)  # features the batch statistic adds to the head's input

    def condition(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Join the labels to the input; the default appends one-hot labels to a flat input."""
        if not self.num_classes:
            return x
        return torch.cat([x, F.one_hot(y, self.num_classes).to(x.dtype)], dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiscriminatorOutput:
        # Labels join each sample before packing, so a packed conditional D reads every sample's label.
        features = self.body(packed(self.condition(x, y), self.pack))
        logits = self.head(self.batch_statistic(features)).flatten()
        codes = self.code_head(features) if self.codes else None
        return DiscriminatorOutput(logits, codes, features)
