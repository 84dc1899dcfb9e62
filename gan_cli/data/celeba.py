"""CelebA's aligned faces (Liu et al. 2015) from torchvision's on-disk layout, downloaded when missing:

    <root>/celeba/img_align_celeba/000001.jpg ...  the 202,599 aligned 178x218 JPEGs
    <root>/celeba/list_eval_partition.txt          `000001.jpg 0` per line: 0 train, 1 valid, 2 test
    <root>/celeba/list_attr_celeba.txt             a count, the 40 attribute names, then
                                                   `000001.jpg -1  1 ...` per line (1: has it)

The images are unlabelled unless dataset.attribute names one of the 40 attributes: then the label
is 1 when the face has it and 0 otherwise (for a conditional model).
"""

from pathlib import Path

import torch

from gan_cli.data.download import try_download
from gan_cli.data.image_files import ImageFiles
from gan_cli.errors import GanError

FOLDER = "celeba"
IMAGES = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
SPLITS = {"train": "0", "valid": "1", "test": "2", "all": None}


def celeba_files(
    root: str, split: str, attribute: str | None, image_size: int, crop: int | None, download: bool
) -> ImageFiles:
    if split not in SPLITS:
        raise GanError(f"dataset.split={split!r} is not a CelebA split; use one of {', '.join(SPLITS)}")
    folder = Path(root).expanduser() / FOLDER
    needed = [IMAGES] + ([PARTITION_FILE] if SPLITS[split] else []) + ([ATTRIBUTE_FILE] if attribute else [])
    if any(not (folder / name).exists() for name in needed) and download:
        try_download("CelebA", Path(root).expanduser(), _torchvision_download)
    missing = [name for name in needed if not (folder / name).exists()]
    if missing:
        tried = "the download failed, and " if download else ""
        raise GanError(
            f"CelebA not found: {tried}{folder} lacks {', '.join(missing)} ({IMAGES}/ holds the aligned JPEGs "
            f"000001.jpg ...; {PARTITION_FILE} is needed for dataset.split={split}; {ATTRIBUTE_FILE} for "
            "dataset.attribute). Put them there, or point dataset.root (or GAN_DATA_ROOT) at the folder that contains celeba/"
        )
    names = _split_names(folder / PARTITION_FILE, SPLITS[split]) if SPLITS[split] else _all_names(folder / IMAGES)
    files = [folder / IMAGES / name for name in names]
    labels = _attribute_labels(folder / ATTRIBUTE_FILE, attribute, names) if attribute else None
    return ImageFiles(folder, files, labels, 2 if attribute else 0, image_size, channels=3, crop=crop)


def _all_names(images: Path) -> list[str]:
    return sorted(p.name for p in images.iterdir() if p.suffix.lower() == ".jpg")


def _lines(path: Path) -> list[list[str]]:
    try:
        return [line.split() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise GanError(f"cannot read {path}: {err}") from err


def _split_names(path: Path, code: str) -> list[str]:
    rows = _lines(path)
    if any(len(row) != 2 for row in rows):
        raise GanError(f"{path}: every line should be `<file name> <0, 1 or 2>`")
    names = [name for name, partition in rows if partition == code]
    if not names:
        raise GanError(f"{path} lists no image of partition {code}")
    return names


def _attribute_labels(path: Path, attribute: str, names: list[str]) -> torch.Tensor:
    """1 where the image has `attribute` (value 1 in the file), 0 where it has not (-1), for `names`."""
    rows = _lines(path)
    if len(rows) < 2:
        raise GanError(f"{path} is too short to be CelebA's attribute file (a count line, then the attribute names)")
    attributes = rows[1]
    if attribute not in attributes:
        raise GanError(f"dataset.attribute={attribute!r} is not a CelebA attribute; use one of {', '.join(attributes)}")
    column = attributes.index(attribute) + 1  # after the file name
    values = {row[0]: row[column] for row in rows[2:] if len(row) == len(attributes) + 1}
    missing = [name for name in names if name not in values]
    if missing:
        raise GanError(f"{path} has no attribute line for {len(missing)} images, e.g. {missing[0]}")
    return torch.tensor([values[name] == "1" for name in names], dtype=torch.long)


def _torchvision_download(root: Path) -> None:
    from torchvision.datasets import CelebA

    CelebA(str(root), split="all", target_type="attr", download=True)
