"""Each loss and regularizer at hand-computed values, and the optimal discriminator of the GAN paper."""

import math

import pytest
import torch
from torch import nn

from gan_cli.losses.adversarial import (
    HingeLoss,
    LeastSquaresLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    WassersteinLoss,
)
from gan_cli.losses.info import MutualInformationLoss
from gan_cli.losses.regularizers import gradient_penalty, r1_penalty
from gan_cli.models.base import DiscriminatorOutput
from gan_cli.models.codes import CodeSpec
from gan_cli.models.mlp import MLPDiscriminator

REAL = [2.0, -1.0]
FAKE = [0.5, -3.0]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# loss, expected D loss, expected G loss, expected dG/d(fake logit) for each fake
CASES = {
    "nonsaturating": (
        NonSaturatingLoss(),
        mean(softplus(-r) for r in REAL) + mean(softplus(f) for f in FAKE),
        mean(softplus(-f) for f in FAKE),
        [-sigmoid(-f) / 2 for f in FAKE],
    ),
    "minimax": (
        MinimaxLoss(),
        mean(softplus(-r) for r in REAL) + mean(softplus(f) for f in FAKE),
        -mean(softplus(f) for f in FAKE),
        [-sigmoid(f) / 2 for f in FAKE],
    ),
    "lsgan": (
        LeastSquaresLoss(0.0, 1.0, 1.0),
        0.5 * mean((r - 1) ** 2 for r in REAL) + 0.5 * mean(f**2 for f in FAKE),
        0.5 * mean((f - 1) ** 2 for f in FAKE),
        [(f - 1) / 2 for f in FAKE],
    ),
    "wgan": (WassersteinLoss(), mean(FAKE) - mean(REAL), -mean(FAKE), [-0.5, -0.5]),
    "hinge": (
        HingeLoss(),
        mean(max(0, 1 - r) for r in REAL) + mean(max(0, 1 + f) for f in FAKE),
        -mean(FAKE),
        [-0.5, -0.5],
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_loss_values_and_generator_gradient(name):
    loss, d_expected, g_expected, g_gradient = CASES[name]
    real, fake = torch.tensor(REAL), torch.tensor(FAKE, requires_grad=True)
    assert loss.d_loss(real, fake).item() == pytest.approx(d_expected, rel=1e-6, abs=1e-7)
    g = loss.g_loss(fake)
    assert g.item() == pytest.approx(g_expected, rel=1e-6, abs=1e-7)
    g.backward()
    assert fake.grad.tolist() == pytest.approx(g_gradient, rel=1e-5, abs=1e-7)


# loss, expected dD/d(real logit) for each real, expected dD/d(fake logit) for each fake (means over 2)
D_GRADIENTS = {
    "cross_entropy": (NonSaturatingLoss(), [-sigmoid(-r) / 2 for r in REAL], [sigmoid(f) / 2 for f in FAKE]),
    "cross_entropy_smoothed": (  # real target 0.9: the real term is 0.9 softplus(-r) + 0.1 softplus(r)
        NonSaturatingLoss(label_smoothing=0.1),
        [(-0.9 * sigmoid(-r) + 0.1 * sigmoid(r)) / 2 for r in REAL],
        [sigmoid(f) / 2 for f in FAKE],
    ),
    "lsgan": (LeastSquaresLoss(0.0, 1.0, 1.0), [(r - 1) / 2 for r in REAL], [f / 2 for f in FAKE]),
    "lsgan_symmetric_targets": (  # a = -1, b = 1: d/dl 0.5 (l - t)^2 = l - t
        LeastSquaresLoss(fake_target=-1.0, real_target=1.0, generator_target=0.0),
        [(r - 1) / 2 for r in REAL],
        [(f + 1) / 2 for f in FAKE],
    ),
    "wgan": (WassersteinLoss(), [-0.5, -0.5], [0.5, 0.5]),
    # relu(1 - r), relu(1 + f): the real at 2 and the fake at -3 are beyond the margin and give no gradient
    "hinge": (HingeLoss(), [0.0, -0.5], [0.5, 0.0]),
}


@pytest.mark.parametrize("name", D_GRADIENTS)
def test_discriminator_gradient(name):
    loss, real_gradient, fake_gradient = D_GRADIENTS[name]
    real, fake = torch.tensor(REAL, requires_grad=True), torch.tensor(FAKE, requires_grad=True)
    loss.d_loss(real, fake).backward()
    assert real.grad.tolist() == pytest.approx(real_gradient, rel=1e-5, abs=1e-7)
    assert fake.grad.tolist() == pytest.approx(fake_gradient, rel=1e-5, abs=1e-7)


def test_hinge_gives_no_gradient_beyond_the_margin():
    real = torch.tensor([1.5, 1.0 + 1e-3, 0.999], requires_grad=True)  # margin at 1
    fake = torch.tensor([-1.5, -1.0 - 1e-3, -0.999], requires_grad=True)  # margin at -1
    HingeLoss().d_loss(real, fake).backward()
    assert real.grad.tolist() == [0.0, 0.0, pytest.approx(-1 / 3, rel=1e-6)]
    assert fake.grad.tolist() == [0.0, 0.0, pytest.approx(1 / 3, rel=1e-6)]


def test_lsgan_generator_gradient_follows_its_target():
    fake = torch.tensor(FAKE, requires_grad=True)
    LeastSquaresLoss(fake_target=-1.0, real_target=1.0, generator_target=0.0).g_loss(fake).backward()
    assert fake.grad.tolist() == pytest.approx([f / 2 for f in FAKE], rel=1e-6)  # d/df 0.5 mean((f - 0)^2)


def test_lsgan_targets_are_configurable():
    loss = LeastSquaresLoss(fake_target=-1.0, real_target=1.0, generator_target=0.0)
    assert loss.d_loss(torch.tensor([1.0]), torch.tensor([-1.0])).item() == 0.0
    assert loss.g_loss(torch.tensor([2.0])).item() == pytest.approx(2.0)


def test_one_sided_label_smoothing_moves_only_the_real_target():
    smooth = NonSaturatingLoss(label_smoothing=0.1)
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    expected = mean(0.9 * softplus(-r) + 0.1 * softplus(r) for r in REAL) + mean(softplus(f) for f in FAKE)
    assert smooth.d_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    assert smooth.g_loss(fake).item() == pytest.approx(NonSaturatingLoss().g_loss(fake).item())


@pytest.mark.parametrize("logit", [-8.0, -20.0])
def test_minimax_saturates_where_nonsaturating_does_not(logit):
    """At a fake D rejects confidently (D(G(z)) = sigmoid(l) near 0), log(1 - D) is flat: its gradient
    -sigmoid(l) vanishes, while that of -log D, -sigmoid(-l), stays near -1 (Goodfellow et al. 2014, sec. 3)."""
    gradients = {}
    for loss in (MinimaxLoss(), NonSaturatingLoss()):
        rejected = torch.tensor([logit], requires_grad=True)
        loss.g_loss(rejected).backward()
        gradients[type(loss).__name__] = rejected.grad.item()
    assert gradients["MinimaxLoss"] == pytest.approx(-sigmoid(logit), rel=1e-5)  # -3.4e-4 at -8, -2.1e-9 at -20
    assert gradients["NonSaturatingLoss"] == pytest.approx(-sigmoid(-logit), rel=1e-6)
    assert gradients["NonSaturatingLoss"] / gradients["MinimaxLoss"] == pytest.approx(math.exp(-logit), rel=1e-4)


def test_cross_entropy_is_stable_at_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for loss in (NonSaturatingLoss(), MinimaxLoss()):
        assert torch.isfinite(loss.d_loss(big, big)) and torch.isfinite(loss.g_loss(big))


class LinearCritic(nn.Module):
    """D(x) = w . flatten(x): its input gradient is w everywhere."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x, y=None):
        return DiscriminatorOutput(x.flatten(1) @ self.weight)


def test_gradient_penalty_is_zero_for_unit_gradients_and_positive_otherwise():
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    direction = torch.randn(16)
    unit = LinearCritic(direction / direction.norm())
    assert gradient_penalty(unit, real, fake, None).item() == pytest.approx(0.0, abs=1e-10)
    steep = LinearCritic(3 * direction / direction.norm())
    penalty = gradient_penalty(steep, real, fake, None)
    assert penalty.item() == pytest.approx(4.0, rel=1e-5)  # (3 - 1)^2
    penalty.backward()  # the penalty trains D: its gradient reaches D's weights
    assert steep.weight.grad.norm() > 0


def test_gradient_penalty_of_a_nonlinear_critic_is_positive():
    critic = MLPDiscriminator((16,), [8], pieces=2, dropout=0.0, input_dropout=0.0)
    assert gradient_penalty(critic, torch.randn(32, 16), torch.randn(32, 16), None).item() > 0


def test_r1_penalty():
    direction = torch.randn(16)
    critic = LinearCritic(2 * direction / direction.norm())
    assert r1_penalty(critic, torch.randn(8, 1, 4, 4), None).item() == pytest.approx(0.5 * 4, rel=1e-5)


def test_mutual_information_term():
    codes = CodeSpec(categorical=(3,), continuous=1)
    info = MutualInformationLoss(codes, categorical_weight=1.0, continuous_weight=0.5)
    c = torch.tensor([[0.0, 1.0, 0.0, 0.25]])  # category 1, continuous 0.25
    q = torch.tensor([[0.0, 2.0, 0.0, 0.0, 0.0]])  # logits, mean 0, log std 0
    cross_entropy = -math.log(math.exp(2) / (math.exp(2) + 2))
    gaussian_nll = 0.5 * 0.25**2 + 0.5 * math.log(2 * math.pi)
    assert info(q, c).item() == pytest.approx(cross_entropy + 0.5 * gaussian_nll, rel=1e-6)


def test_discriminator_learns_the_optimal_discriminator_of_goodfellow_et_al():
    """For a fixed G, D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Proposition 1). Train D alone
    against a fixed 1-D generator N(0, 1) on data N(1, 0.6^2) and compare with that curve."""
    torch.manual_seed(0)
    discriminator = MLPDiscriminator((1,), [32, 32], pieces=3, dropout=0.0, input_dropout=0.0)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    loss = NonSaturatingLoss()
    mean_data, std_data = 1.0, 0.6
    for _ in range(800):
        real = mean_data + std_data * torch.randn(256, 1)
        fake = torch.randn(256, 1)  # the fixed generator's samples
        d_loss = loss.d_loss(discriminator(real).logits, discriminator(fake).logits)
        optimizer.zero_grad()
        d_loss.backward()
        optimizer.step()

    x = torch.linspace(-2, 3, 101)[:, None]
    p_data = torch.exp(-0.5 * ((x - mean_data) / std_data) ** 2) / (std_data * math.sqrt(2 * math.pi))
    p_g = torch.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    optimal = (p_data / (p_data + p_g)).flatten()
    with torch.no_grad():
        learned = torch.sigmoid(discriminator(x).logits)
    where_data_is = (p_data + p_g).flatten() > 0.05
    assert (learned - optimal)[where_data_is].abs().max() < 0.08
    # and the curve is not flat there: it goes from "surely fake" to "surely real"
    assert learned[where_data_is].min() < 0.05 and learned[where_data_is].max() > 0.7  # D* peaks at 0.79
