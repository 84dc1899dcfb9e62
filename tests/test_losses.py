"""The non-saturating loss at hand-computed logits."""

import math

import pytest
import torch

from gan_cli.losses.adversarial import NonSaturatingLoss


def test_values_at_known_logits():
    loss = NonSaturatingLoss()
    real = torch.tensor([0.0, 2.0])
    fake = torch.tensor([0.0, -1.0])
    # D: -log sigmoid(real) averaged + -log(1 - sigmoid(fake)) averaged
    expected_d = (math.log(2) + math.log(1 + math.exp(-2))) / 2 + (math.log(2) + math.log(1 + math.exp(-1))) / 2
    assert loss.d_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    # G: -log sigmoid(fake)
    expected_g = (math.log(2) + math.log(1 + math.exp(1))) / 2
    assert loss.g_loss(fake).item() == pytest.approx(expected_g, rel=1e-6)


def test_gradient_does_not_saturate_when_d_rejects_fakes():
    fake = torch.tensor([-10.0], requires_grad=True)
    NonSaturatingLoss().g_loss(fake).backward()
    assert fake.grad.item() == pytest.approx(-1.0, abs=1e-4)  # d/dl softplus(-l) = -sigmoid(-l) ~ -1


def test_stable_at_extreme_logits():
    loss = NonSaturatingLoss()
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(loss.d_loss(big, big)) and torch.isfinite(loss.g_loss(big))
