"""The likelihood terms of autoencoders and VAEs, in nats per image (summed over pixels or code
dimensions, averaged over the batch), computed in fp32.

Images x are in [-1, 1]; the decoders model the pixel intensities t = (x + 1) / 2 in [0, 1] (the
scale the papers' likelihoods are written on) through their last layer's raw output h (B, C, H, W):
- Bernoulli (Kingma & Welling 2014's MNIST decoder): p = sigmoid(h) per pixel, and
  -log p(t|z) = BCE(h, t), the cross-entropy with the grey levels t as soft targets;
- Gaussian: mean sigmoid(h) and one standard deviation sigma (fixed, or learned as log sigma: Dai &
  Wipf's gamma), -log p(t|z) = sum 0.5 ((t - mean) / sigma)^2 + log sigma + 0.5 log(2 pi).
"""

import math

import torch
import torch.nn.functional as F

LIKELIHOODS = ("bernoulli", "gaussian")
HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


def pixel_targets(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> intensities in [0, 1]."""
    return (x.float() + 1) / 2


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) per row, summed over dimensions, averaged over rows:
    0.5 * sum(mean^2 + var - log_var - 1). mean, log_var (B, D) -> 0-d."""
    mean, log_var = mean.float(), log_var.float()
    return 0.5 * (mean.square() + log_var.exp() - log_var - 1).sum(dim=1).mean()


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(t|z) of Bernoulli pixels with logits (B, ...) for images x (B, ...) in [-1, 1] -> 0-d."""
    per_pixel = F.binary_cross_entropy_with_logits(logits.float(), pixel_targets(x), reduction="none")
    return per_pixel.flatten(1).sum(dim=1).mean()


def gaussian_nll(mean: torch.Tensor, target: torch.Tensor, log_std: torch.Tensor | float) -> torch.Tensor:
    """-log N(target; mean, sigma^2 I) per row, summed over the rest, averaged over rows; log_std is
    log sigma (0-d tensor, learned, or a float). mean, target (B, ...) -> 0-d."""
    log_std = torch.as_tensor(log_std, dtype=torch.float32, device=mean.device)
    z = (target.float() - mean.float()) * torch.exp(-log_std)
    per_value = 0.5 * z.square() + log_std + HALF_LOG_TWO_PI
    return per_value.flatten(1).sum(dim=1).mean()


def gaussian_pixel_nll(logits: torch.Tensor, x: torch.Tensor, log_std: torch.Tensor | float) -> torch.Tensor:
    """-log p(t|z) of a Gaussian decoder with mean sigmoid(logits) for images x in [-1, 1] -> 0-d."""
    return gaussian_nll(torch.sigmoid(logits.float()), pixel_targets(x), log_std)


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    """z = mean + exp(log_var / 2) * eps with eps ~ N(0, I) from `rng`: a sample of q(z|x) through
    which gradients reach mean and log_var (Kingma & Welling 2014)."""
    eps = torch.randn(mean.shape, generator=rng, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * log_var) * eps
