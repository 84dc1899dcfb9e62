"""Real MNIST images scored by the evaluator, cached on disk: the reference of every metric.

Each (split, sample count) is scored once per evaluator and kept in the cache folder
($GAN_CLI_CACHE, by default ~/.cache/gan_cli) as features, posteriors and labels. The images are
the first n of a fixed permutation of the split, the same on every machine and for every seed, so
two runs (or two tools) are always compared against the same real images.

`load_or_compute` is the cache itself, also used for the real-data floor and Inception features:
a file is named by everything its contents depend on, written atomically, and an unreadable one
is ignored and computed again.
"""

import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Callable, TypeVar

import torch

from gan_cli.data.mnist import SPLIT_SIZES, load_mnist
from gan_cli.errors import GanError
from gan_cli.files import atomic_write
from gan_cli.metrics.evaluator import EVALUATOR_SHA256, MNISTEvaluator, Scores, score_images
from gan_cli.sampling.files import from_uint8

log = logging.getLogger(__name__)

SUBSET_SEED = 0  # fixes which real images form the reference; never the user's seed

T = TypeVar("T")


def cache_dir() -> Path:
    return Path(os.environ.get("GAN_CLI_CACHE", "~/.cache/gan_cli")).expanduser()


def reference_scores(evaluator: MNISTEvaluator, data_root: str, split: str, n: int) -> Scores:
    """Evaluator scores (with true labels) of n images of an MNIST split, from the cache when there."""
    if not 0 < n <= SPLIT_SIZES[split]:
        raise GanError(f"n={n}: the MNIST {split} split has {SPLIT_SIZES[split]} images; use 1 to {SPLIT_SIZES[split]}")
    path = cache_dir() / f"mnist_{split}_{n}_{EVALUATOR_SHA256[:16]}.pt"
    return load_or_compute(path, lambda: vars(_score_split(evaluator, data_root, split, n)), lambda d: Scores(**d))


def _score_split(evaluator: MNISTEvaluator, data_root: str, split: str, n: int) -> Scores:
    log.info(f"Scoring {n} MNIST {split} images for the reference")
    images, labels = mnist_subset(data_root, split, n)
    scores = score_images(evaluator, images)
    scores.labels = labels
    return scores


def mnist_subset(data_root: str, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The n real images of an MNIST split every metric uses (the first n of a fixed permutation):
    float (n, 1, 28, 28) in [-1, 1] and their labels int64 (n,)."""
    try:
        images, labels = load_mnist(data_root, split, download=False)
    except GanError as err:
        raise GanError(f"the metrics compare with real MNIST, which was not found: {err}") from err
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(SUBSET_SEED))[:n]
    return from_uint8(images[chosen]), labels[chosen]


def load_or_compute(path: Path, compute: Callable[[], dict], rebuild: Callable[[dict], T]) -> T:
    """`rebuild` of the dict (tensors and plain values) cached in `path`; when absent or unreadable,
    of `compute()`'s, which is then cached. `rebuild` raises TypeError, KeyError or ValueError for a
    dict it cannot use: such a file is ignored like a damaged one."""
    if path.is_file():
        try:
            return rebuild(torch.load(path, map_location="cpu", weights_only=True))
        except (
            RuntimeError, EOFError, OSError, TypeError, KeyError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError
        ) as err:
            log.warning(f"ignoring the unreadable cache file {path} ({err}); computing it again")
    contents = compute()
    try:
        atomic_write(path, lambda f: torch.save(contents, f))
        log.info(f"Cached in {path}")
    except GanError as err:  # a read-only home: still correct, only slower next time
        log.warning(f"{err}; set GAN_CLI_CACHE to a writable folder")
    return rebuild(contents)
