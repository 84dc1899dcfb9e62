"""StarGAN (Choi et al. 2018): one generator for every domain, told its target domain by label planes
joined to its input, and one discriminator with a real/fake output and a domain classifier.

For a batch x of the pooled domains with their domains c (B,), and targets c' drawn as a random
permutation of the batch's own domains:

    discriminator (train.d_steps updates per step, each on a fresh batch; the paper: 5):
        d_loss(D_src(x), D_src(G(x, c'))) + lambda_cls CE(D_cls(x), c) + lambda_gp GP    (`loss=wgan_gp`)
    generator (once per step, on the last of those batches):
        g_loss(D_src(G(x, c'))) + lambda_cls CE(D_cls(G(x, c')), c') + lambda_rec |G(G(x, c'), c) - x|_1

D learns the domains from real images only; G learns to make images D files under the target domain,
and to keep enough of x that the way back to c rebuilds it (the cycle of CycleGAN, with one G).
"""

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.games.base import Precision
from gan_cli.games.cyclegan import build_patch_discriminator, build_translator
from gan_cli.games.translation import TranslationGame, require_domains
from gan_cli.models.init import initialize
from gan_cli.training.updates import Updates


def with_domain_planes(x: torch.Tensor, domains: torch.Tensor, num_domains: int) -> torch.Tensor:
    """Images (B, C, H, W) and domains (B,) -> (B, C + num_domains, H, W): a one-hot plane per domain."""
    planes = F.one_hot(domains, num_domains).to(x.dtype)[:, :, None, None]  # (B, K, 1, 1)
    return torch.cat([x, planes.expand(-1, -1, *x.shape[2:])], dim=1)


class StarGANGame(TranslationGame):
    families = ("stargan",)
    # D's updates come first in a step, as in the adversarial game.
    optimizers = {"discriminator": ("D",), "generator": ("G",)}
    averaged = ("G",)
    uses_d_steps = True  # train.d_steps: critic updates per generator update (the paper's n_critic = 5)

    def __init__(self, cfg: DictConfig, shape: DataShape):
        super().__init__(cfg, shape)
        self.classification_weight = cfg.model.classification_weight
        self.reconstruction_weight = cfg.model.cycle_weight
        self.d_steps = cfg.train.d_steps

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        require_domains(shape, "stargan")
        networks = {
            "G": build_translator(cfg.model, shape, condition_channels=shape.num_classes),
            "D": build_patch_discriminator(cfg.model, shape, num_domains=shape.num_classes),
        }
        for network in networks.values():
            initialize(network, cfg.model.init)
        return networks

    @classmethod
    def translate(cls, networks: dict[str, nn.Module], x: torch.Tensor, source: int, target: int) -> torch.Tensor:
        generator = networks["G"]
        domains = torch.full((len(x),), target, dtype=torch.long, device=x.device)
        return generator(with_domain_planes(x, domains, generator.condition_channels))

    def step(self, data, updates: Updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        generator = self.networks["G"]
        for i in range(self.d_steps):
            real, domains = data.next()  # (B, C, H, W) in [-1, 1], (B,) domain indices
            targets = domains[torch.randperm(len(domains), generator=rng, device=domains.device)]
            # The last fake batch keeps its graph: the generator's update reuses it.
            with torch.set_grad_enabled(i == self.d_steps - 1), precision():
                fake = generator(with_domain_planes(real, targets, self.num_domains))
            d_scalars = self.discriminator_step(updates, real, domains, fake.detach(), rng, precision)
        g_scalars = self.generator_step(updates, real, domains, fake, targets, precision)
        return {**d_scalars, **g_scalars}

    def discriminator_step(self, updates: Updates, real, domains, fake, rng, precision) -> dict[str, torch.Tensor]:
        """D: real against fake (with the loss's penalties), and the domains of the real images."""
        terms, real_out, fake_out = self.judge("D", real, fake, rng, precision)
        terms["loss/D_classification"] = self.classification_weight * F.cross_entropy(real_out.domain_logits.float(), domains)
        updates.apply("discriminator", sum(terms.values()))
        self.clip("D")
        return {
            **{name: value.detach() for name, value in terms.items()},
            "D(x)": self.adversarial.score(real_out.logits.float()).mean().detach(),
            "D(G(x,c))": self.adversarial.score(fake_out.logits.float()).mean().detach(),
            "D_domain_accuracy": (real_out.domain_logits.argmax(1) == domains).float().mean().detach(),
        }

    def generator_step(self, updates: Updates, real, domains, fake, targets, precision) -> dict[str, torch.Tensor]:
        """G: fool D, be classified as the target domain, and come back to `real` from its fakes."""
        with updates.frozen("D"):
            with precision():
                out = self.networks["D"](fake)
                rebuilt = self.networks["G"](with_domain_planes(fake, domains, self.num_domains))
            terms = {
                "loss/G": self.adversarial.g_loss(out.logits.float()),
                "loss/G_classification": self.classification_weight * F.cross_entropy(out.domain_logits.float(), targets),
                "loss/reconstruction": self.reconstruction_weight * F.l1_loss(rebuilt.float(), real),
            }
            updates.apply("generator", sum(terms.values()))
        return {name: value.detach() for name, value in terms.items()}

