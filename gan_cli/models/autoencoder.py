"""The encoder families' networks: a convolutional Encoder and Decoder, sized from the data like the DCGAN.

Used by the autoencoder and the VAE (gan_cli.games.autoencoder) and by VAE-GAN (Larsen et al. 2016,
branch families-began), which reuses both. The Encoder is the DCGAN discriminator's body (strided
convolutions, batch norm, LeakyReLU) with a head that gives a code instead of a logit; the Decoder
is the DCGAN generator without its tanh, so its last layer gives per-pixel logits. It keeps the
generator contract (gan_cli.models.base.Generator): `sample_inputs(n)` draws codes `z` from its
latent prior, `forward(z)` gives images in [-1, 1], so grids, gan-sample and gan-eval draw from it
as from any generator.

The latent prior the Decoder samples from (its `prior` submodule, stored with its weights):
- StandardNormal: N(0, I), what a VAE is trained towards;
- FittedMixture: a full-covariance Gaussian mixture fitted to the codes of training images after
  training (ex-post density estimation, Ghosh et al. 2020); N(0, I) until fitted;
- a second-stage VAE's decoder (Dai & Wipf 2019), set by the VAE game: z = its mean for u ~ N(0, I).
`decoder.latent_source` picks "prior" (N(0, I)), "fitted" (the fitted density) or "auto" (fitted
once there is one).
"""

import math

import torch
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.losses.likelihood import reparameterize
from gan_cli.models.dcgan import DCGANDiscriminator, DCGANGenerator, resolution_stages
from gan_cli.models.layers import WholeMapConv2d

LATENT_SOURCES = ("auto", "prior", "fitted")
BATCH = 500  # images per forward pass of encode and reconstruct


class Encoder(nn.Module):
    """images (B, C, S, S) in [-1, 1] -> (mean (B, latent_dim), log-variance (B, latent_dim) or None).

    `variational`: the head gives a diagonal Gaussian q(z|x) = N(mean, exp(log_var)) (the VAE's);
    otherwise one deterministic code (the autoencoder's), and log_var is None.
    """

    def __init__(self, shape: DataShape, latent_dim: int, width: int, variational: bool):
        super().__init__()
        self.latent_dim, self.variational = latent_dim, variational
        base, stages = resolution_stages(shape.image_size)
        # The DCGAN discriminator's body: (B, C, S, S) -> (B, width * 2^(stages-1), base, base).
        self.body = DCGANDiscriminator(shape, width, "batch").body
        outputs = 2 * latent_dim if variational else latent_dim
        self.head = WholeMapConv2d(width * 2 ** (stages - 1), outputs, base, 1, 0)  # -> (B, outputs, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.head(self.body(x)).flatten(1)  # (B, outputs)
        if not self.variational:
            return out, None
        mean, log_var = out.chunk(2, dim=1)
        return mean, log_var


class StandardNormal(nn.Module):
    """N(0, I): the VAE's prior, and the naive way to sample an autoencoder."""

    fitted = False

    def sample(self, n: int, latent_dim: int, rng: torch.Generator | None, device) -> torch.Tensor:
        return torch.randn(n, latent_dim, generator=rng, device=device)


STANDARD_NORMAL = StandardNormal()


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class SecondStage(StandardNormal):
    """The second stage of the 2-Stage VAE (Dai & Wipf 2019): a small VAE on the first stage's codes
    z, whose own latent u ~ N(0, I) is what the first stage's codes should have been. Sampling:
    z = its decoder's mean at u ~ N(0, I). Gaussian decoder with one learned standard deviation
    (their gamma), so it can fit the codes as closely as they need.

    The VAE game trains it as the network "second_stage"; the first stage's Decoder carries a frozen
    copy as its prior, refreshed whenever a checkpoint is written, so the sampler is one network."""

    def __init__(self, latent_dim: int, hidden: int, layers: int):
        super().__init__()
        self.encoder = mlp([latent_dim] + [hidden] * layers + [2 * latent_dim])  # z -> (mean, log_var) of u
        self.decoder = mlp([latent_dim] + [hidden] * layers + [latent_dim])  # u -> mean of z
        self.log_std = nn.Parameter(torch.zeros(()))
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))  # trained for at least one step

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted)

    def forward(self, z: torch.Tensor, rng: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Codes z (B, D) -> (the decoder's mean of z (B, D), the mean and log-variance of q(u|z) (B, D)
        each), through a sample u of q(u|z) drawn from `rng`."""
        u_mean, u_log_var = self.encoder(z).chunk(2, dim=1)
        return self.decoder(reparameterize(u_mean, u_log_var, rng)), u_mean, u_log_var

    def sample(self, n: int, latent_dim: int, rng: torch.Generator | None, device) -> torch.Tensor:
        if not self.fitted:
            return super().sample(n, latent_dim, rng, device)
        u = torch.randn(n, latent_dim, generator=rng, device=device)
        return self.decoder(u.to(self.log_std.device)).to(u.device)


class FittedMixture(StandardNormal):
    """A Gaussian mixture over codes, fitted after training (ex-post density estimation, Ghosh et al.
    2020); N(0, I) until fitted. Its parameters are buffers: they travel in the checkpoint with the
    decoder's weights, and no optimizer or EMA changes them (the EMA copies buffers)."""

    def __init__(self, latent_dim: int, components: int):
        super().__init__()
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("weights", torch.full((components,), 1 / components))  # (K,)
        self.register_buffer("means", torch.zeros(components, latent_dim))  # (K, D)
        self.register_buffer("scale_tril", torch.eye(latent_dim).repeat(components, 1, 1))  # (K, D, D): Cholesky factors

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted)

    def set(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> None:
        """Store a fitted mixture: weights (K,), means (K, D), full covariances (K, D, D)."""
        self.weights.copy_(weights)
        self.means.copy_(means)
        self.scale_tril.copy_(torch.linalg.cholesky(covariances.to(self.scale_tril)))
        self.is_fitted.fill_(True)

    def sample(self, n: int, latent_dim: int, rng: torch.Generator | None, device) -> torch.Tensor:
        if not self.fitted:
            return super().sample(n, latent_dim, rng, device)
        # A component per code, then z = mean_k + L_k eps: all draws from `rng`, on its device.
        components = torch.multinomial(self.weights.to(device), n, replacement=True, generator=rng)  # (n,)
        eps = torch.randn(n, latent_dim, 1, generator=rng, device=device)
        means, scale_tril = self.means.to(device)[components], self.scale_tril.to(device)[components]
        return means + (scale_tril @ eps).squeeze(2)


class Decoder(DCGANGenerator):
    """codes z (B, latent_dim) -> images (B, C, S, S) in [-1, 1]; `forward(z, logits=True)` gives the
    last layer's raw output, which the likelihoods (gan_cli.losses.likelihood) read: per-pixel Bernoulli logits,
    or the logit of a Gaussian's mean in [0, 1]. Either way the image is that mean, 2 * sigmoid - 1
    (= tanh(logits / 2)) on the [-1, 1] scale of the data.

    `learn_std`: a Gaussian decoder's one learned standard deviation (log scale; Dai & Wipf's gamma).
    """

    def __init__(self, shape: DataShape, latent_dim: int, width: int, prior: StandardNormal = None, learn_std: bool = False,
                 initial_std: float = 1.0):
        super().__init__(shape, latent_dim, width)
        self.net = self.net[:-1]  # the DCGAN generator without its tanh: (B, latent_dim) -> logits (B, C, S, S)
        self.prior = prior if prior is not None else StandardNormal()
        self.log_std = nn.Parameter(torch.tensor(math.log(initial_std))) if learn_std else None
        self.latent_source = "auto"

    def forward(self, z: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """Images in [-1, 1], or with `logits` the last layer's raw output (what a training step
        needs: through forward, so DDP sees the pass). (B, latent_dim) -> (B, C, S, S)."""
        out = self.net(z[:, :, None, None])
        return out if logits else torch.tanh(0.5 * out)

    def sample_inputs(self, n, rng=None, device=None, labels=None) -> dict[str, torch.Tensor]:
        """n codes z (n, latent_dim) from the prior `latent_source` names (the decoder takes no labels).
        An unfitted prior draws from N(0, I) itself."""
        prior = STANDARD_NORMAL if self.latent_source == "prior" else self.prior
        return {"z": prior.sample(n, self.latent_dim, rng, torch.device("cpu") if device is None else device)}


def choose_latent_source(decoder: nn.Module, source: str) -> None:
    """Make gan-sample and gan-eval draw codes from `source`: prior (N(0, I)), fitted (the density
    fitted after training: the autoencoder's mixture, the 2-stage VAE's second stage) or auto."""
    if source not in LATENT_SOURCES:
        raise GanError(f"sampler={source!r} must be one of {', '.join(LATENT_SOURCES)}")
    if not isinstance(decoder, Decoder):
        if source == "auto":
            return
        raise GanError(f"sampler={source} is for the encoder families (model=ae, model=vae); this checkpoint's "
                       "generator draws from its own latent distribution: drop sampler=")
    if source == "fitted" and not decoder.prior.fitted:
        raise GanError("sampler=fitted: this checkpoint holds no fitted latent density (the autoencoder fits its "
                       "mixture when a checkpoint is written; a VAE needs model.second_stage.steps > 0); use sampler=prior")
    decoder.latent_source = source


class evaluating:
    """Within the block the networks run in eval mode (batch norm's running statistics); their modes
    are restored after it."""

    def __init__(self, *networks: nn.Module):
        self.networks = networks

    def __enter__(self):
        self.modes = [network.training for network in self.networks]
        for network in self.networks:
            network.eval()

    def __exit__(self, *exc):
        for network, mode in zip(self.networks, self.modes):
            network.train(mode)


@torch.no_grad()
def encode(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Codes of images x (N, C, H, W) in [-1, 1] (for a VAE the means of q(z|x)) -> (N, latent_dim)
    float32, in eval mode."""
    with evaluating(encoder):
        return torch.cat([encoder(chunk)[0].float() for chunk in x.split(BATCH)])


@torch.no_grad()
def reconstruct(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Images x (N, C, H, W) in [-1, 1] -> their reconstructions decoder(code of x), same shape and
    device, in eval mode."""
    codes = encode(encoder, x)
    with evaluating(decoder):
        return torch.cat([decoder(chunk).float() for chunk in codes.split(BATCH)])
