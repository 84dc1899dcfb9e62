"""Generating images from a generator, and writing them as grids, PNG files or arrays.

Used by gan-sample and by the training loop's sample grids. Images are float (N, C, H, W) in [-1, 1].
"""

import io
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from gan_cli.errors import GanError
from gan_cli.files import atomic_write
from gan_cli.models.base import Generator

OUTPUT_FORMATS = ("auto", "grid", "images", "npz")


def seeded_inputs(generator: Generator, n: int, seed: int) -> dict[str, torch.Tensor]:
    """`n` generator inputs drawn on the CPU from `seed`: the same images on any device."""
    return generator.sample_inputs(n, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def generate(generator: Generator, inputs: dict[str, torch.Tensor], batch_size: int = 256) -> torch.Tensor:
    """Images for `inputs` (a dict of (N, ...) tensors), made in eval mode in chunks; on the CPU."""
    device = next(generator.parameters()).device
    n = len(inputs["z"])
    was_training = generator.training
    generator.eval()  # batch norm uses its running statistics: an image does not depend on its batch
    try:
        chunks = [
            generator(**{name: value[start : start + batch_size].to(device) for name, value in inputs.items()})
            .float()
            .cpu()
            for start in range(0, n, batch_size)
        ]
    finally:
        generator.train(was_training)
    return torch.cat(chunks)


def image_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A grid image float (3, H', W') in [0, 1] from images in [-1, 1]."""
    return make_grid(images, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 [0, 255], same shape."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 in [-1, 1], same shape (the inverse of to_uint8)."""
    return images.float().div(127.5).sub(1.0)


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write one image float (C, H, W) in [0, 1] as PNG, atomically."""
    atomic_write(path, lambda f: save_image(image, f, format="png"))


def write_images(images: torch.Tensor, out: Path, output_format: str = "auto", nrow: int = 8) -> str:
    """Write `images` to `out` as a grid PNG, a folder of PNGs or an .npz; returns the format used."""
    if output_format not in OUTPUT_FORMATS:
        raise GanError(f"format={output_format!r} is not an output format; use one of {', '.join(OUTPUT_FORMATS)}")
    if output_format == "auto":
        output_format = {".png": "grid", ".npz": "npz"}.get(out.suffix.lower(), "images")
    if output_format == "grid":
        save_png(image_grid(images, nrow), out)
    elif output_format == "npz":
        save_npz(images, out)
    else:
        for i, image in enumerate(images):
            save_png((image + 1) / 2, out / f"{i:06d}.png")
    return output_format


def save_npz(images: torch.Tensor, path: Path) -> None:
    """`images` as uint8 (N, H, W, C) under the key `images`, the layout other tools read."""
    array = to_uint8(images).permute(0, 2, 3, 1).numpy()

    def write(f):
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=array)
        f.write(buffer.getvalue())

    atomic_write(path, write)
