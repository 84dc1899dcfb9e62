"""A discriminator judging a real and a fake batch: the adversarial loss of `loss=` with its penalties,
and WGAN's clipping after the update. Shared by the games whose discriminators are not the GAN
game's one D (the translation families, CoGAN's pair)."""

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.games.base import Precision
from gan_cli.losses.regularizers import clip_weights, gradient_penalty, r1_penalty


def judge(adversarial, loss_cfg: DictConfig, discriminator: nn.Module, name: str, real: torch.Tensor,
          fake: torch.Tensor, rng: torch.Generator, precision: Precision):
    """`discriminator` on a real and a (detached) fake batch: (its loss terms {"loss/<name>...": 0-d},
    the real output, the fake output). The terms are the adversarial loss and the loss config's
    penalties on D's input gradients, computed in fp32 outside autocast."""
    with precision():
        real_out, fake_out = discriminator(real), discriminator(fake)
    terms = {f"loss/{name}": adversarial.d_loss(real_out.logits.float(), fake_out.logits.float())}
    if loss_cfg.gradient_penalty:
        terms[f"loss/{name}_gradient_penalty"] = loss_cfg.gradient_penalty * gradient_penalty(discriminator, real, fake, None, rng)
    if loss_cfg.r1:
        terms[f"loss/{name}_r1"] = loss_cfg.r1 * r1_penalty(discriminator, real, None)
    return terms, real_out, fake_out


def clip(loss_cfg: DictConfig, *networks: nn.Module) -> None:
    """WGAN (loss=wgan): the networks' weights clipped after their update."""
    if loss_cfg.get("clip") is not None:
        for network in networks:
            clip_weights(network, loss_cfg.clip)
