"""Synthetic labelled images for offline smoke tests, at any shape.

Class k is a soft Gaussian blob centred at the k-th point of a circle, with random jitter and
brightness, so a generator has something learnable and a conditional model a label to follow.
"""

import math

import torch


def make_fake_images(
    num_samples: int, channels: int, image_size: int, num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images as uint8 (N, C, S, S) and labels as int64 (N,), or None when num_classes is 0."""
    g = torch.Generator().manual_seed(seed)
    n_modes = max(num_classes, 1)
    labels = torch.randint(n_modes, (num_samples,), generator=g)
    angle = 2 * math.pi * labels.float() / n_modes  # (N,)
    jitter = 0.05 * torch.randn(num_samples, 2, generator=g)
    centre_x = 0.5 + 0.25 * torch.cos(angle) + jitter[:, 0]  # in [0, 1] image coordinates
    centre_y = 0.5 + 0.25 * torch.sin(angle) + jitter[:, 1]
    coords = (torch.arange(image_size).float() + 0.5) / image_size  # (S,)
    dist2 = (coords.view(1, 1, -1) - centre_x.view(-1, 1, 1)) ** 2 + (
        coords.view(1, -1, 1) - centre_y.view(-1, 1, 1)
    ) ** 2  # (N, S, S)
    blob = torch.exp(-dist2 / (2 * 0.08**2))
    brightness = 0.6 + 0.4 * torch.rand(num_samples, channels, 1, 1, generator=g)  # (N, C, 1, 1)
    images = (255 * blob.unsqueeze(1) * brightness).round().to(torch.uint8)
    return images, (labels if num_classes > 0 else None)
