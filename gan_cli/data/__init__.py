"""Datasets -> a batch source of (images in [-1, 1] on the device, labels)."""

import torch
from omegaconf import DictConfig

from gan_cli.data.fake import make_fake_images
from gan_cli.data.mnist import load_mnist
from gan_cli.data.source import ImageShape, TensorBatchSource
from gan_cli.errors import GanError

__all__ = ["ImageShape", "TensorBatchSource", "build_batch_source", "load_images"]


def load_images(cfg: DictConfig) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """The dataset named by cfg.name: uint8 images (N, C, H, W), int64 labels or None, class count."""
    if cfg.name == "mnist":
        images, labels = load_mnist(cfg.root, cfg.split, cfg.download)
        return images, labels, 10
    if cfg.name == "fake":
        images, labels = make_fake_images(
            cfg.num_samples, cfg.channels, cfg.image_size, cfg.num_classes, cfg.seed
        )
        return images, labels, cfg.num_classes
    raise GanError(f"dataset.name={cfg.name!r} is not a known dataset; use mnist or fake")


def build_batch_source(cfg: DictConfig, batch_size: int, device: torch.device, seed: int) -> TensorBatchSource:
    images, labels, num_classes = load_images(cfg)
    if batch_size > images.shape[0]:
        raise GanError(
            f"train.batch_size={batch_size} is larger than the dataset ({images.shape[0]} images); lower it"
        )
    return TensorBatchSource(images, labels, num_classes, batch_size, device, seed)
