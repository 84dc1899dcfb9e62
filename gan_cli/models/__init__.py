"""Generators and discriminators, built from a model config and the dataset's shape.

ARCHITECTURES is the registry, and the only way a config (or a checkpoint's stored config) can
build a network: nothing here imports a class named by a string.
"""

from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import ImageShape
from gan_cli.errors import GanError
from gan_cli.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_cli.models.init import initialize

# name -> (generator builder, discriminator builder), each called with (model config, image shape)
ARCHITECTURES = {
    "dcgan": (
        lambda cfg, shape: DCGANGenerator(shape, cfg.latent_dim, cfg.g_width),
        lambda cfg, shape: DCGANDiscriminator(shape, cfg.d_width),
    ),
}


def _builders(cfg: DictConfig):
    if cfg.name not in ARCHITECTURES:
        raise GanError(f"model.name={cfg.name!r} is not a known architecture; use one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[cfg.name]


def build_generator(cfg: DictConfig, shape: ImageShape) -> nn.Module:
    generator = _builders(cfg)[0](cfg, shape)
    initialize(generator, cfg.init)
    return generator


def build_networks(cfg: DictConfig, shape: ImageShape) -> tuple[nn.Module, nn.Module]:
    """(G, D) for the model config `cfg` (its `name` picks the architecture), initialised."""
    discriminator = _builders(cfg)[1](cfg, shape)
    initialize(discriminator, cfg.init)
    return build_generator(cfg, shape), discriminator
