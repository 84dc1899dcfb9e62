"""The divergences of the game on toy data: estimators checked on pairs whose answers are known in
closed form, Theorem 1 of Goodfellow et al. 2014 computed two ways, and a real 1-D run logging them."""

import math

import pytest
import torch
from scipy import integrate, stats
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.data.toy import GaussianMixture
from gan_cli.metrics.divergences import GameMeasures, bandwidth, caption, kde_log_density, mixture_log_density
from tests.helpers import train_tiny

SIGMA = 0.1
ONE_GAUSSIAN = GaussianMixture(torch.tensor([[0.0]]), torch.tensor([SIGMA]))


def gaussian_points(n: int, mean: float, std: float) -> torch.Tensor:
    """n points (n, 1) at the quantiles (i + 1/2) / n of N(mean, std^2): a sample without sampling noise."""
    return mean + std * torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n) + 0.5) / n)[:, None]


def constant_logits(points: torch.Tensor) -> torch.Tensor:
    return torch.zeros(len(points))  # D(x) = 1/2 everywhere


def smoothed_jsd(shift: float, std: float) -> float:
    """JSD(N(0, std^2) || N(shift, std^2)) by scipy's quadrature: no closed form, an independent number."""
    p, q = stats.norm(0, std), stats.norm(shift, std)

    def integrand(x: float) -> float:
        a, b = p.pdf(x), q.pdf(x)
        m = (a + b) / 2
        return 0.5 * (a * math.log(a / m) if a > 0 else 0.0) + 0.5 * (b * math.log(b / m) if b > 0 else 0.0)

    return integrate.quad(integrand, -2, 2, points=[0, shift], limit=200)[0]


def test_log_densities_are_normalised_and_exact():
    h = bandwidth(ONE_GAUSSIAN)
    assert h == pytest.approx(SIGMA / 2)
    x = torch.linspace(-1.5, 1.5, 3001, dtype=torch.float64)[:, None]
    smoothed = mixture_log_density(ONE_GAUSSIAN, h, x).exp()
    assert torch.trapezoid(smoothed, x[:, 0]).item() == pytest.approx(1.0, abs=1e-6)
    expected = stats.norm(0, math.sqrt(SIGMA**2 + h**2)).logpdf(x[:, 0].numpy())  # variances add
    assert torch.allclose(mixture_log_density(ONE_GAUSSIAN, h, x), torch.from_numpy(expected), atol=1e-6)
    kde = kde_log_density(gaussian_points(1000, 0.2, SIGMA), h, x).exp()
    assert torch.trapezoid(kde, x[:, 0]).item() == pytest.approx(1.0, abs=1e-4)


def test_two_gaussians_1d_kl_and_w1_are_exact_and_the_game_value_is_minus_log4_plus_2jsd():
    shift = 0.05
    real = gaussian_points(2500, 0.0, SIGMA)
    values = GameMeasures(ONE_GAUSSIAN, real, cross_entropy=True).measure(gaussian_points(2500, shift, SIGMA), constant_logits)
    std = math.sqrt(SIGMA**2 + bandwidth(ONE_GAUSSIAN) ** 2)  # both smoothed by the same kernel
    kl = shift**2 / (2 * std**2)  # KL of two Gaussians of equal variance, both ways
    assert values["divergence/kl_data_g"] == pytest.approx(kl, rel=0.01)
    assert values["divergence/kl_g_data"] == pytest.approx(kl, rel=0.01)
    assert values["divergence/w1"] == pytest.approx(shift, rel=0.01)  # W1 of a shift is the shift
    jsd = smoothed_jsd(shift, std)
    assert values["divergence/jsd"] == pytest.approx(jsd, rel=0.01)
    # Theorem 1: V(D*, G) = -log 4 + 2 JSD, here from samples on one side and integrals on the other
    assert values["game/minus_log4_plus_2jsd"] == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-3)
    assert abs(values["game/value_at_optimal_d"] - values["game/minus_log4_plus_2jsd"]) < 3 * values["game/value_stderr"]
    assert values["game/value_at_d"] == pytest.approx(-math.log(4), abs=1e-9)  # D = 1/2: V = 2 log(1/2)
    assert values["game/value_at_d"] < values["game/value_at_optimal_d"]  # D* is the best D


def test_a_far_shift_separates_the_estimates_from_their_limits():
    values = GameMeasures(ONE_GAUSSIAN, gaussian_points(2500, 0.0, SIGMA), True).measure(
        gaussian_points(2500, 0.6, SIGMA), constant_logits
    )
    std = math.sqrt(SIGMA**2 + bandwidth(ONE_GAUSSIAN) ** 2)
    assert values["divergence/jsd"] == pytest.approx(smoothed_jsd(0.6, std), rel=0.01)
    assert math.log(2) - 0.02 < values["divergence/jsd"] < math.log(2)  # almost disjoint: near the JSD's bound
    assert values["divergence/w1"] == pytest.approx(0.6, rel=0.01)
    assert values["game/value_at_optimal_d"] == pytest.approx(0.0, abs=0.03)  # D* separates them: V -> 0


def test_identical_distributions_give_zero_within_the_estimates_error():
    real = gaussian_points(2500, 0.0, SIGMA)
    values = GameMeasures(ONE_GAUSSIAN, real, cross_entropy=True).measure(real.clone(), constant_logits)
    for name in ("divergence/jsd", "divergence/kl_data_g", "divergence/kl_g_data"):
        assert abs(values[name]) < 1e-3, name
    assert values["divergence/w1"] < 1e-3
    assert values["game/value_at_optimal_d"] == pytest.approx(-math.log(4), abs=3 * values["game/value_stderr"] + 1e-6)


def ring(radius: float = 0.8, std: float = 0.008) -> GaussianMixture:
    angles = 2 * math.pi * torch.arange(8) / 8
    return GaussianMixture(radius * torch.stack([angles.cos(), angles.sin()], dim=1), torch.full((8,), std))


def test_2d_samples_of_the_data_itself_are_near_zero_and_a_missed_half_is_not():
    data = ring()
    real, _ = data.sample(2500, seed=1)
    other, _ = data.sample(2500, seed=2)
    same = GameMeasures(data, real, cross_entropy=True).measure(other, constant_logits)
    assert same["divergence/jsd"] < 0.02 and same["divergence/kl_data_g"] < 0.06 and same["divergence/kl_g_data"] < 0.06
    assert same["divergence/w1"] < 0.06  # two samples of 1,000 points: matched within modes, but mode counts differ
    assert "game/value_at_d" not in same  # the game's values are for 1-D data
    half = other[other[:, 0] > 0.1].repeat(3, 1)[:2500]  # G makes 3 of the 8 modes (x > 0.1)
    missed = GameMeasures(data, real, cross_entropy=True).measure(half, constant_logits)
    assert missed["divergence/jsd"] > 10 * same["divergence/jsd"]
    assert missed["divergence/kl_data_g"] > 100  # the data's missed modes: G has (almost) no density there
    assert missed["divergence/kl_g_data"] == pytest.approx(math.log(8 / 3), abs=0.1)  # G's 3 modes hold 3/8 of the data
    assert missed["divergence/w1"] > 0.3


def test_2d_shift_of_one_gaussian_kl_and_w1():
    data = GaussianMixture(torch.zeros(1, 2), torch.tensor([0.05]))
    real, _ = data.sample(2500, seed=1)
    fake = data.sample(2500, seed=2)[0] + torch.tensor([0.05, 0.0])
    values = GameMeasures(data, real, cross_entropy=False).measure(fake, constant_logits)
    kl = 0.05**2 / (2 * (0.05**2 + bandwidth(data) ** 2))
    assert values["divergence/kl_data_g"] == pytest.approx(kl, abs=0.05)
    assert values["divergence/kl_g_data"] == pytest.approx(kl, abs=0.05)
    assert values["divergence/w1"] == pytest.approx(0.05, abs=0.01)


def test_a_1d_run_logs_the_divergences_and_the_games_values(tmp_path):
    overrides = ["dataset=gaussians_1d", "model=mlp", "model.latent_dim=1", "model.input_dropout=0", "train.steps=3"]
    train_tiny(tmp_path, overrides, model="mlp")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars = {tag: events.Scalars(tag)[0].value for tag in events.Tags()["scalars"] if tag.split("/")[0] in ("divergence", "game")}
    assert set(scalars) == {
        "divergence/jsd", "divergence/kl_data_g", "divergence/kl_g_data", "divergence/w1",
        "game/value_at_d", "game/value_at_optimal_d", "game/value_stderr", "game/minus_log4_plus_2jsd",
    }  # fmt: skip
    assert 0 < scalars["divergence/jsd"] <= math.log(2)
    assert scalars["game/minus_log4_plus_2jsd"] == pytest.approx(-math.log(4) + 2 * scalars["divergence/jsd"], abs=1e-5)
    assert abs(scalars["game/value_at_optimal_d"] - scalars["game/minus_log4_plus_2jsd"]) < 3 * scalars["game/value_stderr"] + 0.01
    assert scalars["game/value_at_d"] <= scalars["game/value_at_optimal_d"] + 3 * scalars["game/value_stderr"]


def test_the_caption_names_every_value():
    values = {"divergence/jsd": 0.1234, "divergence/kl_data_g": 2.0, "divergence/kl_g_data": 0.5, "divergence/w1": 0.05}
    assert caption(values) == "JSD 0.123, KL(data||G) 2, KL(G||data) 0.5, W1 0.050"
    game = {"game/value_at_d": -1.5, "game/value_at_optimal_d": -1.2, "game/value_stderr": 0.01, "game/minus_log4_plus_2jsd": -1.19}
    assert caption({**values, **game}).splitlines()[1] == "V(D, G) -1.500, V(D*, G) -1.200 ± 0.010, -log 4 + 2 JSD -1.190"
