"""What the loop draws every samples.every steps: a grid of the fixed inputs' images, or on toy
vector data a picture of the game with its mode metrics, or for the translation families fixed test
images with their translations and their way back (TranslationGrid).

Both show the game's sampler (the GANs' generator) on the same fixed inputs at every step (they live
in the TrainingState, so a resumed run draws the same ones), and both go to samples/step_XXXXXXX.png
and TensorBoard. Grids show the EMA sampler (the one gan-sample uses); the toy game (GAN families
only) shows the raw generator, the one D plays against, so that D's output and the optimal D*
describe the same moment of the game.
Neither draws any random number from the training generators: drawing never changes a run.

Toy data: 2,500 generated points (the count VEEGAN and PacGAN score the 2-D mixtures with) against
2,500 real points drawn from the mixture itself (not from the batch source, whose order belongs to
training). Scalars: modes/captured and modes/high_quality (gan_cli.metrics.modes).
"""

import math
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.data.toy import GaussianMixture, toy_mixture
from gan_cli.figures import LIMIT, DensityPanel, density_figure, figure_image, scatter_figure
from gan_cli.data.domains import domain_test_set
from gan_cli.games.base import Game
from gan_cli.games.translation import TranslationGame, translate_images, translation_pairs
from gan_cli.losses.adversarial import CrossEntropyLoss
from gan_cli.metrics.divergences import GameMeasures, caption
from gan_cli.metrics.modes import HIGH_QUALITY_STDS, mixture_modes
from gan_cli.models.autoencoder import reconstruct
from gan_cli.models.base import Generator
from gan_cli.sampling.files import image_grid, reconstruction_grid, save_png
from gan_cli.sampling.inputs import generate, grid_inputs, seeded_inputs

TOY_POINTS = 2500
CURVE_POINTS = 400  # where the 1-D curves are evaluated
HEAT_RESOLUTION = 150  # D's heat map is HEAT_RESOLUTION x HEAT_RESOLUTION
MAPPING_LINES = 25  # z -> G(z) lines of the 1-D picture
MASS_FLOOR = 1e-3  # density below which neither p_data nor p_g is there (D* is left undrawn)


class SampleGrid:
    """Images: a grid of the fixed inputs (one row per class for conditional generators)."""

    def __init__(self, generator: Generator, n: int, seed: int):
        self.inputs, self.columns = grid_inputs(generator, n, seed)

    def write(self, state, path: Path, monitor) -> None:
        grid = image_grid(generate(state.sampler, state.fixed_inputs), nrow=self.columns)
        save_png(grid, path)
        monitor.add_image("samples", grid, state.step)


class ReconstructionGrid(SampleGrid):
    """The encoder families (autoencoder, VAE, VAE-GAN): the sample grid, plus the first samples.n // 2
    training images over their reconstructions by the EMA encoder and decoder ("reconstructions":
    rows of inputs, each above a row of its reconstructions).

    Samples come from the sampler's current latent density (the autoencoder's mixture, once fitted)
    at fixed seeded noise, rather than from the stored fixed inputs, which were drawn before anything
    was fitted."""

    def __init__(self, game: Game, sampler: Generator, n: int, seed: int):
        super().__init__(sampler, n, seed)
        self.game, self.n, self.seed = game, n, seed

    def write(self, state, path: Path, monitor) -> None:
        samples = generate(state.sampler, seeded_inputs(state.sampler, self.n, self.seed))
        grid = image_grid(samples, nrow=self.columns)
        save_png(grid, path)
        monitor.add_image("samples", grid, state.step)
        networks = state.sampling_networks()
        real = state.data.head(max(1, self.n // 2))
        rebuilt = reconstruct(networks[self.game.encoder], networks[self.game.sampler], real)
        pairs = reconstruction_grid(real.float().cpu(), rebuilt.float().cpu(), self.columns)
        save_png(pairs, path.with_name(path.stem + "_reconstructions.png"))
        monitor.add_image("reconstructions", pairs, state.step)


class TranslationGrid:
    """Translation families: for each ordered pair of domains (a, b), a row of fixed test images of a,
    the row of their translations into b and the row of those translated back into a, by the EMA
    generators. One TensorBoard image per pair ("translations/a->b"); the PNG stacks them all.

    The fixed inputs are the first columns of each domain's test images (on the CPU, in [-1, 1]),
    kept in the TrainingState like the GANs' fixed latents."""

    def __init__(self, game: TranslationGame, test_set, n: int):
        self.game, self.domains = game, test_set.domains
        self.columns = max(1, math.isqrt(n))
        self.inputs = {name: test_set.images[name][: self.columns].float().div(127.5).sub(1.0) for name in self.domains}

    def write(self, state, path: Path, monitor) -> None:
        networks = state.sampling_networks()
        blocks = []
        for a, b in translation_pairs(len(self.domains)):
            x = state.fixed_inputs[self.domains[a]]
            translated = translate_images(type(self.game), networks, x, a, b)
            back = translate_images(type(self.game), networks, translated, b, a)
            block = torch.cat([x, translated, back])  # (3 * columns, C, H, W)
            monitor.add_image(f"translations/{self.domains[a]}->{self.domains[b]}", image_grid(block, nrow=self.columns), state.step)
            blocks.append(block)
        save_png(image_grid(torch.cat(blocks), nrow=self.columns), path)


class GamePicture:
    """Toy mixtures: the 1-D density picture or the 2-D scatter over D, and the mode metrics."""

    def __init__(self, mixture: GaussianMixture, generator: Generator, loss, seed: int):
        self.mixture = mixture
        self.inputs = seeded_inputs(generator, TOY_POINTS, seed)
        self.real, _ = mixture.sample(TOY_POINTS, seed)
        self.loss = loss  # the adversarial loss: how D's logits read as scores
        self.probability = isinstance(self.loss, CrossEntropyLoss)  # D's score is then a probability
        self.measures = GameMeasures(mixture, self.real, cross_entropy=self.probability)  # JSD, KL, W1, the game's values

    def write(self, state, path: Path, monitor) -> None:
        networks = state.game.networks
        fake = generate(networks["G"], state.fixed_inputs)  # (N, D) on the CPU: the G that D plays against
        modes = mixture_modes(fake, self.mixture.centers, self.mixture.stds)
        title = (
            f"step {state.step}: {modes['captured']}/{len(self.mixture.centers)} modes, "
            f"{100 * modes['high_quality']:.0f}% high quality"
        )
        measured = self.measures.measure(fake, partial(self._scores, networks["D"], raw=True))
        title = f"{title}\n{caption(measured)}"
        if self.mixture.dim == 1:
            figure = density_figure(self._density_panel(state, fake), title)
        else:
            heat = self._scores(networks["D"], _grid_points()).view(HEAT_RESOLUTION, HEAT_RESOLUTION)
            label = "D(x)" if self.probability else "D(x) (raw output)"
            radii = HIGH_QUALITY_STDS * self.mixture.stds
            figure = scatter_figure(self.real, fake, heat, self.mixture.centers, radii, title, label)
        image = figure_image(figure)
        save_png(image, path)
        monitor.add_image("game", image, state.step)
        monitor.add_scalar("modes/captured", modes["captured"], state.step)
        monitor.add_scalar("modes/high_quality", modes["high_quality"], state.step)
        for name, value in measured.items():
            monitor.add_scalar(name, value, state.step)

    def _density_panel(self, state, fake: torch.Tensor) -> DensityPanel:
        x = torch.linspace(-LIMIT, LIMIT, CURVE_POINTS)
        p_data, p_g = self.mixture.density(x), kernel_density(fake[:, 0], x)
        d_star = None
        if self.probability:  # D* is drawn where there is data or generator mass; elsewhere it is 0/0
            d_star = torch.where(p_data + p_g > MASS_FLOOR, p_data / (p_data + p_g).clamp(min=1e-12), torch.nan)
        scores = self._scores(state.game.networks["D"], x[:, None])
        return DensityPanel(x, p_data, p_g, scores, d_star, self._z_to_x(state, fake))

    def _z_to_x(self, state, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """For a one-dimensional z: evenly spaced z's by quantile in [-1, 1], and where G sends them."""
        z = state.fixed_inputs["z"]
        if z.shape[1] != 1 or len(state.fixed_inputs) > 1:
            return None
        picked = z[:, 0].argsort()[torch.linspace(0, len(z) - 1, MAPPING_LINES).long()]
        quantile = 0.5 * (1 + torch.erf(z[picked, 0] / math.sqrt(2)))  # the standard normal CDF
        return 2 * quantile - 1, fake[picked, 0]

    @torch.no_grad()
    def _scores(self, discriminator: nn.Module, points: torch.Tensor, raw: bool = False) -> torch.Tensor:
        """D's score of points (M, D) (raw: its logits), computed in eval mode (no dropout); on the CPU.
        A packed D (PacGAN) judges m-tuples: each point is scored as the tuple of m copies of itself."""
        was_training = discriminator.training
        discriminator.eval()
        try:
            device = next(discriminator.parameters()).device
            tuples = points.repeat_interleave(discriminator.pack, dim=0)  # (M * m, D)
            logits = discriminator(tuples.to(device)).logits.float().cpu()
            return logits if raw else self.loss.score(logits)
        finally:
            discriminator.train(was_training)


def kernel_density(samples: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A Gaussian kernel density estimate of 1-D samples (N,) at x (M,).

    Bandwidth: Silverman's rule, capped at 0.02 (1% of G's range; the rule follows the overall
    spread, which would smear the narrow modes of a multimodal G) and floored at 0.005 (a collapsed
    G still draws a finite spike)."""
    quartiles = samples.quantile(torch.tensor([0.25, 0.75]))
    spread = min(samples.std().item(), (quartiles[1] - quartiles[0]).item() / 1.34)
    bandwidth = min(max(0.9 * spread * len(samples) ** -0.2, 0.005), 0.02)
    z = (x[:, None] - samples[None, :]) / bandwidth  # (M, N)
    return torch.exp(-0.5 * z**2).mean(dim=1) / (bandwidth * math.sqrt(2 * math.pi))


def _grid_points() -> torch.Tensor:
    """(R * R, 2) points over [-LIMIT, LIMIT]^2, row-major with y slowest (the heat map's rows)."""
    ticks = torch.linspace(-LIMIT, LIMIT, HEAT_RESOLUTION)
    y, x = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], dim=1)


def build_pictures(
    cfg: DictConfig, shape: DataShape, game: Game, networks: dict[str, nn.Module]
) -> SampleGrid | GamePicture | TranslationGrid:
    """The loop's picture for this data: `.inputs` are the fixed inputs, `.write(state, path, monitor)`
    draws. `networks` are the game's, unwrapped."""
    seed = cfg.seed + 2
    if isinstance(game, TranslationGame):
        return TranslationGrid(game, domain_test_set(cfg.dataset), cfg.samples.n)
    if shape.is_image and game.encoder is not None:
        return ReconstructionGrid(game, networks[game.sampler], cfg.samples.n, seed)
    if shape.is_image:
        return SampleGrid(networks[game.sampler], cfg.samples.n, seed)
    return GamePicture(toy_mixture(cfg.dataset), networks["G"], game.objective.adversarial, seed)
