"""Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.1).

A generator objective instead of the adversarial one: G matches the statistics of real data in D's
last hidden layer, || E_x f(x) - E_z f(G(z)) ||^2, with each expectation the mean over a batch.
G no longer chases whatever single output D rates most real (the pull towards one mode); D still
trains on its adversarial loss, so f keeps picking out what tells real from fake.
"""

import torch

GENERATOR_OBJECTIVES = ("adversarial", "feature_matching")  # loss.generator_objective


def feature_matching(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """The squared distance between the batch means of D's features: (B, ...) and (B', ...) -> 0-d."""
    difference = real_features.flatten(1).mean(dim=0) - fake_features.flatten(1).mean(dim=0)  # (F,)
    return difference.pow(2).sum()
