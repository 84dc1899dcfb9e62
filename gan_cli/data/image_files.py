"""Datasets made of image files (an image folder, CelebA, and the unpaired domains' folders of
gan_cli.data.domains): finding, decoding, and the batch source.

Every image is cropped to a centred square and resized to image_size x image_size, as RGB
(channels=3) or grayscale (channels=1). A dataset whose decoded images fit in
dataset.memory_budget_mb is decoded once, by `workers` processes, into one uint8 tensor (the
TensorBatchSource); a larger one is streamed from disk (StreamedBatchSource). Files that cannot be
read are logged by name and skipped; a dataset with no readable image is an error naming its folder.
"""

import logging
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from gan_cli.data.source import TensorBatchSource
from gan_cli.data.streamed import StreamedBatchSource
from gan_cli.errors import GanError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
PIL_MODES = {1: "L", 3: "RGB"}


@dataclass
class ImageFiles:
    """Image files to decode into uint8 (channels, image_size, image_size) squares, with their labels."""

    folder: Path  # named in messages
    files: list[Path]
    labels: torch.Tensor | None  # int64 (N,)
    num_classes: int
    image_size: int
    channels: int
    crop: int | None = None  # side of the centred square cut before resizing; None: the largest square

    @property
    def bytes_per_image(self) -> int:
        return self.channels * self.image_size**2


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def decode(path: Path, image_size: int, channels: int, crop: int | None = None) -> torch.Tensor:
    """The image at `path` as uint8 (channels, image_size, image_size): a centred square of side
    `crop` (at most the shorter side; None: the shorter side), resized with antialiasing.
    Raises OSError (or ValueError) for a file Pillow cannot decode."""
    with Image.open(path) as image:
        image = image.convert(PIL_MODES[channels])  # decodes the whole file: a truncated one fails here
        width, height = image.size
        side = min(width, height, crop or min(width, height))
        left, top = (width - side) // 2, (height - side) // 2
        square = image.resize((image_size, image_size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
    array = np.asarray(square, dtype=np.uint8).reshape(image_size, image_size, channels)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)  # (H, W, C) -> (C, H, W)


def _try(task, path: Path):
    """(result, None) or (None, the reason the file could not be read)."""
    try:
        return task(path), None
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as err:  # SyntaxError: some broken PNGs
        return None, str(err) or type(err).__name__


def _header_ok(path: Path) -> bool:
    """Opening reads only the header: cheap, and catches files that are not images at all."""
    with Image.open(path):
        return True


class _FileTasks(Dataset):
    """`task` applied to each file, in DataLoader workers: ((result or None, error or None), ...)."""

    def __init__(self, files: list[Path], task):
        self.files, self.task = files, task

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        return _try(self.task, self.files[index])


def _each_file(files: list[Path], task, workers: int):
    """Yield (path, result, error) for every file, `task` running in `workers` processes."""
    loader = DataLoader(_FileTasks(files, task), batch_size=64, num_workers=workers, collate_fn=list)
    paths = iter(files)
    for batch in loader:
        for result, error in batch:
            yield next(paths), result, error


def _readable(data: ImageFiles, task, workers: int):
    """Yield (index, result) for each file `task` succeeds on; each failure is logged by name, and a
    dataset without a single success is an error naming its folder."""
    found = False
    for index, (path, result, error) in enumerate(_each_file(data.files, task, workers)):
        if error is None:
            found = True
            yield index, result
        else:
            log.warning(f"skipping {path}: cannot read it as an image ({error})")
    if not found:
        raise GanError(f"{data.folder} holds no readable image: all {len(data.files)} files failed to decode (see the log)")


def file_batch_source(
    data: ImageFiles, batch_size: int, device: torch.device, seed: int, workers: int, memory_budget_mb: float
) -> TensorBatchSource | StreamedBatchSource:
    """The batch source of `data`: decoded into memory when it fits the budget, otherwise streamed."""
    workers = usable_workers(workers)
    needed_mb = len(data.files) * data.bytes_per_image / 2**20
    if needed_mb <= memory_budget_mb:
        images, kept = decode_into_memory(data, workers)
        labels = data.labels[kept] if data.labels is not None else None
        check_batch_size(batch_size, len(kept))
        return TensorBatchSource(images, labels, data.num_classes, batch_size, device, seed)
    kept = [index for index, _ in _readable(data, _header_ok, workers)]
    log.info(
        f"Streaming {len(kept)} of {len(data.files)} images of {data.folder} from disk with {workers} workers: "
        f"{needed_mb:.0f} MB decoded is over dataset.memory_budget_mb={memory_budget_mb:g}"
    )
    files = [data.files[i] for i in kept]
    labels = data.labels[kept] if data.labels is not None else None
    check_batch_size(batch_size, len(files))
    dataset = StreamedImages(files, _decoder(data))
    shape = (data.channels, data.image_size, data.image_size)
    return StreamedBatchSource(dataset, shape, labels, data.num_classes, batch_size, device, seed, workers)


def decode_into_memory(data: ImageFiles, workers: int) -> tuple[torch.Tensor, list[int]]:
    """Every readable file of `data` decoded by `workers` processes: (uint8 images (K, C, S, S), the
    indices of those K files in data.files); unreadable files are logged and left out."""
    started = time.perf_counter()
    # Each decoded image is copied into one tensor as it arrives: holding every image a worker sent
    # would keep one shared-memory handle open per image, more than a process may have.
    images, kept = torch.empty((len(data.files), data.channels, data.image_size, data.image_size), dtype=torch.uint8), []
    for index, image in _readable(data, _decoder(data), workers):
        images[len(kept)] = image
        kept.append(index)
    log.info(
        f"Decoded {len(kept)} of {len(data.files)} images of {data.folder} into memory "
        f"({len(kept) * data.bytes_per_image / 2**20:.0f} MB) in {time.perf_counter() - started:.1f} s"
    )
    return images[: len(kept)], kept


def _decoder(data: ImageFiles):
    """decode() with data's size, channels and crop: path -> uint8 (C, S, S)."""
    return partial(decode, image_size=data.image_size, channels=data.channels, crop=data.crop)


def usable_workers(requested: int) -> int:
    """dataset.workers, at most the CPUs this process may run on: more worker processes than CPUs only
    compete for them (and torch's DataLoader warns about it at length)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if requested <= cpus:
        return requested
    log.info(f"dataset.workers={requested} capped at {cpus}, the number of CPUs this process may use")
    return cpus


def check_batch_size(batch_size: int, count: int) -> None:
    if batch_size > count:
        raise GanError(f"train.batch_size={batch_size} is larger than the dataset ({count} samples); lower it")


class StreamedImages(Dataset):
    """Files decoded on demand: item i is (uint8 image (C, S, S), index of the file it came from).

    A file whose header read fine but whose data does not decode is logged and replaced by the next
    readable file, so a batch keeps its size and the data order stays a function of the seed.
    """

    def __init__(self, files: list[Path], decode_file):
        self.files, self.decode_file = files, decode_file

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for offset in range(len(self.files)):
            source = (index + offset) % len(self.files)
            image, error = _try(self.decode_file, self.files[source])
            if error is None:
                return image, source
            log.warning(f"skipping {self.files[source]}: cannot decode it ({error}); using the next file")
        raise GanError("none of the streamed image files decodes any more")


# --- an image folder ---------------------------------------------------------------------------------


def scan_image_folder(path: str | None) -> tuple[Path, list[Path], torch.Tensor | None, list[str] | None]:
    """(folder, image files sorted, labels or None, class names or None) of an image folder tree.

    Labels come from sub-folders: when every image lies inside a top-level sub-folder, each such
    folder is a class (sorted names: label k is class_names[k]); images directly in the folder make
    the whole tree unlabelled.
    """
    folder = dataset_folder(path)
    files = sorted(image_files_under(folder))
    if not files:
        raise no_image_files(path, folder)
    tops = [p.relative_to(folder).parts[0] if len(p.relative_to(folder).parts) > 1 else None for p in files]
    if None in tops:
        if any(tops):
            log.info(f"{folder} has images at its top level beside sub-folders: the images are used unlabelled")
        return folder, files, None, None
    class_names = sorted(set(tops))
    labels = torch.tensor([class_names.index(top) for top in tops], dtype=torch.long)
    return folder, files, labels, class_names


def check_image_folder(path: str | None) -> None:
    """What can be checked before a run starts, decoding nothing: dataset.path is a folder holding at
    least one image file (by its extension; the search stops at the first)."""
    folder = dataset_folder(path)
    if next(image_files_under(folder), None) is None:
        raise no_image_files(path, folder)


IMAGE_FOLDER_USAGE = "dataset=image_folder needs dataset.path=<a folder of images> (sub-folders become classes)"


def dataset_folder(path: str | None, usage: str = IMAGE_FOLDER_USAGE) -> Path:
    """dataset.path as an existing folder; `usage` is the message when it is not set."""
    if path is None:
        raise GanError(usage)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise GanError(f"dataset.path={path}: {folder} is not a folder" + (" (it does not exist)" if not folder.exists() else ""))
    return folder


def image_files_under(folder: Path):
    """The image files anywhere under `folder`, by extension, hidden files and folders left out."""
    return (p for p in folder.rglob("*") if is_image_file(p) and not _hidden(p.relative_to(folder)))


def no_image_files(path: str, folder: Path) -> GanError:
    return GanError(f"dataset.path={path}: {folder} holds no image files (looked for {', '.join(IMAGE_SUFFIXES)}, in sub-folders too)")


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)
