"""gan-eval features=inception: images scored by Inception-v3 (gan_cli.metrics.inception) against real
images of the checkpoint's dataset, or of ref_images=<folder or .npz>.

The real images are 2n of a fixed permutation of the real set, the same on every machine and for
every seed: the first n are the reference, the next n the real-data floor (real images that no
generator made, against the same reference), so every dataset has a floor, whether it has a test
split or not. Their features are cached like the MNIST reference (gan_cli.metrics.reference), named
by the weights file's SHA-256, the real data and n; the floor values beside them.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from omegaconf import OmegaConf

from gan_cli.data import DATASETS, is_vector_dataset
from gan_cli.data.image_files import ImageFiles, decode
from gan_cli.errors import GanError
from gan_cli.metrics.evaluator import Scores
from gan_cli.metrics.image_files import read_images
from gan_cli.metrics.inception import inception_scores, load_inception
from gan_cli.metrics.reference import SUBSET_SEED, cache_dir, load_or_compute
from gan_cli.metrics.suite import FeatureSuite, cached_floor, compute_metrics, evaluation_problems

log = logging.getLogger(__name__)

# Dataset keys that say where and how the files are read, not which images they are: left out of the cache key.
READING_KEYS = ("root", "download", "workers", "memory_budget_mb")


@dataclass
class RealImages:
    """A real image set: `load(count)` gives the first `count` of its fixed permutation, uint8 (count, C, H, W)."""

    name: str  # in the table: `cifar10/train`, or the ref_images path
    key: str  # in cache file names: everything the images depend on
    load: Callable[[int], torch.Tensor]


def dataset_images(dataset: dict, data_root: str) -> RealImages:
    """The images of a checkpoint's dataset config, read from `data_root` (like the MNIST reference)
    rather than the training machine's dataset.root; never downloaded."""
    name = dataset.get("name")
    if name not in DATASETS or is_vector_dataset(name):
        raise GanError(f"features=inception compares with real images, and the checkpoint's dataset={name} has none")
    cfg = OmegaConf.create({**dataset, **({"root": data_root, "download": False} if "root" in dataset else {})})
    which = {key: value for key, value in dataset.items() if key not in READING_KEYS}
    digest = hashlib.sha256(json.dumps(which, sort_keys=True, default=str).encode()).hexdigest()[:16]
    split = dataset.get("split", "all")
    return RealImages(f"{name}/{split}", f"{name}-{split}-{digest}", lambda count: _dataset_first(cfg, count))


def file_images(path: Path) -> RealImages:
    """The images of a folder of PNGs or an .npz, keyed by their pixels (a changed file is a new key)."""
    images = read_images(path)
    digest = hashlib.sha256(str(tuple(images.shape)).encode() + images.numpy().tobytes()).hexdigest()[:16]
    return RealImages(str(path), f"files-{digest}", lambda count: _first(images, count, f"ref_images={path}"))


def _order(total: int) -> torch.Tensor:
    return torch.randperm(total, generator=torch.Generator().manual_seed(SUBSET_SEED))


def _first(images: torch.Tensor, count: int, source: str) -> torch.Tensor:
    if len(images) < count:
        raise GanError(
            f"{source} holds {len(images)} images, and n={count // 2} needs {count}: n for the reference and n more "
            "for the real-data floor; lower n"
        )
    return images[_order(len(images))[:count]]


def _dataset_first(cfg, count: int) -> torch.Tensor:
    data = DATASETS[cfg.name](cfg)
    source = f"dataset={cfg.name}"
    if not isinstance(data, ImageFiles):
        return _first(data.samples, count, source)
    # Files: decode only the images needed, in the fixed order, skipping unreadable ones.
    images = []
    for index in _order(len(data.files)).tolist():
        if len(images) == count:
            break
        try:
            images.append(decode(data.files[index], data.image_size, data.channels, data.crop))
        except (OSError, ValueError) as err:
            log.warning(f"skipping {data.files[index]}: cannot read it as an image ({err})")
    return _first(torch.stack(images) if images else torch.empty(0), count, source)


class InceptionSuite(FeatureSuite):
    """Scores sets of n images (any size, 1 or 3 channels) with feature metrics on Inception-v3's pool
    features against n images of `real`; the floor is n other images of `real`."""

    has_posteriors = False

    def __init__(self, names: list[str], n: int, seed: int, real: RealImages, weights: str, device: torch.device):
        problems = evaluation_problems(names, n, None, features="inception")
        if problems:
            raise GanError("; ".join(problems))
        self.names, self.n, self.seed = list(names), n, seed
        self.network = load_inception(weights, device)
        self.reference_name, self.floor_name = real.name, f"other {real.name}"
        key = f"inception-{self.network.sha256[:16]}_{real.key}"
        reference, floor_images = load_or_compute(
            cache_dir() / f"{key}_{n}.pt", lambda: self._real_features(real), lambda d: (d["reference"], d["floor"])
        )
        self.reference = Scores(reference, probs=None)
        self.floor = cached_floor(
            key, n, self.names, seed, lambda: compute_metrics(self.names, Scores(floor_images, None), self.reference, seed)
        )

    def _real_features(self, real: RealImages) -> dict[str, torch.Tensor]:
        """Features (n, 2048) of the reference images and of the floor's, from 2n real images."""
        log.info(f"Scoring {2 * self.n} images of {real.name} with Inception-v3 for the reference and the floor")
        features = self.score(real.load(2 * self.n)).features
        return {"reference": features[: self.n], "floor": features[self.n :]}

    def score(self, images: torch.Tensor) -> Scores:
        return inception_scores(self.network, images)
