"""Datasets of several image domains, for unpaired translation (CycleGAN, StarGAN) and for a plain GAN
on all of them pooled.

dataset=mnist_domains derives its domains from MNIST (gan_cli.data.domain_transforms): a seeded
permutation of the 60,000 training digits is cut into one equal, disjoint part per domain, and part k
goes through domain k's transform, so no digit is ever seen in two domains (no pair). The 10,000 test
digits go through every transform: the true counterpart of each test image is known.
dataset=unpaired reads two folders of images per split, in the layout the CycleGAN datasets ship
(trainA/ trainB/ testA/ testB/); its domains are A and B, without labels or pairs.
dataset=celeba with dataset.domains=[Black_Hair, Blond_Hair, ...] makes CelebA attributes domains
(gan_cli.data.celeba.celeba_domain_files): the faces of dataset.split with exactly one of the
attributes train, those of the test split are the test set (without labels or pairs).

Training data become a DomainBatchSource: the pooled set (what StarGAN and a plain GAN read) and one
stream per domain (what CycleGAN reads), each with its own order. Test data become a DomainTestSet.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from gan_cli.data.celeba import celeba_domain_files
from gan_cli.data.domain_transforms import domain_channels, to_domain
from gan_cli.data.image_files import (
    ImageFiles, dataset_folder, decode_into_memory, image_files_under, no_image_files, usable_workers
)
from gan_cli.data.mnist import check_mnist_files, load_mnist
from gan_cli.data.source import DataShape, TensorBatchSource
from gan_cli.errors import GanError

UNPAIRED_DOMAINS = ["A", "B"]
UNPAIRED_USAGE = "dataset=unpaired needs dataset.path=<a folder holding trainA/ trainB/ testA/ testB/> (the CycleGAN datasets' layout)"


@dataclass
class DomainData:
    """Training images of each domain, in memory."""

    domains: list[str]
    parts: list[torch.Tensor]  # part k: uint8 (N_k, C, H, W), the images of domains[k]


@dataclass
class DomainTestSet:
    """The test images of every domain: the truth translations are measured against."""

    domains: list[str]
    images: dict[str, torch.Tensor]  # domain -> uint8 (N, C, H, W) (N per domain; the same N when paired)
    labels: torch.Tensor | None  # int64 (N,): the digit of images[d][i] in every domain d; None without labels
    paired: bool  # images[a][i] and images[b][i] show the same thing (the same digit through two transforms)


# --- MNIST's derived domains -------------------------------------------------------------------------


def split_indices(count: int, parts: int, seed: int) -> torch.Tensor:
    """Disjoint equal parts of range(count), fixed by `seed`: int64 (parts, count // parts), row k the
    indices of part k (the count % parts images left over are in none)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    size = count // parts
    return order[: parts * size].view(parts, size)


def load_mnist_domains(cfg: DictConfig) -> DomainData:
    """MNIST's training digits split over cfg.domains, part k in domain k (uint8 (N / K, C, 28, 28) each)."""
    images, _ = load_mnist(cfg.root, "train", cfg.download)
    channels = domain_channels(cfg.domains)
    parts = split_indices(len(images), len(cfg.domains), cfg.seed)
    transformed = [to_domain(images[index], name, channels, cfg.seed) for index, name in zip(parts, cfg.domains)]
    return DomainData(list(cfg.domains), transformed)


def check_mnist_domains_files(cfg: DictConfig) -> None:
    """Before a run: both MNIST splits, the training digits for the domains and the test digits for
    their evaluation (see mnist.check_mnist_files)."""
    for split in ("train", "test"):
        check_mnist_files(cfg.root, split, cfg.download)


def _mnist_test_set(cfg: DictConfig) -> DomainTestSet:
    images, labels = load_mnist(cfg.root, "test", cfg.download)
    channels = domain_channels(cfg.domains)
    transformed = {name: to_domain(images, name, channels, cfg.seed) for name in cfg.domains}
    return DomainTestSet(list(cfg.domains), transformed, labels, paired=True)


# --- two folders of images per split (CycleGAN's layout) ---------------------------------------------


def unpaired_folder(path: str | None, split: str, domain: str) -> Path:
    """<dataset.path>/<split><domain> (trainA, testB, ...), which must exist."""
    folder = dataset_folder(path, UNPAIRED_USAGE) / f"{split}{domain}"
    if not folder.is_dir():
        raise GanError(
            f"dataset.path={path}: {folder} is missing; dataset=unpaired reads one folder of images per split and "
            f"domain there: {', '.join(f'{s}{d}/' for s in ('train', 'test') for d in UNPAIRED_DOMAINS)}"
        )
    return folder


def check_unpaired_folders(cfg: DictConfig) -> None:
    """Before a run, decoding nothing: trainA/ and trainB/ exist under dataset.path and hold an image
    each (by extension). The test folders are checked when the test set is read."""
    for domain in UNPAIRED_DOMAINS:
        folder = unpaired_folder(cfg.path, "train", domain)
        if next(image_files_under(folder), None) is None:
            raise no_image_files(cfg.path, folder)


def _unpaired_images(cfg: DictConfig, split: str) -> list[torch.Tensor]:
    """The decoded images of <split>A and <split>B: uint8 (N_A, C, S, S) and (N_B, C, S, S)."""
    images = []
    for domain in UNPAIRED_DOMAINS:
        folder = unpaired_folder(cfg.path, split, domain)
        files = sorted(image_files_under(folder))
        if not files:
            raise no_image_files(cfg.path, folder)
        data = ImageFiles(folder, files, None, 0, cfg.image_size, cfg.channels, cfg.crop)
        images.append(decode_into_memory(data, usable_workers(cfg.workers))[0])
    return images


def load_unpaired(cfg: DictConfig) -> DomainData:
    return DomainData(list(UNPAIRED_DOMAINS), _unpaired_images(cfg, "train"))


def _unpaired_test_set(cfg: DictConfig) -> DomainTestSet:
    images = dict(zip(UNPAIRED_DOMAINS, _unpaired_images(cfg, "test")))
    return DomainTestSet(list(UNPAIRED_DOMAINS), images, None, paired=False)


# --- CelebA's attributes as domains -------------------------------------------------------------------


def _celeba_images(cfg: DictConfig, split: str) -> list[torch.Tensor]:
    """The decoded faces of `split` in each of cfg.domains: uint8 (N_k, 3, S, S) for domain k. Always
    decoded into memory (the domain streams shuffle tensors); refused when over dataset.memory_budget_mb."""
    folder, parts = celeba_domain_files(cfg.root, split, list(cfg.domains), cfg.download)
    count, per_image = sum(map(len, parts)), 3 * cfg.image_size**2
    needed_mb = count * per_image / 2**20
    if needed_mb > cfg.memory_budget_mb:
        raise GanError(
            f"dataset.domains={list(cfg.domains)}: the {count} faces of CelebA's {split} split in these domains take "
            f"{needed_mb:.0f} MB decoded at dataset.image_size={cfg.image_size}, over dataset.memory_budget_mb="
            f"{cfg.memory_budget_mb:g}; domains are held in memory, never streamed: raise dataset.memory_budget_mb "
            "(when the memory is there) or lower dataset.image_size"
        )
    workers = usable_workers(cfg.workers)
    return [
        decode_into_memory(ImageFiles(folder, files, None, 0, cfg.image_size, 3, cfg.crop), workers)[0] for files in parts
    ]


def load_celeba_domains(cfg: DictConfig) -> DomainData:
    return DomainData(list(cfg.domains), _celeba_images(cfg, cfg.split))


def _celeba_test_set(cfg: DictConfig) -> DomainTestSet:
    """CelebA's test split, in the same domains: no labels, no pairs."""
    if cfg.get("domains") is None:
        raise GanError("dataset=celeba has no domains to translate between unless dataset.domains names two or more "
                       "attributes, for example dataset.domains=[Black_Hair, Blond_Hair, Brown_Hair]")
    images = dict(zip(cfg.domains, _celeba_images(cfg, "test")))
    return DomainTestSet(list(cfg.domains), images, None, paired=False)


TEST_SETS = {"mnist_domains": _mnist_test_set, "unpaired": _unpaired_test_set, "celeba": _celeba_test_set}


def domain_test_set(cfg: DictConfig) -> DomainTestSet:
    """The test images of the domains of dataset config `cfg` (mnist_domains, unpaired, or celeba with
    dataset.domains)."""
    if cfg.name not in TEST_SETS:
        raise GanError(f"dataset={cfg.name} has no domains to translate between; use dataset=mnist_domains or "
                       "dataset=unpaired (or dataset=celeba with dataset.domains)")
    return TEST_SETS[cfg.name](cfg)


# --- the batch source ---------------------------------------------------------------------------------


class DomainBatchSource:
    """Endless shuffled batches of several domains' training images, in [-1, 1] on the device.

    next() draws from the pooled set (every domain shuffled together) and gives each image's domain
    index as its label; next_from(k) draws from domain k alone, in an order of its own. The images are
    stored once, domain after domain: each domain's stream shuffles a view of the pooled tensor. Under
    torchrun every process draws the same global batches and trains on its rows of them, pooled or per
    domain (gan_cli.training.distributed.BatchShare).
    """

    def __init__(self, data: DomainData, batch_size: int, device: torch.device, seed: int):
        for name, part in zip(data.domains, data.parts):
            if batch_size > len(part):
                raise GanError(f"train.batch_size={batch_size} is larger than domain {name} ({len(part)} images); lower it")
        self.domains = list(data.domains)
        sizes = [len(part) for part in data.parts]
        domain = torch.cat([torch.full((size,), k, dtype=torch.long) for k, size in enumerate(sizes)])  # (N,)
        self.pooled = TensorBatchSource(torch.cat(data.parts), domain, len(self.domains), batch_size, device, seed)
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        self.streams = [
            TensorBatchSource(self.pooled.samples[start : start + size], None, 0, batch_size, device, stream_seed)
            for start, size, stream_seed in zip(starts, sizes, _stream_seeds(seed, len(sizes)))
        ]
        # Image 0 of every domain, then image 1 of every domain, ...: head(n)'s order, so that a grid
        # of real images shows all the domains.
        position = torch.cat([torch.arange(size) for size in sizes])
        self.listing = torch.argsort(position * len(sizes) + domain).to(device)  # (N,) indices into the pooled set

    @property
    def shape(self) -> DataShape:
        return self.pooled.shape  # (C, H, W), num_classes = the number of domains

    @property
    def device(self) -> torch.device:
        return self.pooled.device

    @property
    def batch_size(self) -> int:
        return self.pooled.batch_size

    def __len__(self) -> int:
        """The training images of all domains."""
        return len(self.pooled)

    @property
    def batches_per_epoch(self) -> int:
        return self.pooled.batches_per_epoch

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of the pooled set: images (B, C, H, W) in [-1, 1], their domain indices int64 (B,)."""
        return self.pooled.next()

    def next_from(self, domain: int) -> tuple[torch.Tensor, None]:
        """A batch of domain `domain` (an index into .domains) alone: images (B, C, H, W) in [-1, 1], None."""
        return self.streams[domain].next()

    def head(self, n: int) -> torch.Tensor:
        """n images of the pooled set in its listing order (the domains in turn), (n, C, H, W) in [-1, 1]."""
        return self.pooled.samples[self.listing[:n]].float().div(127.5).sub(1.0)

    def state_dict(self) -> dict:
        """The pooled order's state (the keys of a TensorBatchSource's), and every domain's under `domains`."""
        return {**self.pooled.state_dict(), "domains": [stream.state_dict() for stream in self.streams]}

    def load_state_dict(self, state: dict) -> None:
        self.pooled.load_state_dict(state)
        for stream, stream_state in zip(self.streams, state["domains"], strict=True):
            stream.load_state_dict(stream_state)


def _stream_seeds(seed: int, count: int) -> list[int]:
    """Seeds of the per-domain orders, drawn from `seed`: no domain's order repeats the pooled one's
    (seeded with `seed`) or the training loop's latents' (seed + 1)."""
    return torch.randint(2**62, (count,), generator=torch.Generator().manual_seed(seed)).tolist()
