"""Domains derived from MNIST, each a fixed transform of a digit, so the true counterpart of any
test digit in any domain is known (paired error, label preservation).

Every transform takes uint8 digits (N, 1, 28, 28), white strokes (255) on black (0), and returns
uint8 images (N, C, 28, 28): C = 1 for the grey domains, 3 for the colour ones. `seed` only matters
to colour_random (a random pair of colours per image, the same for the same seed and images).
"""

import torch
import torch.nn.functional as F

from gan_cli.errors import GanError

COLOUR_FOREGROUND = (255, 200, 40)  # `colour`: yellow strokes ...
COLOUR_BACKGROUND = (20, 40, 160)  # ... on blue
MIN_COLOUR_DISTANCE = 150.0  # colour_random: the two colours of an image are at least this far apart in RGB


def _dilate(x: torch.Tensor) -> torch.Tensor:
    """3x3 grey dilation (the maximum over each pixel's neighbourhood), uint8 (N, 1, H, W) -> same."""
    return F.max_pool2d(x.float(), 3, stride=1, padding=1).to(torch.uint8)


def _erode(x: torch.Tensor) -> torch.Tensor:
    """3x3 grey erosion (the minimum over each neighbourhood; outside the image counts as stroke,
    so the border does not eat digits that touch it), uint8 (N, 1, H, W) -> same."""
    return (-F.max_pool2d(-x.float(), 3, stride=1, padding=1)).to(torch.uint8)


def plain(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return x.clone()


def invert(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return 255 - x


def edge(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """CoGAN's edge images: dilate3x3(x) - x, the outline just outside the stroke (never negative)."""
    return _dilate(x) - x


def thick(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return _dilate(x)


def thin(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Eroded strokes, except where erosion would erase the stroke: there (no solid eroded stroke, at
    least half-bright, anywhere in the 3x3 neighbourhood) the pixel keeps its value, so thin strokes
    and digits stay whole and legible (a faint remnant of the erosion does not count as the stroke)."""
    eroded = _erode(x)
    survives = _dilate(eroded) > 127
    return torch.where(survives, eroded, x)


def rot90(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A quarter turn counter-clockwise."""
    return torch.rot90(x, 1, dims=(2, 3)).contiguous()


def _paint(x: torch.Tensor, foreground: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Grey digits (N, 1, H, W) -> RGB (N, 3, H, W): background + ink * (foreground - background).
    foreground, background: float (N, 3) or (3,) in [0, 255]."""
    ink = x.float() / 255.0
    foreground, background = foreground.reshape(-1, 3, 1, 1), background.reshape(-1, 3, 1, 1)
    return (background + ink * (foreground - background)).round().clamp(0, 255).to(torch.uint8)


def colour(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return _paint(x, torch.tensor(COLOUR_FOREGROUND, dtype=torch.float32), torch.tensor(COLOUR_BACKGROUND, dtype=torch.float32))


def random_colour_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n (foreground, background) pairs, float (n, 3) each, uniform over the RGB cube, redrawn until the
    two are MIN_COLOUR_DISTANCE apart (so the digit stays legible). The same for the same n and seed."""
    generator = torch.Generator().manual_seed(seed)
    foreground, background = torch.zeros(n, 3), torch.zeros(n, 3)
    todo = torch.arange(n)
    while len(todo):
        foreground[todo] = torch.randint(0, 256, (len(todo), 3), generator=generator).float()
        background[todo] = torch.randint(0, 256, (len(todo), 3), generator=generator).float()
        todo = todo[(foreground[todo] - background[todo]).norm(dim=1) < MIN_COLOUR_DISTANCE]
    return foreground, background


def colour_random(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return _paint(x, *random_colour_pairs(len(x), seed))


TRANSFORMS = {
    "plain": plain,
    "invert": invert,
    "edge": edge,
    "thick": thick,
    "thin": thin,
    "rot90": rot90,
    "colour": colour,
    "colour_random": colour_random,
}
COLOUR_DOMAINS = ("colour", "colour_random")


def domain_channels(domains) -> int:
    """The channels every domain of a set is given: 3 if any is in colour (grey ones are promoted), else 1."""
    return 3 if any(name in COLOUR_DOMAINS for name in domains) else 1


def check_domains(domains, key: str = "dataset.domains") -> None:
    """Two or more distinct known domain names, or one message naming `key`."""
    unknown = [name for name in domains if name not in TRANSFORMS]
    if unknown:
        raise GanError(f"{key}: unknown domain {', '.join(map(repr, unknown))}; use any of {', '.join(TRANSFORMS)}")
    if len(domains) < 2 or len(set(domains)) != len(domains):
        raise GanError(f"{key}={list(domains)}: give two or more different domains, for example [plain, invert]")


def to_domain(x: torch.Tensor, name: str, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Grey digits uint8 (N, 1, 28, 28) -> domain `name`, uint8 (N, channels, 28, 28): grey results are
    repeated over 3 channels when `channels` is 3."""
    y = TRANSFORMS[name](x, seed)
    return y.expand(-1, channels, -1, -1).contiguous() if y.shape[1] < channels else y
