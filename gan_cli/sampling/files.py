"""Writing images: grids, PNG files, .npz arrays, animated GIFs, and toy points; every write atomic."""

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_cli.errors import GanError
from gan_cli.files import atomic_write

OUTPUT_FORMATS = ("auto", "grid", "images", "npz")
# The format an `out` name selects (by its output_kind) when format=auto.
NAMED_FORMATS = {"png": "grid", "npz": "npz", "folder": "images"}


def image_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A grid image float (3, H', W') in [0, 1] from images in [-1, 1]."""
    from torchvision.utils import make_grid  # here, not at the top: see the module's docstring

    return make_grid(images, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))


def row_groups_grid(kinds: list[torch.Tensor], columns: int) -> torch.Tensor:
    """A grid image (3, H', W') in [0, 1] of images of several kinds, each (N, C, H, W) in [-1, 1] and
    row i of one kind made from row i of the others (inputs, their translations, their way back):
    groups of one row of `columns` images per kind, in `kinds`' order (a short last group is padded black)."""
    rows = []
    for start in range(0, len(kinds[0]), columns):
        for images in kinds:
            images = images[start : start + columns]
            rows += [images, torch.full((columns - len(images), *images.shape[1:]), -1.0)]
    return image_grid(torch.cat(rows), nrow=columns)


def reconstruction_grid(inputs: torch.Tensor, outputs: torch.Tensor, columns: int) -> torch.Tensor:
    """Rows of `columns` inputs, each above the row of their reconstructions `outputs` (row_groups_grid)."""
    return row_groups_grid([inputs, outputs], columns)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 [0, 255], same shape."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 in [-1, 1], same shape (the inverse of to_uint8)."""
    return images.float().div(127.5).sub(1.0)


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write one image float (C, H, W) in [0, 1] as PNG, atomically."""
    from torchvision.utils import save_image  # here, not at the top: see the module's docstring

    atomic_write(path, lambda f: save_image(image, f, format="png"))


def output_kind(out: str | Path) -> str:
    """What the name `out` asks for: "folder" (no suffix, or a trailing /), else its suffix ("png", "npz", ...).

    Give the name as typed: a Path has already dropped the trailing / of `x.d/`."""
    if str(out).endswith(("/", os.sep)) or not Path(out).suffix:
        return "folder"
    return Path(out).suffix.lower().removeprefix(".")


def write_images(
    images: torch.Tensor, out: Path, output_format: str, nrow: int = 8, arrays: dict[str, np.ndarray] | None = None
) -> str:
    """Write `images` to `out` as a grid PNG, a folder of PNGs or an .npz (holding `arrays` too, such
    as the labels the images were drawn for); returns the format used."""
    if output_format == "grid":
        save_png(image_grid(images, nrow), out)
    elif output_format == "npz":
        save_npz(images, out, **(arrays or {}))
    elif output_format == "images":
        for i, image in enumerate(images):
            save_png((image + 1) / 2, out / f"{i:06d}.png")
    else:  # gan-sample resolves format=auto and refuses unknown formats before it comes here
        raise ValueError(f"output_format={output_format!r}: use grid, npz or images")
    return output_format


def save_npz(images: torch.Tensor, path: Path, **arrays: np.ndarray) -> None:
    """`images` as uint8 (N, H, W, C) under the key `images`, the layout other tools read; `arrays`
    (each with N rows) beside it under their own keys."""
    array = to_uint8(images).permute(0, 2, 3, 1).numpy()
    atomic_write(path, lambda f: _savez(f, images=array, **arrays))


def write_points(points: torch.Tensor, out: Path, output_format: str = "auto") -> str:
    """Write toy points (N, D) to `out`: an .npz with the float32 array `points` (N, D), or a picture
    (format grid, or auto with a .png: a histogram of 1-D points, a scatter of 2-D ones); returns the format."""
    if output_format == "auto":
        output_format = NAMED_FORMATS.get(output_kind(out))
    if output_format == "npz":
        atomic_write(out, lambda f: _savez(f, points=points.numpy().astype(np.float32)))
    elif output_format == "grid" and points.shape[1] <= 2:
        from gan_cli.figures import figure_image, points_figure  # matplotlib: only toy checkpoints draw

        save_png(figure_image(points_figure(points, f"{len(points)} generated points")), out)
        output_format = "picture"
    else:
        raise GanError(
            f"this checkpoint's generator makes {points.shape[1]}-D points, not images: write them with "
            "out=<name>.npz (the array `points`) or out=<name>.png (a picture)"
        )
    return output_format


def _savez(f, **arrays) -> None:
    buffer = io.BytesIO()  # np.savez_compressed seeks: write to memory first, then to the atomic file
    np.savez_compressed(buffer, **arrays)
    f.write(buffer.getvalue())


def save_gif(frames: list[torch.Tensor], path: Path, frame_ms: int = 120) -> None:
    """An animated GIF, looping, from grid images float (3, H, W) in [0, 1]; written atomically."""
    pictures = [Image.fromarray(frame.mul(255).round().byte().permute(1, 2, 0).numpy()) for frame in frames]
    atomic_write(
        path,
        lambda f: pictures[0].save(f, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0),
    )
