"""Real MNIST images scored by the evaluator, cached on disk: the reference of every metric.

Each (split, sample count) is scored once per evaluator and kept in the cache folder
($GAN_CLI_CACHE, by default ~/.cache/gan_cli) as features, posteriors and labels. The images are
the first n of a fixed permutation of the split, the same on every machine and for every seed, so
two runs (or two tools) are always compared against the same real images.
"""

import logging
import os
import pickle
import zipfile
from pathlib import Path

import torch

from gan_cli.data.mnist import SPLIT_SIZES, load_mnist
from gan_cli.errors import GanError
from gan_cli.files import atomic_write
from gan_cli.metrics.evaluator import EVALUATOR_SHA256, MNISTEvaluator, Scores, score_images
from gan_cli.sampling import from_uint8

log = logging.getLogger(__name__)

SUBSET_SEED = 0  # fixes which real images form the reference; never the user's seed


def cache_dir() -> Path:
    return Path(os.environ.get("GAN_CLI_CACHE", "~/.cache/gan_cli")).expanduser()


def reference_scores(evaluator: MNISTEvaluator, data_root: str, split: str, n: int) -> Scores:
    """Evaluator scores (with true labels) of n images of an MNIST split, from the cache when there."""
    if not 0 < n <= SPLIT_SIZES[split]:
        raise GanError(f"n={n}: the MNIST {split} split has {SPLIT_SIZES[split]} images; use 1 to {SPLIT_SIZES[split]}")
    path = cache_dir() / f"mnist_{split}_{n}_{EVALUATOR_SHA256[:16]}.pt"
    cached = _read_cache(path)
    if cached is not None:
        return cached
    log.info(f"Scoring {n} MNIST {split} images for the reference (cached in {path})")
    try:
        images, labels = load_mnist(data_root, split, download=False)
    except GanError as err:
        raise GanError(f"the metrics compare with real MNIST, which was not found: {err}") from err
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(SUBSET_SEED))[:n]
    scores = score_images(evaluator, from_uint8(images[chosen]))
    scores.labels = labels[chosen]
    try:
        atomic_write(path, lambda f: torch.save(vars(scores), f))
    except OSError as err:  # a read-only home: still correct, only slower next time
        log.warning(f"could not cache the reference in {path} ({err.strerror or err}); set GAN_CLI_CACHE to a writable folder")
    return scores


def _read_cache(path: Path) -> Scores | None:
    """The cached scores, or None when absent or unreadable (then they are computed again)."""
    if not path.is_file():
        return None
    try:
        return Scores(**torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, EOFError, OSError, TypeError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        log.warning(f"ignoring the unreadable reference cache {path} ({err}); computing it again")
        return None
