"""Weight initialisation schemes, applied after construction."""

from torch import nn

from gan_cli.errors import GanError

INIT_SCHEMES = ("dcgan_normal", "default")


def initialize(module: nn.Module, scheme: str) -> None:
    """dcgan_normal: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0 (DCGAN paper).
    default: keep PyTorch's own initialisation."""
    if scheme not in INIT_SCHEMES:
        raise GanError(f"model.init={scheme!r} is not a known scheme; use one of {', '.join(INIT_SCHEMES)}")
    if scheme == "default":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
