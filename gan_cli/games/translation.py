"""What the translation families (CycleGAN, StarGAN) share: they map images of one domain to another
instead of drawing images from latents.

A translation game has no latent sampler (`sampler` is None: gan-sample refuses it, gan-translate
translates). Its data are a DomainBatchSource (gan_cli.data.domains): one training stream per
domain, or the pooled domains with their domain index as the label; `shape.num_classes` is the number
of domains. `translate(networks, x, source, target)` is the one way into a trained model, shared by
training's pictures and evaluations, gan-translate and gan-eval; it works on a dict of networks (the
EMA copies, or networks rebuilt from a checkpoint), so it needs no game object.
"""

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games.base import Game, Precision
from gan_cli.games.judging import clip, judge
from gan_cli.losses import build_adversarial_loss


class TranslationGame(Game):
    sampler = None  # no latent sampler
    uses_d_steps = False  # one discriminator update per step; train.d_steps and train.replay_* do not apply
    translates = True

    def __init__(self, cfg: DictConfig, shape: DataShape):
        super().__init__(cfg, shape)
        self.num_domains = shape.num_classes
        self.adversarial = build_adversarial_loss(cfg.loss)
        self.loss_cfg = cfg.loss  # its penalties (gradient_penalty, r1) and WGAN's clip

    def judge(self, name: str, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator, precision: Precision):
        """Discriminator `name` on a real and a (detached) fake batch (gan_cli.games.judging.judge)."""
        return judge(self.adversarial, self.loss_cfg, self.networks[name], name, real, fake, rng, precision)

    def clip(self, *names: str) -> None:
        """WGAN (loss=wgan): the named discriminators' weights clipped after their update."""
        clip(self.loss_cfg, *(self.networks[name] for name in names))

    @classmethod
    def translate(cls, networks: dict[str, nn.Module], x: torch.Tensor, source: int, target: int) -> torch.Tensor:
        """Images x (N, C, H, W) in [-1, 1] of domain `source` -> their translations into `target`, same shape."""
        raise NotImplementedError


@torch.no_grad()
def translate_images(
    game: type[TranslationGame], networks: dict[str, nn.Module], x: torch.Tensor, source: int, target: int,
    batch_size: int = 256,
) -> torch.Tensor:
    """`game.translate` of images x (N, C, H, W) in [-1, 1] (on any device), in eval mode and in chunks,
    on the networks' device; float (N, C, H, W) on the CPU."""
    device = next(next(iter(networks.values())).parameters()).device
    modes = {name: network.training for name, network in networks.items()}
    for network in networks.values():
        network.eval()
    try:
        return torch.cat([
            game.translate(networks, x[start : start + batch_size].to(device).float(), source, target).float().cpu()
            for start in range(0, len(x), batch_size)
        ])
    finally:
        for name, network in networks.items():
            network.train(modes[name])


def translation_pairs(num_domains: int) -> list[tuple[int, int]]:
    """Every ordered pair of different domains: (0, 1), (0, 2), ..., (1, 0), ..."""
    return [(a, b) for a in range(num_domains) for b in range(num_domains) if a != b]


def require_domains(shape: DataShape, family: str, exactly: int | None = None) -> None:
    """Translation needs domains: a dataset whose labels are domains (dataset=mnist_domains, unpaired)."""
    if not shape.is_image or shape.num_classes < 2 or (exactly is not None and shape.num_classes != exactly):
        count = f"exactly {exactly}" if exactly else "two or more"
        raise GanError(
            f"model={family} translates between {count} domains; use dataset=mnist_domains "
            f"dataset.domains=[plain, invert] (or dataset=unpaired dataset.path=<folder with trainA/ trainB/>)"
        )
