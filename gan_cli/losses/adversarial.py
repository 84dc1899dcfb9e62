"""Adversarial losses. Each has d_loss(real_logits, fake_logits) and g_loss(fake_logits).

With D(x) = sigmoid(l): -log D(x) = softplus(-l) and -log(1 - D(x)) = softplus(l), which never
overflow, unlike log(sigmoid(l)) for large |l|.
"""

import torch
import torch.nn.functional as F


class NonSaturatingLoss:
    """Goodfellow et al. 2014: D maximises log D(x) + log(1 - D(G(z))); G maximises log D(G(z))
    (the non-saturating variant, strong gradients early in training when D rejects fakes easily)."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()
