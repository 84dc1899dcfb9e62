"""How far G is from the data on the toy mixtures, and the value of the game (Goodfellow et al. 2014).

Measured with every picture of the game (gan_cli.training.pictures), from G's fixed generated points
and as many real points, and logged to TensorBoard:

- `divergence/jsd`, `divergence/kl_data_g` = KL(p_data || p_g), `divergence/kl_g_data` = KL(p_g || p_data),
  in nats, between the data and G both smoothed by the same Gaussian kernel of bandwidth h (half the
  data's smallest mode std). The data's smoothed density is exact (a Gaussian mixture convolved with
  a Gaussian is one: the variances add); G's is the kernel density estimate of its points, which is
  G's distribution convolved with the same kernel up to sampling. Equal distributions give 0 whatever
  h; a missed mode makes KL(p_data || p_g) large (infinite without the smoothing), points off the data
  make KL(p_g || p_data) large, and the JSD stays below log 2. 1-D: integrals on a grid of spacing h/8;
  2-D: Monte Carlo averages over noisy copies of the points (samples of the smoothed distributions).
- `divergence/w1`: the Wasserstein-1 distance between the data (not smoothed) and G's points. 1-D:
  the integral of |F_data - F_G| with the data's exact CDF; 2-D: the optimal matching of W1_POINTS real
  to as many generated points (exact between the two samples; two samples of the same distribution
  are still about 0.01-0.03 apart on the ring and the grid).
- 1-D, cross-entropy losses: the value of the game V(D, G) = E_data[log D(x)] + E_G[log(1 - D(x))] at
  the current D (`game/value_at_d`) and at the optimal D* = p_data / (p_data + p_g)
  (`game/value_at_optimal_d`), as averages over samples of the two smoothed distributions, with the
  standard error of the latter (`game/value_stderr`), beside -log 4 + 2 JSD from the grid's integrals
  (`game/minus_log4_plus_2jsd`): Theorem 1 says the last two are equal, and here they are computed
  independently. V(D, G) <= V(D*, G) up to that error; the gap is how far D is from optimal.

Nothing here draws from the training's random streams: the noise has its own fixed seed.
"""

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

from gan_cli.data.toy import GaussianMixture

SMOOTHING = 0.5  # the kernel's bandwidth h, in units of the data's smallest mode std
GRID_SPACING = 1 / 8  # of the 1-D integrals, in units of h
GRID_MARGIN = 8  # the 1-D grid reaches this many smoothed stds beyond the data's and G's extremes
NOISY_COPIES = 1  # Monte Carlo: noisy copies of each point (each copy costs about 0.1 s here)
NOISE_SEED = 0
W1_POINTS = 1000  # 2-D: points matched (linear_sum_assignment: 0.2 s for 1,000, 2 s for 2,500)
W1_STEPS = 2**15  # 1-D: grid points of the integral of |F_data - F_G|
CHUNK = 4096  # rows of the (M, N) distance matrices at a time

LogDensity = Callable[[torch.Tensor], torch.Tensor]  # points (M, D) -> log density (M,) float64


def bandwidth(mixture: GaussianMixture) -> float:
    return SMOOTHING * mixture.stds.min().item()


def mixture_log_density(mixture: GaussianMixture, h: float, x: torch.Tensor) -> torch.Tensor:
    """log of the mixture's density convolved with N(0, h^2 I), at points x (M, D) -> (M,) float64."""
    variance = mixture.stds.double() ** 2 + h**2  # (K,)
    squared = torch.cdist(x.double(), mixture.centers.double()) ** 2  # (M, K)
    per_mode = -0.5 * squared / variance - 0.5 * mixture.dim * torch.log(2 * math.pi * variance)
    return torch.logsumexp(per_mode, dim=1) - math.log(len(variance))


def kde_log_density(samples: torch.Tensor, h: float, x: torch.Tensor) -> torch.Tensor:
    """log of the Gaussian kernel density estimate of samples (N, D) with bandwidth h, at x (M, D) -> (M,) float64.
    The (M, N) kernel matrix is float32 (a relative error of 1e-7 in the log density; float64 took 3x as long)."""
    samples = samples.float() / h
    norm = math.log(len(samples)) + 0.5 * samples.shape[1] * math.log(2 * math.pi * h**2)
    chunks = [torch.logsumexp(-0.5 * torch.cdist(part.float() / h, samples).square(), dim=1) for part in x.split(CHUNK)]
    return torch.cat(chunks).double() - norm


@dataclass
class Expectation:
    """An average over one distribution as weighted points: E[f] = sum_i weights_i f(points_i)."""

    points: torch.Tensor  # (M, D)
    weights: torch.Tensor  # (M,) float64, summing to 1

    def of(self, values: torch.Tensor) -> float:
        return (self.weights * values).sum().item()

    def stderr(self, values: torch.Tensor) -> float:
        """The standard error of `of(values)` for equally weighted independent samples."""
        return (values.var() / len(values)).sqrt().item()


def on_grid(log_density: LogDensity, x: torch.Tensor) -> Expectation:
    """The average over a density on an evenly spaced 1-D grid x (M,): weights proportional to it."""
    return Expectation(x[:, None], torch.softmax(log_density(x[:, None]), dim=0))


def smoothed_samples(points: torch.Tensor, h: float) -> Expectation:
    """The average over points (N, D) smoothed by N(0, h^2 I): NOISY_COPIES noisy copies of each."""
    noise = torch.randn(NOISY_COPIES * len(points), points.shape[1], generator=torch.Generator().manual_seed(NOISE_SEED))
    samples = points.double().repeat(NOISY_COPIES, 1) + h * noise.double()
    return Expectation(samples, torch.full((len(samples),), 1 / len(samples), dtype=torch.float64))


def divergences(log_p: LogDensity, log_q: LogDensity, on_p: Expectation, on_q: Expectation) -> dict[str, float]:
    """JSD(p || q), KL(p || q) and KL(q || p) in nats, from averages over p and over q."""
    lp_p, lq_p, lp_q, lq_q = log_p(on_p.points), log_q(on_p.points), log_p(on_q.points), log_q(on_q.points)
    log_m_p = torch.logaddexp(lp_p, lq_p) - math.log(2)  # the mixture m = (p + q) / 2 at p's points
    log_m_q = torch.logaddexp(lp_q, lq_q) - math.log(2)
    return {
        "jsd": 0.5 * on_p.of(lp_p - log_m_p) + 0.5 * on_q.of(lq_q - log_m_q),
        "kl_data_g": on_p.of(lp_p - lq_p),
        "kl_g_data": on_q.of(lq_q - lp_q),
    }


def game_values(
    logits: Callable[[torch.Tensor], torch.Tensor], log_p: LogDensity, log_q: LogDensity, on_p: Expectation, on_q: Expectation
) -> dict[str, float]:
    """V(D, G) = E_p[log D] + E_q[log(1 - D)] at D = sigmoid(logits(x)) and at D* = p / (p + q), and the
    standard error of the latter (samples of p and q, equally weighted)."""
    real_logits, fake_logits = (logits(e.points.float()).double() for e in (on_p, on_q))  # D runs in float32
    log_d_real, log_not_d_fake = -F.softplus(-real_logits), -F.softplus(fake_logits)  # log sigmoid(l), log(1 - sigmoid(l))
    lp_p, lq_p, lp_q, lq_q = log_p(on_p.points), log_q(on_p.points), log_p(on_q.points), log_q(on_q.points)
    log_d_star_real = lp_p - torch.logaddexp(lp_p, lq_p)  # log D*(x) at the data's samples
    log_not_d_star_fake = lq_q - torch.logaddexp(lp_q, lq_q)  # log(1 - D*(x)) at G's samples
    return {
        "value_at_d": on_p.of(log_d_real) + on_q.of(log_not_d_fake),
        "value_at_optimal_d": on_p.of(log_d_star_real) + on_q.of(log_not_d_star_fake),
        "value_stderr": math.hypot(on_p.stderr(log_d_star_real), on_q.stderr(log_not_d_star_fake)),
    }


def mixture_cdf(mixture: GaussianMixture, x: torch.Tensor) -> torch.Tensor:
    """The CDF of a 1-D mixture at x (M,) -> (M,) float64."""
    z = (x.double()[:, None] - mixture.centers.double()[None, :, 0]) / mixture.stds.double()  # (M, K)
    return (0.5 * (1 + torch.erf(z / math.sqrt(2)))).mean(dim=1)


def w1_to_mixture_1d(mixture: GaussianMixture, points: torch.Tensor, lo: float, hi: float) -> float:
    """W1 between a 1-D mixture and points (N, 1): the integral over [lo, hi] of |F_data - F_points|."""
    x = torch.linspace(lo, hi, W1_STEPS, dtype=torch.float64)
    empirical = torch.searchsorted(points[:, 0].double().sort().values, x, right=True) / len(points)
    return torch.trapezoid((mixture_cdf(mixture, x) - empirical).abs(), x).item()


def w1_matched(a: torch.Tensor, b: torch.Tensor) -> float:
    """W1 between two samples of equal size (N, D): the mean distance of their optimal matching."""
    from scipy.optimize import linear_sum_assignment  # scipy: only toy runs need it

    cost = torch.cdist(a.double(), b.double())
    rows, columns = linear_sum_assignment(cost.numpy())
    return cost[rows, columns].mean().item()


class GameMeasures:
    """The divergences (and on 1-D data with a cross-entropy loss, the game's values) of G's points
    against the data, for a mixture and its fixed real points (N, D)."""

    def __init__(self, mixture: GaussianMixture, real: torch.Tensor, cross_entropy: bool):
        self.mixture, self.real = mixture, real
        self.h = bandwidth(mixture)
        self.game = cross_entropy and mixture.dim == 1  # D is then a probability, and D* a curve
        self.log_p = partial(mixture_log_density, mixture, self.h)

    def measure(self, fake: torch.Tensor, logits: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        """Every value for G's points fake (N, D); logits(points (M, D)) -> D's raw outputs (M,)."""
        log_q = partial(kde_log_density, fake, self.h)
        sampled = smoothed_samples(self.real, self.h), smoothed_samples(fake, self.h)  # (N, D) each: the game's samples
        if self.mixture.dim == 1:
            lo, hi = self._extent(fake)
            x = torch.arange(lo, hi, GRID_SPACING * self.h, dtype=torch.float64)
            values = divergences(self.log_p, log_q, on_grid(self.log_p, x), on_grid(log_q, x))
            values["w1"] = w1_to_mixture_1d(self.mixture, fake, lo, hi)
        else:
            values = divergences(self.log_p, log_q, *sampled)
            values["w1"] = w1_matched(self.real[:W1_POINTS], fake[:W1_POINTS])
        named = {f"divergence/{name}": value for name, value in values.items()}
        if self.game:
            named.update({f"game/{name}": value for name, value in game_values(logits, self.log_p, log_q, *sampled).items()})
            named["game/minus_log4_plus_2jsd"] = -math.log(4) + 2 * values["jsd"]
        return named

    def _extent(self, fake: torch.Tensor) -> tuple[float, float]:
        """A 1-D interval holding all of both smoothed distributions' mass."""
        spread = GRID_MARGIN * math.sqrt(self.mixture.stds.max().item() ** 2 + self.h**2)
        centers = self.mixture.centers[:, 0]
        return min(centers.min().item(), fake.min().item()) - spread, max(centers.max().item(), fake.max().item()) + spread


def caption(values: dict[str, float]) -> str:
    """The values as a line (two with the game's values) for the picture's title."""
    text = (
        f"JSD {values['divergence/jsd']:.3f}, KL(data||G) {values['divergence/kl_data_g']:.3g}, "
        f"KL(G||data) {values['divergence/kl_g_data']:.3g}, W1 {values['divergence/w1']:.3f}"
    )
    if "game/value_at_d" in values:
        text += (
            f"\nV(D, G) {values['game/value_at_d']:.3f}, V(D*, G) {values['game/value_at_optimal_d']:.3f} "
            f"± {values['game/value_stderr']:.3f}, -log 4 + 2 JSD {values['game/minus_log4_plus_2jsd']:.3f}"
        )
    return text
