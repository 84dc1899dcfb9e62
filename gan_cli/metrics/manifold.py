"""Precision and recall of generated vs real feature manifolds (Kynkäänniemi et al. 2019).

Each set's manifold is the union of balls around its points, each ball reaching the point's k-th
nearest neighbour within the set. Precision: the share of generated points inside the real
manifold (are the samples realistic?). Recall: the share of real points inside the generated
manifold (is all of the real variety produced?).
"""

import torch

CHUNK = 1000  # rows of the distance matrix at a time: 1000 x 10,000 float32 is 40 MB


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) distance of each point to its k-th nearest neighbour among the others."""
    radii = [
        torch.cdist(chunk, features).kthvalue(k + 1, dim=1).values  # the point itself is the 1st, at 0
        for chunk in features.split(CHUNK)
    ]
    return torch.cat(radii)


def inside_manifold(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """(Q,) bool: whether each query lies in at least one ball (centre, radius)."""
    return torch.cat([(torch.cdist(chunk, centres) <= radii).any(dim=1) for chunk in queries.split(CHUNK)])


def precision_recall(real: torch.Tensor, generated: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) for feature sets (N, D) and (M, D), with k-nearest-neighbour balls."""
    real, generated = real.float(), generated.float()
    precision = inside_manifold(generated, real, knn_radii(real, k)).float().mean().item()
    recall = inside_manifold(real, generated, knn_radii(generated, k)).float().mean().item()
    return precision, recall
