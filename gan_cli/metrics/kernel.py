"""Kernel Inception Distance (Bińkowski et al. 2018): an unbiased estimate of the squared MMD.

With the cubic polynomial kernel k(x, y) = (x·y / D + 1)³ on the evaluator's features, averaged
over random subsets. Unlike FID it has no bias from the sample count, so values at different n
compare; the standard deviation over subsets says how far apart two values must be to differ.

The subsets must be smaller than the sets: a subset as large as its set is the whole set every time,
and the spread over such subsets is 0 (round-off) however noisy the estimate is. So a subset holds
at most half of the smaller set (subsets of 1000 from n >= 2000, as torch-fidelity and clean-fid
use; 250 at n = 500).
"""

import torch


def _polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1) ** 3  # (len(a), len(b))


def unbiased_mmd2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Unbiased squared MMD between two samples of equal size m (m, D): diagonals excluded."""
    m = len(a)
    k_aa, k_bb, k_ab = _polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)
    within = (k_aa.sum() - k_aa.diagonal().sum() + k_bb.sum() - k_bb.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_ab.mean()


def kid(
    features_a: torch.Tensor, features_b: torch.Tensor, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD² over `num_subsets` random subsets of features (N, D) and (M, D).

    Each subset holds `subset_size` rows, at most half of the smaller set (see the module's comment);
    each subset's estimate is unbiased, so their mean is too. Subsets are drawn from `seed` (same seed,
    same value).
    """
    a, b = features_a.double(), features_b.double()
    size = min(subset_size, len(a) // 2, len(b) // 2)
    if size < 2:  # the unbiased estimate divides by size * (size - 1)
        raise ValueError(f"KID needs at least 4 samples in each set, not {len(a)} and {len(b)}")
    rng = torch.Generator().manual_seed(seed)
    estimates = torch.stack(
        [
            unbiased_mmd2(a[torch.randperm(len(a), generator=rng)[:size]], b[torch.randperm(len(b), generator=rng)[:size]])
            for _ in range(num_subsets)
        ]
    )
    return estimates.mean().item(), estimates.std().item()
