"""CIFAR-10 from torchvision's on-disk layout: <root>/cifar-10-batches-py/, downloaded when missing.

The batches are Python pickles (written by Python 2) of dicts holding a uint8 array `data`
(N, 3072: 1024 red, then green, then blue values of a 32x32 image, row by row) and a list `labels`.
Unpickling can call any function a file names, so a tampered batch could run code. The reader
below only lets the file name the few functions that rebuild a numpy array (numpy's
`_reconstruct`, `ndarray`, `dtype`, and `_codecs.encode`, which Python 3 pickles use to store
bytes); any other name is refused before anything runs, and the result must be plain dicts,
lists, numbers, bytes and uint8 arrays.
"""

import codecs
import pickle
from pathlib import Path

import numpy as np
import torch

from gan_cli.data.download import try_download
from gan_cli.errors import GanError

FOLDER = "cifar-10-batches-py"
SPLIT_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
META_FILE = "batches.meta"


def _numpy_reconstruct():
    try:  # numpy >= 2 keeps the function in numpy._core; pickles name numpy.core (1.x) or numpy._core
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers and numpy arrays, and nothing else."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which is not part of a numpy array") from None


def read_batch(path: Path) -> dict:
    """One pickled batch as a dict with str keys (Python 2's byte-string keys decoded)."""
    try:
        with path.open("rb") as f:
            batch = ArrayUnpickler(f, encoding="bytes").load()  # Python 2 str -> bytes (also the array data)
    except OSError as err:
        raise GanError(f"cannot read {path}: {err.strerror or err}") from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as err:
        raise GanError(f"{path} is not a CIFAR-10 batch ({err}); replace it with a fresh copy") from err
    if not isinstance(batch, dict):
        raise GanError(f"{path} is not a CIFAR-10 batch: it holds a {type(batch).__name__}, not a dict")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


def load_cifar10(root: str, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor, list[str] | None]:
    """Images as uint8 (N, 3, 32, 32), labels as int64 (N,), and the class names when batches.meta is there."""
    if split not in SPLIT_FILES:
        raise GanError(f"dataset.split={split!r} is not a CIFAR-10 split; use train or test")
    folder = Path(root).expanduser() / FOLDER
    paths = [folder / name for name in SPLIT_FILES[split]]
    if not all(path.is_file() for path in paths) and download:
        try_download("CIFAR-10", Path(root).expanduser(), _torchvision_download)
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        tried = "the download failed, and " if download else ""
        raise GanError(
            f"CIFAR-10 not found: {tried}{folder} lacks {', '.join(missing)} (the {split} split of the python "
            f"version of CIFAR-10, cifar-10-python.tar.gz, unpacked). Put them there, or point dataset.root "
            f"(or GAN_DATA_ROOT) at the folder that contains {FOLDER}/"
        )
    images, labels = zip(*(_batch_arrays(path) for path in paths))
    return torch.cat(images), torch.cat(labels), _class_names(folder / META_FILE)


def _batch_arrays(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    batch = read_batch(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise GanError(f"{path}: `data` should be a uint8 array of shape (N, 3072), found {found}")
    if not isinstance(labels, list) or len(labels) != len(data) or not all(isinstance(k, int) and 0 <= k < 10 for k in labels):
        raise GanError(f"{path}: `labels` should be a list of {len(data)} classes 0 to 9")
    images = torch.from_numpy(data.copy()).view(-1, 3, 32, 32)  # rows are R (1024), G, B planes
    return images, torch.tensor(labels, dtype=torch.long)


def _class_names(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    names = read_batch(path).get("label_names")
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names] if isinstance(names, list) else None


def _torchvision_download(root: Path) -> None:
    from torchvision.datasets import CIFAR10

    CIFAR10(str(root), train=True, download=True)  # the one archive holds both splits
