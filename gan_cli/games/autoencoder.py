"""The encoder families without a discriminator: the autoencoder and the VAE.

Both encode a batch of images, decode the codes and take one step of a single optimizer over the
encoder and the decoder (`optimizer.generator` trains the whole autoencoder) on the negative
log-likelihood of the images (gan_cli.losses.likelihood):

- `model=ae`: a deterministic code z = E(x); loss -log p(x|z). Its decoder samples from N(0, I) (the
  naive way) or, once fitted, from a Gaussian mixture fitted to the codes of training images
  (ex-post density estimation, Ghosh et al. 2020), refitted whenever the loop draws, evaluates or
  writes a checkpoint (`prepare_sampling`).
- `model=vae` (Kingma & Welling 2014): q(z|x) = N(mean, diag(var)), z sampled by the
  reparameterisation trick; loss -log p(x|z) + beta KL(q(z|x) || N(0, I)), the negative ELBO at
  beta = 1. Optionally the 2-Stage VAE (Dai & Wipf 2019): for the last `model.second_stage.steps`
  steps of the run the first stage is fixed and a small VAE learns the distribution of its codes;
  samples then decode z = second stage's decoder(u), u ~ N(0, I).

VAE-GAN (Larsen et al. 2016, branch families-began) reuses the Encoder and Decoder and `reconstruct`.
"""

import math

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games.base import Game, Precision
from gan_cli.losses.likelihood import (
    bernoulli_nll,
    gaussian_nll,
    gaussian_pixel_nll,
    kl_to_standard_normal,
    reparameterize,
)
from gan_cli.models.autoencoder import (
    Decoder,
    Encoder,
    FittedMixture,
    SecondStage,
    StandardNormal,
    encode,
    reconstruct,
)
from gan_cli.models.init import initialize
from gan_cli.training.updates import Updates


def unwrapped(network: nn.Module) -> nn.Module:
    """The network itself, without DDP's wrapper (whose forward would wait for the other processes)."""
    return getattr(network, "module", network)


def second_stage(cfg: DictConfig) -> SecondStage:
    """The 2-Stage VAE's second stage the model config describes (untrained)."""
    stage = cfg.model.second_stage
    return SecondStage(cfg.model.latent_dim, stage.hidden, stage.layers)


class AutoencoderGame(Game):
    families = ("ae",)
    optimizers = {"generator": ("encoder", "decoder")}  # optimizer.generator trains the whole autoencoder
    averaged = ("encoder", "decoder")  # reconstructions and fitted codes come from the averaged pair
    sampler = "decoder"
    encoder = "encoder"
    uses_loss = False  # its objective is the likelihood, not an adversarial loss
    uses_d_steps = False
    variational = False

    def __init__(self, cfg: DictConfig, shape: DataShape):
        super().__init__(cfg, shape)
        self.model = cfg.model
        self.seed = cfg.seed

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        model = cfg.model
        if not shape.is_image:
            raise GanError(f"model={model.name} is convolutional and the data are {shape.describe()}: use image data")
        encoder = Encoder(shape, model.latent_dim, model.width, cls.variational)
        learn_std = model.likelihood == "gaussian" and model.learn_std
        decoder = Decoder(shape, model.latent_dim, model.width, cls.latent_prior(cfg), learn_std, model.gaussian_std)
        for network in (encoder, decoder):
            initialize(network, model.init)
        return {"encoder": encoder, "decoder": decoder}

    @classmethod
    def latent_prior(cls, cfg: DictConfig) -> StandardNormal:
        """What the decoder samples codes from: the mixture fitted after training, N(0, I) until then."""
        return FittedMixture(cfg.model.latent_dim, cfg.model.mixture_components)

    def step(self, data, updates: Updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        """One update of the encoder and decoder on a batch: reconstruct it, descend the loss."""
        x, _ = data.next()  # (B, C, H, W) in [-1, 1]
        with precision():
            mean, log_var = self.networks["encoder"](x)  # (B, latent_dim) each; log_var None for the AE
        z = self.code(mean.float(), log_var, rng)
        with precision():
            logits = self.networks["decoder"](z, logits=True)  # (B, C, H, W)
        terms = self.terms(x, logits, mean, log_var)
        updates.apply("generator", terms["loss/total"])
        return {name: value.detach() for name, value in terms.items()}

    def code(self, mean: torch.Tensor, log_var: torch.Tensor | None, rng: torch.Generator) -> torch.Tensor:
        """The code the decoder reconstructs from: the autoencoder's own."""
        return mean

    def terms(self, x, logits, mean, log_var) -> dict[str, torch.Tensor]:
        """The loss and its parts, 0-d; `loss/total` is what the update descends."""
        reconstruction = self.reconstruction_nll(logits, x)
        return {"loss/reconstruction": reconstruction, "loss/total": reconstruction}

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) in nats per image under the model's likelihood."""
        if self.model.likelihood == "bernoulli":
            return bernoulli_nll(logits, x)
        log_std = self.networks["decoder"].log_std  # learned, or None: the fixed model.gaussian_std
        return gaussian_pixel_nll(logits, x, log_std if log_std is not None else math.log(self.model.gaussian_std))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions of images x (N, C, H, W) in [-1, 1] by the game's own encoder and decoder."""
        return reconstruct(unwrapped(self.networks["encoder"]), unwrapped(self.networks["decoder"]), x)

    def prepare_sampling(self, samplers: dict[str, nn.Module], data) -> None:
        """Fit the mixture to the codes the sampling encoder gives the first model.mixture_codes
        training images, and store it in the sampling decoder and the trained one. Deterministic
        (fixed seed) and drawing nothing from the training generators: a run is the same with or
        without it."""
        from sklearn.mixture import GaussianMixture  # here: scikit-learn loads in about a second

        images = data.head(min(self.model.mixture_codes, len(data)))
        codes = encode(samplers["encoder"], images).cpu().double()  # (N, latent_dim)
        mixture = GaussianMixture(self.model.mixture_components, covariance_type="full", random_state=self.seed)
        mixture.fit(codes.numpy())
        fitted = [torch.from_numpy(values) for values in (mixture.weights_, mixture.means_, mixture.covariances_)]
        for decoder in (samplers["decoder"], unwrapped(self.networks["decoder"])):
            decoder.prior.set(*fitted)


class VAEGame(AutoencoderGame):
    families = ("vae",)
    variational = True

    def __init__(self, cfg: DictConfig, shape: DataShape):
        super().__init__(cfg, shape)
        self.beta = cfg.model.beta
        self.second_stage_steps = cfg.model.second_stage.steps
        self.train_cfg = cfg.train
        self.optimizers = dict(self.optimizers)
        if self.second_stage_steps:  # its own optimizer, built from the same node
            self.optimizers["second_stage"] = ("second_stage",)
            self.optimizer_nodes = {"second_stage": "generator"}

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        networks = super().build_networks(cfg, shape)
        if cfg.model.second_stage.steps:
            networks["second_stage"] = second_stage(cfg)
        return networks

    @classmethod
    def latent_prior(cls, cfg: DictConfig) -> StandardNormal:
        """N(0, I), or with a second stage a frozen copy of it (refreshed by prepare_sampling)."""
        return second_stage(cfg).requires_grad_(False) if cfg.model.second_stage.steps else StandardNormal()

    def code(self, mean, log_var, rng) -> torch.Tensor:
        """A sample of q(z|x), by the reparameterisation trick."""
        return reparameterize(mean, log_var.float(), rng)

    def terms(self, x, logits, mean, log_var) -> dict[str, torch.Tensor]:
        """The ELBO's terms (nats per image) and the loss beta weighs them into."""
        reconstruction = self.reconstruction_nll(logits, x)
        kl = kl_to_standard_normal(mean, log_var)
        return {
            "loss/reconstruction": reconstruction,
            "loss/kl": kl,
            "loss/total": reconstruction + self.beta * kl,
            "elbo": -(reconstruction + kl).detach(),  # the evidence lower bound on log p(x) (beta = 1)
        }

    def step(self, data, updates: Updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        if self.second_stage_steps and updates.step > self.first_stage_steps(data):
            return self.second_stage_step(data, updates, rng)
        return super().step(data, updates, rng, precision)

    def first_stage_steps(self, data) -> int:
        from gan_cli.training.loop import planned_steps  # here: the loop imports the games

        return planned_steps(self.train_cfg, len(data)) - self.second_stage_steps

    def second_stage_step(self, data, updates: Updates, rng: torch.Generator) -> dict[str, torch.Tensor]:
        """One update of the second stage on codes z ~ q(z|x) of a batch under the fixed first stage
        (in eval mode: its batch-norm statistics stay those the sampler uses). In fp32: it is small."""
        encoder, stage = self.networks["encoder"], self.networks["second_stage"]
        encoder.eval()
        x, _ = data.next()
        with torch.no_grad():
            mean, log_var = encoder(x)
            z = reparameterize(mean.float(), log_var.float(), rng)  # (B, latent_dim)
        z_mean, u_mean, u_log_var = stage(z, rng)
        reconstruction = gaussian_nll(z_mean, z, unwrapped(stage).log_std)
        kl = kl_to_standard_normal(u_mean, u_log_var)
        updates.apply("second_stage", reconstruction + kl)
        unwrapped(stage).is_fitted.fill_(True)
        return {"second_stage/reconstruction": reconstruction.detach(), "second_stage/kl": kl.detach()}

    def prepare_sampling(self, samplers: dict[str, nn.Module], data) -> None:
        """Copy the second stage, once it has trained, into the sampling decoder and the trained one."""
        if not self.second_stage_steps:
            return
        stage = unwrapped(self.networks["second_stage"]).state_dict()
        for decoder in (samplers["decoder"], unwrapped(self.networks["decoder"])):
            decoder.prior.load_state_dict(stage)
