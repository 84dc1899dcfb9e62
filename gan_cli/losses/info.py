"""InfoGAN's mutual-information term (Chen et al. 2016).

L_I = E[-log Q(c | G(z, c))] is a lower bound on I(c; G(z, c)) up to the codes' entropy; D's
Q head and G both minimise it. Categorical codes: cross-entropy of Q's logits; continuous codes:
negative log-likelihood under Q's factored Gaussian (mean and log standard deviation).
"""

import math

import torch
import torch.nn.functional as F

from gan_cli.models.codes import CodeSpec


class MutualInformationLoss:
    def __init__(self, codes: CodeSpec, categorical_weight: float, continuous_weight: float):
        self.codes = codes
        self.categorical_weight = categorical_weight
        self.continuous_weight = continuous_weight

    def __call__(self, predictions: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """predictions (B, q_dim) from Q, c (B, code_dim) the codes G was given -> weighted L_I."""
        categories, values = self.codes.split_codes(c)
        logits, means, log_stds = self.codes.split_predictions(predictions.float())
        loss = predictions.new_zeros((), dtype=torch.float32)
        for code_logits, category in zip(logits, categories):
            loss = loss + self.categorical_weight * F.cross_entropy(code_logits, category)
        if self.codes.continuous:
            log_stds = log_stds.clamp(-5, 5)  # keep the Gaussian from collapsing to a spike early on
            nll = log_stds + 0.5 * ((values - means) / log_stds.exp()) ** 2 + 0.5 * math.log(2 * math.pi)
            loss = loss + self.continuous_weight * nll.sum(dim=1).mean()
        return loss
