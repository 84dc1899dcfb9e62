"""Adversarial losses, written on D's raw logits (numerically stable softplus forms)."""

from omegaconf import DictConfig

from gan_cli.errors import GanError
from gan_cli.losses.adversarial import NonSaturatingLoss

LOSSES = {"nonsaturating": NonSaturatingLoss}


def build_loss(cfg: DictConfig):
    if cfg.name not in LOSSES:
        raise GanError(f"loss.name={cfg.name!r} is not a known loss; use one of {', '.join(LOSSES)}")
    return LOSSES[cfg.name]()
