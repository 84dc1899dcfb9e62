"""VAE-GAN's discriminator (Larsen et al. 2016): a DCGAN discriminator that also shows one of its
hidden layers, the feature space in which VAE-GAN measures reconstructions ("Dis_l").

The layers counted are the stride-2 stages of gan_cli.models.dcgan.DCGANDiscriminator, each
convolution - norm - LeakyReLU: layer 1 is the first stage's output, (B, d_width, S/2, S/2); the
last, `len(stages)`, is the map the logit head reads, (B, d_width * 2^(n-1), b, b). On 28x28 MNIST
there are two (14x14x64 and 7x7x128 at the default width); the paper took the fourth of its four
convolutions on 64x64 faces, the deepest one.
"""

import torch
from torch import nn

from gan_cli.models.dcgan import DCGANDiscriminator


class FeatureDiscriminator(DCGANDiscriminator):
    """images (B, C, S, S) -> (logits (B,), layer-l features (B, F))."""

    def stage_ends(self) -> list[int]:
        """Indices in `body` of each stage's last module (its activation)."""
        return [i for i, module in enumerate(self.body) if isinstance(module, nn.LeakyReLU)]

    @property
    def num_layers(self) -> int:
        return len(self.stage_ends())

    def judge(self, x: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits and its layer-`layer` features (flattened), from one pass."""
        last = self.stage_ends()[layer - 1]
        features = None
        h = x
        for i, module in enumerate(self.body):
            h = module(h)
            if i == last:
                features = h.flatten(1)
        return self.head(h).flatten(), features
