"""MNIST and Fashion-MNIST from torchvision's on-disk layout: <root>/<folder>/raw/*-ubyte, downloaded
when missing. Both use the same IDX files under the same names; only the folder differs."""

from pathlib import Path

import torch

from gan_cli.data.download import try_download
from gan_cli.data.idx import check_idx_file, read_idx
from gan_cli.errors import GanError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}  # of both datasets
FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # dataset name -> torchvision's folder and class


def load_mnist(
    root: str, split: str, download: bool, dataset: str = "mnist"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, 1, 28, 28) and labels as int64 (N,) of one split of `dataset`
    (mnist or fashion_mnist)."""
    folder = FOLDERS[dataset]
    raw, paths = _split_files(root, split, dataset)
    if None in paths:
        if download:
            try_download(folder, Path(root).expanduser(), _torchvision_download(folder))
            raw, paths = _split_files(root, split, dataset)
        if None in paths:
            raise GanError(_missing_message(folder, raw, download))
    images = read_idx(paths[0])
    labels = read_idx(paths[1])
    if images.dim() != 3 or images.shape[1:] != (28, 28) or labels.shape != (len(images),):
        raise GanError(
            f"{raw}: expected N images of 28x28 and N labels for the {split} split, found "
            f"images {tuple(images.shape)} and labels {tuple(labels.shape)}"
        )
    return images.unsqueeze(1), labels.long()


def check_mnist_files(root: str, split: str, download: bool, dataset: str = "mnist") -> None:
    """What can be checked before a run starts, reading only IDX headers: the split's files that are
    present have the IDX magic number and the size their header promises. Missing files are left to
    load_mnist, which downloads them, unless `download` is off: then they are refused here."""
    raw, paths = _split_files(root, split, dataset)
    if None in paths and not download:
        raise GanError(_missing_message(FOLDERS[dataset], raw, download))
    for path in filter(None, paths):
        check_idx_file(path, f"dataset.root={root}: {path}")


def _split_files(root: str, split: str, dataset: str) -> tuple[Path, list[Path | None]]:
    """(<root>/<folder>/raw, [the split's images file, its labels file]), None for a missing file."""
    if split not in FILES:
        raise GanError(f"dataset.split={split!r} is not a split of {dataset}; use train or test")
    raw = Path(root).expanduser() / FOLDERS[dataset] / "raw"
    return raw, [_existing(raw / name) for name in FILES[split]]


def _existing(path: Path) -> Path | None:
    """The file itself or its .gz twin, whichever exists."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _torchvision_download(folder: str):
    def download(root: Path) -> None:
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, folder)  # MNIST or FashionMNIST
        for train in (True, False):
            dataset_class(str(root), train=train, download=True)

    return download


def _missing_message(folder: str, raw: Path, download: bool) -> str:
    names = [name for pair in FILES.values() for name in pair]
    tried = "the download failed, and " if download else ""
    return (
        f"{folder} not found: {tried}{raw} does not hold the four files "
        f"{', '.join(names)} (plain or .gz). Put them there, or point dataset.root "
        f"(or the environment variable GAN_DATA_ROOT) at the folder that contains {folder}/raw/"
    )
