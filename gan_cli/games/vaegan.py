"""VAE-GAN (Larsen et al. 2016): a VAE whose reconstructions are judged in a discriminator's feature
space, and whose decoder is also a GAN's generator.

Three networks and three optimizers: the encoder q(z|x) (optimizer `encoder`), the decoder p(x|z),
which is the generator (optimizer `generator`), and the discriminator D (optimizer
`discriminator`). For a batch x:

    z ~ q(z|x) = N(mu(x), sigma(x)^2)      x_rec = Dec(z)          (reconstructions)
    z_p ~ N(0, I)                          x_p = Dec(z_p)          (prior samples)
    L_prior = KL(q(z|x) || N(0, I))
    L_llike = 1/2 || D_l(x_rec) - D_l(x) ||^2       (D's layer-l features: a Gaussian likelihood there)
    L_GAN   = the adversarial loss (loss=) of D on x against the fakes x_p and, when
              model.judge_reconstructions, x_rec

and each network descends its own part (the paper's Algorithm 1):

    encoder:       beta L_prior + L_llike            (no GAN term reaches it; the paper's beta: 1)
    decoder:       gamma L_llike + L_GAN's generator side on the fakes
    discriminator: L_GAN's discriminator side

All three gradients are taken at the same parameters, as in the paper's simultaneous update: the
encoder's update runs first with the decoder and D frozen, the decoder's then decodes the same
codes z (detached: nothing of its loss reaches the encoder) through the still unchanged D, and D's
update judges the fakes of that step, detached. Each update touches only its own network, so the
order changes nothing but which network's failure the NaN guard names first.

`loss=` applies (D is a classic GAN discriminator; the paper's is the cross-entropy one); losses
that need a Lipschitz constraint (wgan, wgan_gp) and penalties are refused by validation. There are
no k discriminator steps (train.d_steps): the three updates share one batch and one encoding.
"""

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.games.base import Game, Precision
from gan_cli.losses import build_adversarial_loss
from gan_cli.games.autoencoder import unwrapped
from gan_cli.losses.likelihood import kl_to_standard_normal, reparameterize
from gan_cli.models.autoencoder import Decoder, Encoder, reconstruct
from gan_cli.models.init import initialize
from gan_cli.models.vaegan import FeatureDiscriminator
from gan_cli.training.updates import Updates


def feature_error(fake_features: torch.Tensor, real_features: torch.Tensor) -> torch.Tensor:
    """L_llike per image: 1/2 the squared distance of D's features, (B, F), (B, F) -> (B,), fp32."""
    return 0.5 * (fake_features.float() - real_features.float()).square().sum(dim=1)


class VAEGANGame(Game):
    families = ("vaegan",)
    # In the order of a step's updates (see the module's docstring).
    optimizers = {"encoder": ("encoder",), "generator": ("decoder",), "discriminator": ("D",)}
    averaged = ("encoder", "decoder")  # reconstructions come from the averaged pair, samples from the decoder
    sampler = "decoder"
    encoder = "encoder"
    uses_d_steps = False

    def __init__(self, cfg: DictConfig, shape: DataShape):
        super().__init__(cfg, shape)
        self.adversarial = build_adversarial_loss(cfg.loss)
        self.gamma, self.beta = cfg.model.gamma, cfg.model.beta
        self.layer = cfg.model.feature_layer
        self.judge_reconstructions = cfg.model.judge_reconstructions

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        model = cfg.model
        networks = {
            "encoder": Encoder(shape, model.latent_dim, model.width, variational=True),
            "decoder": Decoder(shape, model.latent_dim, model.width),  # the VAE's: N(0, I) prior
            "D": FeatureDiscriminator(shape, model.d_width, model.d_norm),
        }
        for network in networks.values():
            initialize(network, model.init)
        return networks

    def step(self, data, updates: Updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        encoder, decoder, discriminator = self.networks["encoder"], self.networks["decoder"], self.networks["D"]
        real, _ = data.next()  # (B, C, H, W) in [-1, 1]
        with precision():
            mean, log_var = encoder(real)  # (B, latent_dim) each
        z = reparameterize(mean.float(), log_var.float(), rng)  # (B, latent_dim), carries the encoder's graph
        with torch.no_grad(), precision():
            _, real_features = discriminator.judge(real, self.layer)  # D_l(x): the target, (B, F)

        # Encoder: L_prior + L_llike; the decoder and D only pass gradients on.
        with updates.frozen("decoder", "D"):
            with precision():
                _, rec_features = discriminator.judge(decoder(z), self.layer)
            prior = kl_to_standard_normal(mean, log_var)
            llike = feature_error(rec_features, real_features).mean()
            updates.apply("encoder", self.beta * prior + llike)

        # Decoder: gamma L_llike + the generator's side of L_GAN, from the same codes (detached).
        z_prior = decoder.sample_inputs(len(real), rng, real.device)  # {"z": (B, latent_dim)}
        with updates.frozen("D"):
            with precision():
                reconstructed, sampled = decoder(z.detach()), decoder(**z_prior)
                rec_logits, rec_features = discriminator.judge(reconstructed, self.layer)
                prior_logits, _ = discriminator.judge(sampled, self.layer)
            decoder_llike = feature_error(rec_features, real_features).mean()
            judged = [prior_logits, rec_logits] if self.judge_reconstructions else [prior_logits]
            gan = self.adversarial.g_loss(torch.cat(judged).float())
            updates.apply("generator", self.gamma * decoder_llike + gan)

        # Discriminator: real images against the step's fakes.
        fakes = torch.cat([sampled, reconstructed] if self.judge_reconstructions else [sampled]).detach()
        with precision():
            real_logits, _ = discriminator.judge(real, self.layer)
            fake_logits, _ = discriminator.judge(fakes, self.layer)
        real_logits, fake_logits = real_logits.float(), fake_logits.float()
        d_loss = self.adversarial.d_loss(real_logits, fake_logits)
        updates.apply("discriminator", d_loss)
        return {
            "loss/encoder": (self.beta * prior + llike).detach(),
            "loss/decoder": (self.gamma * decoder_llike + gan).detach(),
            "loss/D": d_loss.detach(),
            "vaegan/kl": prior.detach(),
            "vaegan/feature_error": llike.detach(),
            "vaegan/gan_G": gan.detach(),
            "D(x)": self.adversarial.score(real_logits).mean().detach(),
            "D(G(z))": self.adversarial.score(fake_logits).mean().detach(),
        }

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images x (N, C, H, W) in [-1, 1] -> Dec(mean of q(z|x)), in eval mode (as the VAE's)."""
        return reconstruct(unwrapped(self.networks["encoder"]), unwrapped(self.networks["decoder"]), x)
