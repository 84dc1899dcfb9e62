"""Fréchet distance between Gaussians fitted to two feature sets (FID, Heusel et al. 2017).

    d² = |mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^½)

Statistics are float64. tr((S_a S_b)^½) is computed as the sum of the square roots of the
eigenvalues of the symmetric matrix S_a^½ S_b S_a^½ (which has the same eigenvalues as S_a S_b), with
torch.linalg.eigh: no general matrix square root (scipy's sqrtm changes behaviour between releases),
no complex parts to discard, and the same answer on every machine.
"""

import torch


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of features (N, D), in float64."""
    x = features.double()
    return x.mean(0), torch.cov(x.T)


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix; round-off negatives become 0."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return eigenvectors @ torch.diag(eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(
    stats_a: tuple[torch.Tensor, torch.Tensor], stats_b: tuple[torch.Tensor, torch.Tensor]
) -> float:
    (mu_a, sigma_a), (mu_b, sigma_b) = stats_a, stats_b
    root_a = _psd_sqrt(sigma_a)
    middle = root_a @ sigma_b @ root_a
    middle = (middle + middle.T) / 2  # symmetric up to round-off; make it exactly so for eigh
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    distance = (mu_a - mu_b).square().sum() + sigma_a.trace() + sigma_b.trace() - 2 * trace_sqrt
    return max(distance.item(), 0.0)  # never negative: tiny negatives are round-off


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """FID between two feature sets (N, D) and (M, D)."""
    return frechet_distance(feature_statistics(features_a), feature_statistics(features_b))
