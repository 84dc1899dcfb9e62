"""What every generator shares: it knows its inputs and how to draw them."""

import torch
from torch import nn


class Generator(nn.Module):
    """Base of all generators: `G(**G.sample_inputs(n))` -> images (n, C, H, W) in [-1, 1].

    Inputs are a dict of tensors: `z` (n, latent_dim) ~ N(0, I), and for the models that take them
    `y` (n,) int64 class labels and `c` (n, code_dim) InfoGAN codes. A dict keeps every caller
    (training loop, sample grids, gan-sample) independent of which inputs a model has.
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def sample_inputs(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> dict[str, torch.Tensor]:
        return {"z": torch.randn(n, self.latent_dim, generator=generator, device=device)}
