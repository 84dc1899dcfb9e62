"""Which suite computes a list of metric names: Stacked MNIST's modes, or the MNIST metrics.
Used by training's periodic evaluation and by gan-eval."""

import torch

from gan_cli.metrics.stacked import IMAGE_SHAPE, NAME, StackedModesSuite
from gan_cli.metrics.suite import MetricSuite


def build_suite(names: list[str], n: int, seed: int, data_root: str, device: torch.device):
    """The suite that computes the metrics `names`: Stacked MNIST's modes, or the MNIST metrics."""
    if NAME in names:
        return StackedModesSuite(n, seed, data_root, device)
    return MetricSuite(names, n, seed, data_root, device)


def metrics_image_shape(names: list[str]) -> tuple[int, int, int]:
    """The shape (C, H, W) of the images the metrics `names` score."""
    return IMAGE_SHAPE if NAME in names else MetricSuite.image_shape
