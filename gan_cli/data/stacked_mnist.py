"""Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN): three MNIST digits as the red, green and blue
channels of one 3x28x28 image, so the data has 10^3 = 1000 modes, one per digit triple.

Sample i stacks the digits at three indices drawn uniformly (with replacement) from the split by
dataset.seed: the same dataset on every machine. Its label is the triple read as a number,
100 * red digit + 10 * green digit + blue digit (1000 classes).
"""

import torch

from gan_cli.data.mnist import load_mnist

NUM_MODES = 1000


def stack_indices(pool: int, num_samples: int, seed: int) -> torch.Tensor:
    """Which of `pool` digits go into each stack: int64 (num_samples, 3), fixed by `seed`."""
    return torch.randint(pool, (num_samples, 3), generator=torch.Generator().manual_seed(seed))


def triple_labels(digits: torch.Tensor) -> torch.Tensor:
    """Digit triples (N, 3) as one number each, 100 * red + 10 * green + blue (N,)."""
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def load_stacked_mnist(root: str, split: str, download: bool, num_samples: int, seed: int):
    """uint8 stacks (num_samples, 3, 28, 28) of MNIST digits and their labels 0..999."""
    images, labels = load_mnist(root, split, download)
    index = stack_indices(len(images), num_samples, seed)
    return images[index, 0], triple_labels(labels[index])  # channel c of stack i: digit index[i, c]
