"""Mode collapse, measured: how generated samples spread over the known modes of the data.

For the toy mixtures (points (N, D) and mode centres (K, D) with one standard deviation each):
- high_quality: the share of points within 3 standard deviations of their nearest mode (VEEGAN's
  and PacGAN's measure of sample quality on the ring and the grid);
- captured: the modes that hold at least a fifth of their fair share (n / K) of those points: the
  rule of the evaluator's `classes_covered`, so a few stray points between modes do not count.

For Stacked MNIST, the mode of an image is its digit triple (0..999) read by the evaluator, and a
mode is captured when any image shows it (the usual reading with 1000 modes, where a fair share is
only n / 1000 images); kl_uniform is KL(histogram of modes || uniform), 0 for perfect coverage.
"""

import math

import torch

EPS = 1e-12  # keeps log(0) out of the sums; far below any probability that matters
HIGH_QUALITY_STDS = 3.0
MIN_FAIR_SHARE = 0.2


def nearest_modes(points: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance to the nearest centre (N,), its index (N,)) for points (N, D) and centres (K, D)."""
    distances = torch.cdist(points.double(), centers.double())  # (N, K)
    return distances.min(dim=1)


def mixture_modes(points: torch.Tensor, centers: torch.Tensor, stds: torch.Tensor) -> dict[str, float]:
    """{captured: modes of K with enough high-quality points, high_quality: share of such points}."""
    distance, mode = nearest_modes(points, centers)
    good = distance <= HIGH_QUALITY_STDS * stds.double()[mode]  # (N,)
    counts = torch.bincount(mode[good], minlength=len(centers))  # (K,)
    enough = math.ceil(MIN_FAIR_SHARE * len(points) / len(centers))
    return {"captured": int((counts >= enough).sum()), "high_quality": good.double().mean().item()}


def entropy(share: torch.Tensor) -> float:
    """Entropy in nats of a histogram given as shares summing to 1."""
    return -(share * share.clamp(min=EPS).log()).sum().item()


def histogram_modes(modes: torch.Tensor, num_modes: int) -> dict[str, float]:
    """{captured: modes seen at least once, kl_uniform: KL(histogram || uniform)} of mode indices (N,)."""
    counts = torch.bincount(modes, minlength=num_modes).double()
    share = counts / counts.sum()
    return {"captured": int((counts > 0).sum()), "kl_uniform": math.log(num_modes) - entropy(share)}
