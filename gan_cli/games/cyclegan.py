"""CycleGAN (Zhu et al. 2017): two generators G_AB: A -> B and G_BA: B -> A, two discriminators D_A
and D_B, trained on unpaired images of the two domains.

For batches a of domain A and b of domain B, one step is

    generators (one optimizer over G_AB and G_BA; D_A and D_B frozen):
        L_GAN = g_loss(D_B(G_AB(a))) + g_loss(D_A(G_BA(b)))                 (`loss=`: LSGAN in the paper)
        L_cyc = |G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1               (weight lambda = 10)
        L_idt = |G_AB(b) - b|_1 + |G_BA(a) - a|_1                           (weight 0.5 lambda)
    discriminators (one optimizer over D_A and D_B):
        1/2 d_loss(D_A(a), D_A(pool_A(G_BA(b)))) + 1/2 d_loss(D_B(b), D_B(pool_B(G_AB(a))))
        (plus the loss config's penalties, also halved; WGAN's clipping after the update)

where each pool (Shrivastava et al. 2017) swaps half of the fresh fakes for fakes of earlier steps
(50 per domain). The discriminators are PatchGANs: every patch is judged, every loss is a mean over
patches. The identity term keeps a generator from changing images that are already in its target
domain (colours, in the paper).
"""

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.games.base import Precision
from gan_cli.games.translation import TranslationGame, require_domains
from gan_cli.models.init import initialize
from gan_cli.models.translation import PatchDiscriminator, ResnetGenerator
from gan_cli.training.replay import ReplayBuffer
from gan_cli.training.updates import Updates

GENERATORS = {(0, 1): "G_AB", (1, 0): "G_BA"}  # (source, target) -> the generator that translates


def build_translator(model: DictConfig, shape: DataShape, condition_channels: int = 0) -> ResnetGenerator:
    """A ResNet generator for images of `shape`, with `condition_channels` extra input planes."""
    return ResnetGenerator(shape.channels, condition_channels, model.g_width, model.g_blocks, model.downsamplings)


def build_patch_discriminator(model: DictConfig, shape: DataShape, num_domains: int = 0) -> PatchDiscriminator:
    return PatchDiscriminator(shape.channels, shape.image_size, model.d_width, model.d_downsamplings, model.d_norm, num_domains)


class CycleGANGame(TranslationGame):
    families = ("cyclegan",)
    # The generators' update comes first in a step (the reference implementation's order).
    optimizers = {"generator": ("G_AB", "G_BA"), "discriminator": ("D_A", "D_B")}
    averaged = ("G_AB", "G_BA")

    def __init__(self, cfg: DictConfig, shape: DataShape):
        super().__init__(cfg, shape)
        self.cycle_weight = cfg.model.cycle_weight
        self.identity_weight = cfg.model.identity_weight * cfg.model.cycle_weight
        self.pools = [ReplayBuffer(cfg.model.pool_size, 0.5) if cfg.model.pool_size else None for _ in range(2)]

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        require_domains(shape, "cyclegan", exactly=2)
        networks = {
            "G_AB": build_translator(cfg.model, shape),
            "G_BA": build_translator(cfg.model, shape),
            "D_A": build_patch_discriminator(cfg.model, shape),
            "D_B": build_patch_discriminator(cfg.model, shape),
        }
        for network in networks.values():
            initialize(network, cfg.model.init)
        return networks

    @classmethod
    def translate(cls, networks: dict[str, nn.Module], x: torch.Tensor, source: int, target: int) -> torch.Tensor:
        return networks[GENERATORS[source, target]](x)

    def step(self, data, updates: Updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        g_ab, g_ba, d_a, d_b = (self.networks[name] for name in ("G_AB", "G_BA", "D_A", "D_B"))
        real_a, _ = data.next_from(0)  # (B, C, H, W) in [-1, 1]
        real_b, _ = data.next_from(1)

        # Generators: fool the discriminators, come back around the cycle, leave target-domain images alone.
        with updates.frozen("D_A", "D_B"):
            with precision():
                fake_b, fake_a = g_ab(real_a), g_ba(real_b)
                cycled_a, cycled_b = g_ba(fake_b), g_ab(fake_a)
                same_b, same_a = (g_ab(real_b), g_ba(real_a)) if self.identity_weight else (real_b, real_a)
                judged_b, judged_a = d_b(fake_b).logits, d_a(fake_a).logits
            adversarial = self.adversarial.g_loss(judged_b.float()) + self.adversarial.g_loss(judged_a.float())
            cycle = F.l1_loss(cycled_a.float(), real_a) + F.l1_loss(cycled_b.float(), real_b)
            identity = F.l1_loss(same_b.float(), real_b) + F.l1_loss(same_a.float(), real_a)
            g_loss = adversarial + self.cycle_weight * cycle + self.identity_weight * identity
            updates.apply("generator", g_loss)

        # Discriminators: real images against fakes, half of them from the pools of earlier fakes.
        terms_a, real_a_out, fake_a_out = self.judge("D_A", real_a, self.pooled(0, fake_a, rng), rng, precision)
        terms_b, real_b_out, fake_b_out = self.judge("D_B", real_b, self.pooled(1, fake_b, rng), rng, precision)
        d_terms = {name: 0.5 * value for name, value in {**terms_a, **terms_b}.items()}  # the paper halves D's loss
        updates.apply("discriminator", sum(d_terms.values()))
        self.clip("D_A", "D_B")
        score = self.adversarial.score
        return {
            "loss/G": g_loss.detach(),
            "loss/G_adversarial": adversarial.detach(),
            "loss/cycle": cycle.detach(),
            "loss/identity": identity.detach(),
            **{name: value.detach() for name, value in d_terms.items()},
            "D_A(a)": score(real_a_out.logits.float()).mean().detach(),
            "D_B(b)": score(real_b_out.logits.float()).mean().detach(),
            "D_A(G_BA(b))": score(fake_a_out.logits.float()).mean().detach(),
            "D_B(G_AB(a))": score(fake_b_out.logits.float()).mean().detach(),
        }

    def pooled(self, domain: int, fake: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """The fakes D of `domain` is shown: `fake` (detached) with half swapped for earlier ones."""
        pool = self.pools[domain]
        return pool.mix(fake, {}, rng)[0] if pool is not None else fake.detach()

    def state_dict(self) -> dict:
        return {"pools": [pool.state_dict() if pool is not None else None for pool in self.pools]}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        for pool, saved in zip(self.pools, state["pools"]):
            if pool is not None and saved is not None:
                pool.load_state_dict(saved, device)
