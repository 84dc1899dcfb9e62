"""Fréchet distance between Gaussians fitted to two feature sets (FID, Heusel et al. 2017).

    d² = |mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^½)

Statistics are float64. tr((S_a S_b)^½) is computed as the sum of the square roots of the
eigenvalues of the symmetric matrix S_a^½ S_b S_a^½ (which has the same eigenvalues as S_a S_b), with
torch.linalg.eigh: no general matrix square root (scipy's sqrtm changes behaviour between releases),
no complex parts to discard, and the same answer on every machine.

With fewer samples than dimensions (a few hundred 2048-d Inception features) the same trace comes
from the eigenvalues of an N x N matrix instead of the D x D one (see `fid`): seconds saved per value.
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
    return _distance(stats_a, stats_b, _trace_sqrt_product(stats_a[1], stats_b[1]))


def _distance(stats_a, stats_b, trace_sqrt: torch.Tensor) -> float:
    """d² from the statistics and tr((S_a S_b)^½)."""
    (mu_a, sigma_a), (mu_b, sigma_b) = stats_a, stats_b
    distance = (mu_a - mu_b).square().sum() + sigma_a.trace() + sigma_b.trace() - 2 * trace_sqrt
    return max(distance.item(), 0.0)  # never negative: tiny negatives are round-off


def _trace_sqrt_product(sigma_a: torch.Tensor, sigma_b: torch.Tensor) -> torch.Tensor:
    """tr((S_a S_b)^½) of covariances (D, D), from the symmetric S_a^½ S_b S_a^½."""
    root_a = _psd_sqrt(sigma_a)
    return _sqrt_eigenvalue_sum(root_a @ sigma_b @ root_a)


def _sqrt_eigenvalue_sum(matrix: torch.Tensor) -> torch.Tensor:
    """Sum of the square roots of the eigenvalues of a symmetric PSD matrix (round-off negatives: 0)."""
    matrix = (matrix + matrix.T) / 2  # symmetric up to round-off; make it exactly so for eigh
    return torch.linalg.eigvalsh(matrix).clamp(min=0).sqrt().sum()


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """FID between two feature sets (N, D) and (M, D)."""
    stats_a, stats_b = feature_statistics(features_a), feature_statistics(features_b)
    if min(len(features_a), len(features_b)) >= features_a.shape[1]:
        return frechet_distance(stats_a, stats_b)
    # Fewer samples than dimensions: the smaller set's side (the trace is symmetric in a and b).
    if len(features_a) <= len(features_b):
        trace_sqrt = _low_rank_trace_sqrt(features_a, stats_a[0], stats_b[1])
    else:
        trace_sqrt = _low_rank_trace_sqrt(features_b, stats_b[0], stats_a[1])
    return _distance(stats_a, stats_b, trace_sqrt)


def _low_rank_trace_sqrt(features: torch.Tensor, mean: torch.Tensor, sigma_other: torch.Tensor) -> torch.Tensor:
    """tr((S S_other)^½) for S the covariance of features (N, D) with N < D: S = Xᵀ X / (N - 1) with X
    the centred features, and S S_other has the nonzero eigenvalues of the symmetric N x N matrix
    X S_other Xᵀ / (N - 1) (XY and YX share them)."""
    centred = features.double() - mean  # (N, D)
    return _sqrt_eigenvalue_sum(centred @ sigma_other @ centred.T / (len(features) - 1))
