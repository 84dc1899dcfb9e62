"""Datasets -> a batch source of (samples on the device, labels): images in [-1, 1] or toy vectors.

DATASETS is the registry, keyed by dataset.name. A loader returns the data held in memory
(InMemoryData: uint8 images or float vectors), for datasets of image files an ImageFiles list
that `file_batch_source` decodes into memory or streams, by dataset.memory_budget_mb, or for the
datasets of several domains (mnist_domains, unpaired, celeba with dataset.domains) their images
per domain (DomainData), drawn by a DomainBatchSource.
"""

import logging
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from gan_cli.data.celeba import celeba_files, check_celeba_files, check_domain_keys
from gan_cli.data.cifar10 import load_cifar10
from gan_cli.data.domains import (
    DomainBatchSource, DomainData, check_mnist_domains_files, check_unpaired_folders, load_celeba_domains,
    load_mnist_domains, load_unpaired
)
from gan_cli.data.fake import make_fake_images
from gan_cli.data.image_files import ImageFiles, check_batch_size, check_image_folder, file_batch_source, scan_image_folder
from gan_cli.data.mnist import check_mnist_files, load_mnist
from gan_cli.data.source import DataShape, TensorBatchSource
from gan_cli.data.stacked_mnist import NUM_MODES, load_stacked_mnist
from gan_cli.data.streamed import StreamedBatchSource
from gan_cli.data.toy import MIXTURES, load_toy
from gan_cli.errors import GanError

__all__ = [
    "DATASETS", "DataShape", "TensorBatchSource", "StreamedBatchSource", "DomainBatchSource", "build_batch_source",
    "check_dataset_files", "is_vector_dataset",
]

log = logging.getLogger(__name__)

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
]


@dataclass
class InMemoryData:
    samples: torch.Tensor  # uint8 images (N, C, H, W) or float vectors (N, D)
    labels: torch.Tensor | None  # int64 (N,)
    num_classes: int
    class_names: list[str] | None = None


def _mnist(cfg: DictConfig) -> InMemoryData:
    return InMemoryData(*load_mnist(cfg.root, cfg.split, cfg.download), 10)


def _fashion_mnist(cfg: DictConfig) -> InMemoryData:
    return InMemoryData(*load_mnist(cfg.root, cfg.split, cfg.download, "fashion_mnist"), 10, FASHION_MNIST_CLASSES)


def _cifar10(cfg: DictConfig) -> InMemoryData:
    images, labels, class_names = load_cifar10(cfg.root, cfg.split, cfg.download)
    return InMemoryData(images, labels, 10, class_names)


def _stacked_mnist(cfg: DictConfig) -> InMemoryData:
    return InMemoryData(*load_stacked_mnist(cfg.root, cfg.split, cfg.download, cfg.num_samples, cfg.seed), NUM_MODES)


def _fake(cfg: DictConfig) -> InMemoryData:
    images, labels = make_fake_images(cfg.num_samples, cfg.channels, cfg.image_size, cfg.num_classes, cfg.seed)
    return InMemoryData(images, labels, cfg.num_classes)


def _toy(cfg: DictConfig) -> InMemoryData:
    return InMemoryData(load_toy(cfg), None, 0)


def _image_folder(cfg: DictConfig) -> ImageFiles:
    folder, files, labels, class_names = scan_image_folder(cfg.path)
    if class_names:
        _log_classes(class_names)
    return ImageFiles(folder, files, labels, len(class_names or ()), cfg.image_size, cfg.channels, cfg.crop)


def _celeba(cfg: DictConfig) -> ImageFiles | DomainData:
    """The faces of dataset.split (labelled by dataset.attribute), or with dataset.domains the faces of
    each domain (gan_cli.data.domains)."""
    if cfg.domains is not None:
        check_domain_keys(cfg.attribute, cfg.domains)
        return load_celeba_domains(cfg)
    return celeba_files(cfg.root, cfg.split, cfg.attribute, cfg.image_size, cfg.crop, cfg.download)


DATASETS = {
    "mnist": _mnist,
    "fashion_mnist": _fashion_mnist,
    "cifar10": _cifar10,
    "celeba": _celeba,
    "image_folder": _image_folder,
    "stacked_mnist": _stacked_mnist,
    "mnist_domains": load_mnist_domains,
    "unpaired": load_unpaired,
    "fake": _fake,
    **{name: _toy for name in MIXTURES},
}


# Datasets read from MNIST's IDX files -> which MNIST (mnist.FOLDERS): Stacked MNIST is built from MNIST.
IDX_DATASETS = {"mnist": "mnist", "fashion_mnist": "fashion_mnist", "stacked_mnist": "mnist"}


def check_dataset_files(cfg: DictConfig) -> None:
    """Cheap checks of the dataset's files, made before the run directory exists (each message names
    its key): the IDX headers of MNIST's files that are present; that an image folder (or each
    training folder of dataset=unpaired) holds an image; that CelebA's attribute file, when present,
    names the attributes of dataset.attribute or dataset.domains in its header. Everything else, and
    missing files (downloaded when dataset.download allows), is for the loader."""
    if cfg.name in IDX_DATASETS:
        check_mnist_files(cfg.root, cfg.split, cfg.download, IDX_DATASETS[cfg.name])
    elif cfg.name == "image_folder":
        check_image_folder(cfg.path)
    elif cfg.name == "mnist_domains":
        check_mnist_domains_files(cfg)
    elif cfg.name == "unpaired":
        check_unpaired_folders(cfg)
    elif cfg.name == "celeba":
        check_celeba_files(cfg.root, cfg.attribute, cfg.domains)


def is_vector_dataset(name: str) -> bool:
    """Whether dataset.name gives vectors (the toy mixtures) rather than images."""
    return name in MIXTURES


def build_batch_source(
    cfg: DictConfig, batch_size: int, device: torch.device, seed: int
) -> TensorBatchSource | StreamedBatchSource | DomainBatchSource:
    if cfg.name not in DATASETS:
        raise GanError(f"dataset.name={cfg.name!r} is not a known dataset; use one of {', '.join(DATASETS)}")
    data = DATASETS[cfg.name](cfg)
    if isinstance(data, DomainData):
        return DomainBatchSource(data, batch_size, device, seed)
    if isinstance(data, ImageFiles):
        return file_batch_source(data, batch_size, device, seed, cfg.workers, cfg.memory_budget_mb)
    if data.class_names:
        _log_classes(data.class_names)
    check_batch_size(batch_size, len(data.samples))
    return TensorBatchSource(data.samples, data.labels, data.num_classes, batch_size, device, seed)


def _log_classes(class_names: list[str]) -> None:
    """The label -> class name map, in train.log: how to read labels (and gan-sample's label=k)."""
    log.info("Classes: " + ", ".join(f"{k} {name}" for k, name in enumerate(class_names)))
