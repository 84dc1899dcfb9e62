"""Tiny datasets written in the real on-disk formats (IDX, CIFAR-10's pickled batches, CelebA's
folder and attribute files, image folders), so the loaders are tested without any download."""

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_cli.data.celeba import ATTRIBUTE_FILE, IMAGES, PARTITION_FILE
from gan_cli.data.cifar10 import SPLIT_FILES
from gan_cli.data.mnist import FILES

CELEBA_ATTRIBUTES = ["5_o_Clock_Shadow", "Eyeglasses", "Smiling"]  # the real file has 40


class Python2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2 strings (SHORT_BINSTRING / BINSTRING), as in the real CIFAR-10
    batches, which Python 2 pickled: keys, file names, the arrays' raw data and their dtype codes are
    such strings there."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_string(self, obj: bytes | str) -> None:
        if isinstance(obj, str):
            obj = obj.encode("latin-1")
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_python2_string


def python2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def idx_bytes(array: torch.Tensor) -> bytes:
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.numpy().tobytes()


def write_idx_dataset(root: Path, folder: str, n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """<root>/<folder>/raw/ with both splits of n random 28x28 images; returns the train split.
    Label k images have mean brightness about 6k, so tests can check labels and images stay paired."""
    g = torch.Generator().manual_seed(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for split, (images_name, labels_name) in FILES.items():
        labels = torch.arange(n, dtype=torch.uint8) % 10
        images = (torch.rand(n, 28, 28, generator=g) * 12 + 6 * labels.view(-1, 1, 1)).to(torch.uint8)
        (raw / images_name).write_bytes(idx_bytes(images))
        (raw / labels_name).write_bytes(idx_bytes(labels))
        if split == "train":
            train = images, labels
    return train


def write_cifar10(root: Path, per_batch: int = 6) -> torch.Tensor:
    """<root>/cifar-10-batches-py/ with tiny batches pickled as Python 2 did the real ones (protocol 2,
    byte strings), and batches.meta as Python 3 pickles bytes (through _codecs.encode); returns the
    train images (N, 3, 32, 32) in file order."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = []
    for split, names in SPLIT_FILES.items():
        for b, name in enumerate(names):
            data = np.zeros((per_batch, 3, 32, 32), dtype=np.uint8)
            data[:, 0] = 200  # red plane: checks the R, G, B plane order
            data[:, 1] = np.arange(per_batch)[:, None, None] * 10 + b  # green: which image and batch
            data[:, 2, :16] = 50  # blue, top half only: checks the row order within a plane
            batch = {
                b"batch_label": f"{name} of 5".encode(),
                b"labels": [(i + b) % 10 for i in range(per_batch)],
                b"data": data.reshape(per_batch, 3072),
                b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
            }
            (folder / name).write_bytes(python2_pickle(batch))
            if split == "train":
                train.append(torch.from_numpy(data))
    meta = {b"label_names": [name.encode() for name in ("airplane", "automobile", "bird", "cat", "deer",
                                                          "dog", "frog", "horse", "ship", "truck")]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return torch.cat(train)


def write_celeba(
    root: Path, n: int = 9, extra: dict[str, list[bool]] | None = None,
    faces: list[tuple[int, int, int]] | None = None,
) -> Path:
    """<root>/celeba/ with n 178x218 JPEGs (a bright centre on a dark frame), the partition file
    (train, valid, test in turn) and an attribute file where image i smiles when i is even. `extra`
    adds attribute columns after CELEBA_ATTRIBUTES (name -> whether each of the n images has it);
    `faces` gives each image's centre its own colour."""
    extra = extra or {}
    folder = root / "celeba"
    (folder / IMAGES).mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        image = np.full((218, 178, 3), 20, dtype=np.uint8)
        image[39:179, 19:159] = faces[i] if faces else (230, 180, 140)  # the centred 140x140 square
        Image.fromarray(image).save(folder / IMAGES / name, quality=95)
    (folder / PARTITION_FILE).write_text("".join(f"{name} {i % 3}\n" for i, name in enumerate(names)))
    rows = [
        f"{name} -1 {'1' if i % 4 == 0 else '-1'} {'1' if i % 2 == 0 else '-1'}"
        + "".join(f" {'1' if has[i] else '-1'}" for has in extra.values())
        for i, name in enumerate(names)
    ]
    header = " ".join(CELEBA_ATTRIBUTES + list(extra))
    (folder / ATTRIBUTE_FILE).write_text(f"{n}\n{header}\n" + "\n".join(rows) + "\n")
    return folder


def write_image(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype=np.uint8)).save(path)


def write_image_folder(root: Path, per_class: int = 4) -> Path:
    """root/{cats,dogs}/ with PNG and JPEG images of several sizes, plus one broken file and one
    that is not an image at all; returns root."""
    for k, (name, colour) in enumerate((("cats", (255, 0, 0)), ("dogs", (0, 0, 255)))):
        for i in range(per_class):
            suffix = ".png" if i % 2 else ".jpg"
            write_image(root / name / f"{i}{suffix}", (40 + 10 * i, 30), colour)
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)  # a PNG signature, then junk
    (root / "cats" / "notes.txt").write_text("not an image")
    return root
