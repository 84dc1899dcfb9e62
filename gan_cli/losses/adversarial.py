"""Adversarial losses on D's raw logits l. Each has d_loss(real, fake), g_loss(fake) and score(l).

With D(x) = sigmoid(l): -log D(x) = softplus(-l) and -log(1 - D(x)) = softplus(l), which never
overflow, unlike log(sigmoid(l)) for large |l|. `score` is what the logs call D(x): a probability
for the cross-entropy losses, the raw output for the others.
"""

import torch
import torch.nn.functional as F


class CrossEntropyLoss:
    """D minimises the binary cross-entropy of real vs fake (Goodfellow et al. 2014).

    One-sided label smoothing (Salimans et al. 2016) sets the real target to 1 - label_smoothing;
    the fake target stays 0.
    """

    critic = False

    def __init__(self, label_smoothing: float = 0.0):
        self.real_target = 1.0 - label_smoothing

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real_term = self.real_target * F.softplus(-real) + (1 - self.real_target) * F.softplus(real)
        return real_term.mean() + F.softplus(fake).mean()

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)


class MinimaxLoss(CrossEntropyLoss):
    """The game as written: G minimises log(1 - D(G(z))). Its gradient vanishes when D rejects the
    fakes confidently, which is why the paper recommends the non-saturating loss in practice."""

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake).mean()


class NonSaturatingLoss(CrossEntropyLoss):
    """G maximises log D(G(z)) instead: the same fixed point, strong gradients early in training."""

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake).mean()


class LeastSquaresLoss:
    """LSGAN (Mao et al. 2017): D pushes real outputs to b and fake ones to a; G pushes fakes to c.
    The 0-1 coding a=0, b=1, c=1 is the default."""

    critic = False

    def __init__(self, fake_target: float = 0.0, real_target: float = 1.0, generator_target: float = 1.0):
        self.a, self.b, self.c = fake_target, real_target, generator_target

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real - self.b) ** 2).mean() + 0.5 * ((fake - self.a) ** 2).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake - self.c) ** 2).mean()

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


class WassersteinLoss:
    """WGAN (Arjovsky et al. 2017): the critic maximises E[D(x)] - E[D(G(z))], an estimate of the
    Wasserstein-1 distance when D is 1-Lipschitz (weight clipping or a gradient penalty)."""

    critic = True

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


class HingeLoss(WassersteinLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))];
    G maximises E[D(G(z))] as in WGAN."""

    critic = False

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
