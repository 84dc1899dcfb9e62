"""CoGAN (Liu & Tuzel 2016): a pair of GANs, one per domain, with tied weights, trained on unpaired
images of two domains; it learns their joint distribution, drawing pairs (the same digit in both).

For batches a and b of the two domains and one batch of latents z, with (G_A(z), G_B(z)) = G.pair(z)
(gan_cli.models.cogan: G's first layers and D's last ones are shared), one step is

    discriminator (D_A and D_B: one optimizer over the coupled D):
        d_loss(D_A(a), D_A(G_A(z))) + d_loss(D_B(b), D_B(G_B(z)))          (`loss=`, with its penalties)
    generator (the coupled G, D frozen):
        g_loss(D_A(G_A(z))) + g_loss(D_B(G_B(z)))

The paper's objective is the original GAN's; the sharing alone ties the two domains together.
"""

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.games.base import Game, Precision
from gan_cli.games.judging import clip, judge
from gan_cli.games.translation import require_domains
from gan_cli.losses import build_adversarial_loss
from gan_cli.models import discriminator_norm
from gan_cli.models.cogan import DOMAINS, CoupledDiscriminator, CoupledGenerator
from gan_cli.models.init import initialize
from gan_cli.training.updates import Updates


class CoGANGame(Game):
    families = ("cogan",)
    optimizers = {"discriminator": ("D",), "generator": ("G",)}  # D's update first, as in the GAN game
    averaged = ("G",)
    uses_d_steps = False
    draws_pairs = True  # its sampler draws one image per domain (gan-eval: the pair metrics)

    def __init__(self, cfg: DictConfig, shape: DataShape):
        super().__init__(cfg, shape)
        self.adversarial = build_adversarial_loss(cfg.loss)
        self.loss_cfg = cfg.loss

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        require_domains(shape, "cogan", exactly=DOMAINS)
        model = cfg.model
        penalized = bool(cfg.loss.gradient_penalty or cfg.loss.r1)
        networks = {
            "G": CoupledGenerator(shape, model.latent_dim, model.g_width, model.shared_layers),
            "D": CoupledDiscriminator(shape, model.d_width, discriminator_norm(model, penalized), model.shared_layers),
        }
        for network in networks.values():
            initialize(network, model.init)
        return networks

    def step(self, data, updates: Updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        generator, discriminator = self.networks["G"], self.networks["D"]
        real = [data.next_from(domain)[0] for domain in range(DOMAINS)]  # (B, C, H, W) in [-1, 1] each
        z = generator.sample_inputs(len(real[0]), rng, real[0].device)["z"]
        with precision():
            fakes = generator.pair(z)  # one (B, C, H, W) per domain, from the same z
        sides = [discriminator.view(domain) for domain in range(DOMAINS)]

        terms, scalars = {}, {}
        for domain, name in enumerate(("D_A", "D_B")):
            judged, real_out, fake_out = judge(
                self.adversarial, self.loss_cfg, sides[domain], name, real[domain], fakes[domain].detach(), rng, precision
            )
            terms |= judged
            scalars[f"{name}(x)"] = self.adversarial.score(real_out.logits.float()).mean().detach()
            scalars[f"{name}(G(z))"] = self.adversarial.score(fake_out.logits.float()).mean().detach()
        updates.apply("discriminator", sum(terms.values()))
        clip(self.loss_cfg, discriminator)

        with updates.frozen("D"):
            with precision():
                judged = [side(fake).logits.float() for side, fake in zip(sides, fakes)]
            g_terms = {f"loss/G_{name}": self.adversarial.g_loss(logits) for name, logits in zip("AB", judged)}
            updates.apply("generator", sum(g_terms.values()))
        return {**{name: value.detach() for name, value in {**terms, **g_terms}.items()}, **scalars}
