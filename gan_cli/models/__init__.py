"""Generators and discriminators, built from a model config and the dataset's shape.

ARCHITECTURES is the registry, and the only way a config (or a checkpoint's stored config) can
build a network: nothing here imports a class named by a string. A model config picks its body
with `arch` (dcgan or mlp); `conditional` and `codes` make it a CGAN or an InfoGAN.
"""

from omegaconf import DictConfig
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.models.base import Discriminator, DiscriminatorOutput, Generator
from gan_cli.models.codes import CodeSpec
from gan_cli.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_cli.models.init import initialize
from gan_cli.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["ARCHITECTURES", "Discriminator", "DiscriminatorOutput", "Generator", "build_generator", "build_networks"]


# arch -> (generator builder, discriminator builder); each gets (model config, shape, classes, codes)
# and the discriminator builder also D's normalisation and its remedies for mode collapse.
ARCHITECTURES = {
    "dcgan": (
        lambda cfg, shape, classes, codes: DCGANGenerator(shape, cfg.latent_dim, cfg.g_width, classes, codes),
        lambda cfg, shape, classes, codes, norm: DCGANDiscriminator(
            shape, cfg.d_width, norm, classes, codes, *discriminator_remedies(cfg)
        ),
    ),
    "mlp": (
        lambda cfg, shape, classes, codes: MLPGenerator(
            shape.sample_shape, cfg.latent_dim, list(cfg.g_hidden), classes, codes
        ),
        lambda cfg, shape, classes, codes, norm: MLPDiscriminator(
            shape.sample_shape, list(cfg.d_hidden), cfg.maxout_pieces, cfg.dropout, cfg.input_dropout, classes, codes,
            *discriminator_remedies(cfg),
        ),
    ),
}


def discriminator_remedies(cfg: DictConfig) -> tuple[int, bool]:
    """(model.pack, model.minibatch_std): PacGAN's m and ProGAN's batch statistic (gan_cli.models.minibatch).
    Checkpoints written before these keys existed have neither: one sample at a time, no statistic."""
    return cfg.get("pack", 1), cfg.get("minibatch_std", False)


def code_spec(cfg: DictConfig) -> CodeSpec:
    return CodeSpec(tuple(cfg.codes.categorical), cfg.codes.continuous)


def discriminator_norm(cfg: DictConfig, input_gradient_penalty: bool) -> str:
    """model.d_norm, with `auto` meaning batch norm unless a penalty on D's input gradients is used:
    such a penalty is defined per sample, and batch norm mixes the samples (WGAN-GP paper)."""
    norm = cfg.get("d_norm", "none")
    if norm == "auto":
        return "layer" if input_gradient_penalty else "batch"
    return norm


def _builders(cfg: DictConfig):
    if cfg.arch not in ARCHITECTURES:
        raise GanError(f"model.arch={cfg.arch!r} is not a known architecture; use one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[cfg.arch]


def _num_classes(cfg: DictConfig, shape: DataShape) -> int:
    if cfg.conditional and not shape.num_classes:
        raise GanError("model.conditional=true needs a labelled dataset; this one has no labels")
    return shape.num_classes if cfg.conditional else 0


def build_generator(cfg: DictConfig, shape: DataShape) -> Generator:
    generator = _builders(cfg)[0](cfg, shape, _num_classes(cfg, shape), code_spec(cfg))
    initialize(generator, cfg.init)
    return generator


def build_networks(
    cfg: DictConfig, shape: DataShape, input_gradient_penalty: bool = False
) -> tuple[Generator, Discriminator]:
    """(G, D) for the model config `cfg`, initialised; D spectrally normalised if asked."""
    generator = build_generator(cfg, shape)
    norm = discriminator_norm(cfg, input_gradient_penalty)
    discriminator = _builders(cfg)[1](cfg, shape, _num_classes(cfg, shape), code_spec(cfg), norm)
    initialize(discriminator, cfg.init)
    if cfg.spectral_norm:  # Miyato et al. 2018: every weight layer of D divided by its largest singular value
        for module in list(discriminator.modules()):
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                spectral_norm(module)
    return generator, discriminator
