"""Reading images to score from anywhere: a folder of PNG files, or an .npz as gan-sample writes it."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gan_cli.errors import GanError


def read_images(path: Path) -> torch.Tensor:
    """uint8 images (N, C, H, W) from a folder of PNGs (sorted by name) or an .npz with `images` (N, H, W, C).

    Grayscale saved as RGB with three equal channels (torchvision's save_image does that) comes back
    with one channel.
    """
    if path.is_dir():
        array = _read_png_folder(path)
    elif path.suffix.lower() == ".npz" and path.is_file():
        array = _read_npz(path)
    elif not path.exists():
        raise GanError(f"images={path} does not exist; give a folder of PNG files or an .npz file")
    else:
        raise GanError(f"images={path} is neither a folder of PNG files nor an .npz file")
    # A copy in (N, C, H, W) order: strides of a mere permute would make convolutions pick other
    # kernels (channels-last), and the same images read two ways would score a hair apart.
    images = torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))
    if images.shape[1] == 3 and (images == images[:, :1]).all():
        images = images[:, :1].clone()
    return images


def _read_png_folder(folder: Path) -> np.ndarray:
    files = sorted(folder.glob("*.png"))
    if not files:
        raise GanError(f"images={folder} holds no .png files")
    arrays = []
    for file in files:
        try:
            with Image.open(file) as image:
                array = np.asarray(image.convert("L" if image.mode in ("1", "L", "I;16") else "RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise GanError(f"cannot read {file} as a PNG image ({err})") from err
        arrays.append(array[..., None] if array.ndim == 2 else array)  # (H, W, C)
        if arrays[-1].shape != arrays[0].shape:
            raise GanError(
                f"{file} is {arrays[-1].shape[1]}x{arrays[-1].shape[0]} with {arrays[-1].shape[2]} channel(s), unlike "
                f"{files[0].name} ({arrays[0].shape[1]}x{arrays[0].shape[0]}, {arrays[0].shape[2]}): all images must match"
            )
    return np.stack(arrays)


def _read_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path) as archive:
            if "images" not in archive:
                raise GanError(f"{path} has no array `images` (it has {', '.join(archive.files) or 'none'})")
            array = archive["images"]
    except (ValueError, OSError) as err:
        raise GanError(f"cannot read {path} as an .npz archive ({err})") from err
    if array.dtype != np.uint8 or array.ndim != 4:
        raise GanError(
            f"{path}: `images` must be uint8 of shape (N, H, W, C), as gan-sample writes; it is "
            f"{array.dtype} of shape {array.shape}"
        )
    return array
