"""Weight initialisation schemes, applied after construction."""

from torch import nn

from gan_cli.errors import GanError

WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def _dcgan_normal(weight):
    nn.init.normal_(weight, 0.0, 0.02)


INIT_SCHEMES = {
    "dcgan_normal": _dcgan_normal,  # N(0, 0.02), the DCGAN paper
    "xavier": nn.init.xavier_uniform_,  # Glorot & Bengio 2010
    "orthogonal": nn.init.orthogonal_,  # Saxe et al. 2014, used by BigGAN
    "default": None,  # PyTorch's own (Kaiming-uniform)
}


def initialize(module: nn.Module, scheme: str) -> None:
    """Initialise weight layers by `scheme`, biases to 0, and normalisation scales around 1."""
    if scheme not in INIT_SCHEMES:
        raise GanError(f"model.init={scheme!r} is not a known scheme; use one of {', '.join(INIT_SCHEMES)}")
    init_weight = INIT_SCHEMES[scheme]
    if init_weight is None:
        return
    for m in module.modules():
        if isinstance(m, WEIGHT_LAYERS):
            init_weight(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, NORM_LAYERS) and m.weight is not None:
            # DCGAN: scales ~ N(1, 0.02); the other schemes keep scale 1
            nn.init.normal_(m.weight, 1.0, 0.02 if scheme == "dcgan_normal" else 0.0)
            nn.init.zeros_(m.bias)
