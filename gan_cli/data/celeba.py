"""CelebA's aligned faces (Liu et al. 2015) from torchvision's on-disk layout, downloaded when missing:

    <root>/celeba/img_align_celeba/000001.jpg ...  the 202,599 aligned 178x218 JPEGs
    <root>/celeba/list_eval_partition.txt          `000001.jpg 0` per line: 0 train, 1 valid, 2 test
    <root>/celeba/list_attr_celeba.txt             a count, the 40 attribute names, then
                                                   `000001.jpg -1  1 ...` per line (1: has it)

The images are unlabelled unless dataset.attribute names one of the 40 attributes: then the label
is 1 when the face has it and 0 otherwise (for a conditional model). dataset.domains names two or
more attributes as image domains, for translation (gan_cli.data.domains): a face is in domain k when
it has attribute k and none of the others listed; faces with none of them, or several, are left out.
"""

import logging
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
DOMAINS_EXAMPLE = "[Black_Hair, Blond_Hair, Brown_Hair]"

log = logging.getLogger(__name__)


def celeba_files(
    root: str, split: str, attribute: str | None, image_size: int, crop: int | None, download: bool
) -> ImageFiles:
    folder = _celeba_folder(root, split, bool(attribute), download)
    names = _names(folder, split)
    files = [folder / IMAGES / name for name in names]
    labels = _attribute_labels(folder / ATTRIBUTE_FILE, attribute, names) if attribute else None
    return ImageFiles(folder, files, labels, 2 if attribute else 0, image_size, channels=3, crop=crop)


def _celeba_folder(root: str, split: str, attributes: bool, download: bool) -> Path:
    """<root>/celeba, holding the images and the files `split` (and `attributes`) need, downloaded
    when missing and `download` allows; otherwise a message naming what is missing."""
    if split not in SPLITS:
        raise GanError(f"dataset.split={split!r} is not a CelebA split; use one of {', '.join(SPLITS)}")
    folder = Path(root).expanduser() / FOLDER
    needed = [IMAGES] + ([PARTITION_FILE] if SPLITS[split] else []) + ([ATTRIBUTE_FILE] if attributes else [])
    if any(not (folder / name).exists() for name in needed) and download:
        try_download("CelebA", Path(root).expanduser(), _torchvision_download)
    missing = [name for name in needed if not (folder / name).exists()]
    if missing:
        tried = "the download failed, and " if download else ""
        raise GanError(
            f"CelebA not found: {tried}{folder} lacks {', '.join(missing)} ({IMAGES}/ holds the aligned JPEGs "
            f"000001.jpg ...; {PARTITION_FILE} is needed for dataset.split={split}; {ATTRIBUTE_FILE} for "
            "dataset.attribute and dataset.domains). Put them there, or point dataset.root (or GAN_DATA_ROOT) at the "
            "folder that contains celeba/"
        )
    return folder


def _names(folder: Path, split: str) -> list[str]:
    """The file names of `split`'s images, in the partition file's order (sorted for split=all)."""
    return _split_names(folder / PARTITION_FILE, SPLITS[split]) if SPLITS[split] else _all_names(folder / IMAGES)


# --- attributes as domains ----------------------------------------------------------------------------


def check_domain_keys(attribute: str | None, domains) -> None:
    """dataset.domains, when set: two or more different names, and not together with dataset.attribute."""
    if domains is None:
        return
    if attribute is not None:
        raise GanError(
            f"dataset.attribute={attribute} and dataset.domains={list(domains)} together: dataset.attribute makes one "
            "attribute a 0/1 label (for a conditional model), dataset.domains makes attributes the domains of a "
            "translation model; keep one (dataset.attribute=null or dataset.domains=null)"
        )
    if len(domains) < 2 or len(set(domains)) != len(domains):
        raise GanError(f"dataset.domains={list(domains)}: give two or more different CelebA attributes, for example "
                       f"{DOMAINS_EXAMPLE}")


def check_domain_names(domains, attributes: list[str], path: Path) -> None:
    """Every name of dataset.domains is an attribute of the file at `path` (whose header is `attributes`)."""
    unknown = [name for name in domains if name not in attributes]
    if unknown:
        raise GanError(
            f"dataset.domains: {', '.join(map(repr, unknown))} {'is not a CelebA attribute' if len(unknown) == 1 else 'are not CelebA attributes'} "
            f"(the header of {path}); use two or more of {', '.join(attributes)}"
        )


def check_celeba_files(root: str, attribute: str | None, domains) -> None:
    """Before a run, reading only the attribute file's header (when the file is there; a missing one is
    downloaded or named by the loader): the attribute names dataset.attribute and dataset.domains give."""
    check_domain_keys(attribute, domains)
    path = Path(root).expanduser() / FOLDER / ATTRIBUTE_FILE
    if (attribute is None and domains is None) or not path.is_file():
        return
    attributes = _attribute_header(path)
    if domains is not None:
        check_domain_names(domains, attributes, path)
    elif attribute not in attributes:
        raise _unknown_attribute(attribute, attributes)


def celeba_domain_files(root: str, split: str, domains: list[str], download: bool) -> tuple[Path, list[list[Path]]]:
    """(<root>/celeba, the image files of `split` in each domain, in the partition file's order): an
    image is in domain k when its attribute domains[k] is 1 and no other listed attribute is. Images
    with none of the attributes, or with several, are in no domain. Logs how many each domain got."""
    check_domain_keys(None, domains)
    folder = _celeba_folder(root, split, attributes=True, download=download)
    names = _names(folder, split)
    path = folder / ATTRIBUTE_FILE
    attributes, values = _attribute_table(path)
    check_domain_names(domains, attributes, path)
    _require_lines(path, values, names)
    columns = [attributes.index(name) for name in domains]
    parts, none, several = [[] for _ in domains], 0, 0
    for name in names:
        has = [k for k, column in enumerate(columns) if values[name][column] == "1"]
        if len(has) == 1:
            parts[has[0]].append(folder / IMAGES / name)
        elif has:
            several += 1
        else:
            none += 1
    log.info(
        f"CelebA's {split} split in dataset.domains: "
        + ", ".join(f"{name} {len(part)} images" for name, part in zip(domains, parts))
        + f"; left out: {none} with none of the attributes, {several} with several"
    )
    empty = [name for name, part in zip(domains, parts) if not part]
    if empty:
        raise GanError(
            f"dataset.domains={list(domains)}: no image of CelebA's {split} split has {' or '.join(empty)} without "
            "another of the listed attributes; choose attributes that each hold images of their own"
        )
    return folder, parts


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
    attributes, values = _attribute_table(path)
    if attribute not in attributes:
        raise _unknown_attribute(attribute, attributes)
    _require_lines(path, values, names)
    column = attributes.index(attribute)
    return torch.tensor([values[name][column] == "1" for name in names], dtype=torch.long)


def _unknown_attribute(attribute: str, attributes: list[str]) -> GanError:
    return GanError(f"dataset.attribute={attribute!r} is not a CelebA attribute; use one of {', '.join(attributes)}")


def _attribute_table(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """(the attribute names, file name -> its values "1" / "-1" in the names' order) of the attribute file."""
    rows = _lines(path)
    if len(rows) < 2:
        raise GanError(f"{path} is too short to be CelebA's attribute file (a count line, then the attribute names)")
    attributes = rows[1]
    return attributes, {row[0]: row[1:] for row in rows[2:] if len(row) == len(attributes) + 1}


def _require_lines(path: Path, values: dict[str, list[str]], names: list[str]) -> None:
    missing = [name for name in names if name not in values]
    if missing:
        raise GanError(f"{path} has no attribute line for {len(missing)} images, e.g. {missing[0]}")


def _attribute_header(path: Path) -> list[str]:
    """The attribute names on the second line of the attribute file, reading no further."""
    try:
        with open(path) as f:
            lines = [f.readline() for _ in range(2)]
    except (OSError, UnicodeDecodeError) as err:
        raise GanError(f"cannot read {path}: {err}") from err
    if not lines[1].split():
        raise GanError(f"{path} is too short to be CelebA's attribute file (a count line, then the attribute names)")
    return lines[1].split()


def _torchvision_download(root: Path) -> None:
    from torchvision.datasets import CelebA

    CelebA(str(root), split="all", target_type="attr", download=True)
