"""MNIST from torchvision's on-disk layout: <root>/MNIST/raw/*-ubyte, downloaded when missing."""

import logging
from pathlib import Path

import torch

from gan_cli.data.idx import read_idx
from gan_cli.errors import GanError

log = logging.getLogger(__name__)

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}


def load_mnist(root: str, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, 1, 28, 28) and labels as int64 (N,) of one split."""
    if split not in FILES:
        raise GanError(f"dataset.split={split!r} is not an MNIST split; use train or test")
    raw = Path(root).expanduser() / "MNIST" / "raw"
    paths = [_existing(raw / name) for name in FILES[split]]
    if None in paths:
        if download:
            _download(Path(root).expanduser())
            paths = [_existing(raw / name) for name in FILES[split]]
        if None in paths:
            raise GanError(_missing_message(raw, download))
    images = read_idx(paths[0])
    labels = read_idx(paths[1])
    n = SPLIT_SIZES[split]
    if images.shape != (n, 28, 28) or labels.shape != (n,):
        raise GanError(
            f"{raw}: expected {n} images of 28x28 and {n} labels for the {split} split, found "
            f"images {tuple(images.shape)} and labels {tuple(labels.shape)}"
        )
    return images.unsqueeze(1), labels.long()


def _existing(path: Path) -> Path | None:
    """The file itself or its .gz twin, whichever exists."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _download(root: Path) -> None:
    """Fetch MNIST with torchvision into <root>/MNIST/raw; a failure is reported by the caller."""
    from torchvision.datasets import MNIST

    log.info(f"MNIST not found under {root}; trying to download it there")
    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except Exception as err:  # no network, a proxy, a read-only folder: all end in the same advice
        log.warning(f"MNIST download failed: {' '.join(str(err).split())}")


def _missing_message(raw: Path, download: bool) -> str:
    names = [name for pair in FILES.values() for name in pair]
    tried = "the download failed, and " if download else ""
    return (
        f"MNIST not found: {tried}{raw} does not hold the four files "
        f"{', '.join(names)} (plain or .gz). Put them there, or point dataset.root "
        "(or the environment variable GAN_DATA_ROOT) at the folder that contains MNIST/raw/"
    )
