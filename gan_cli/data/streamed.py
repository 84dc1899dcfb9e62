"""A batch source for image datasets too large for memory: a DataLoader decodes them in workers.

Same contract as TensorBatchSource: endless batches `(x, y)` with x float (B, C, H, W) in [-1, 1] on
the device, `shape`, `batch_size`, `len()`, and a state for resuming. The shuffling is done here,
not by the DataLoader: each epoch is a permutation drawn from a CPU generator, and the loader reads
it from the current position on. The state (epoch, position, the epoch's order, the generator) is
all the data order depends on, so a resumed run sees exactly the batches it would have seen; only
the batches the workers had prefetched are decoded again.
"""

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gan_cli.data.source import DataShape

PREFETCH_BATCHES = 4  # per worker


class _OrderFrom(Sampler):
    """The indices of `order` from `start` on; read anew each time the loader starts an iteration."""

    def __init__(self, order: torch.Tensor):
        self.order, self.start = order, 0

    def __iter__(self):
        return iter(self.order[self.start :].tolist())

    def __len__(self) -> int:
        return len(self.order) - self.start


class StreamedBatchSource:
    def __init__(
        self,
        dataset: Dataset,  # item i: (uint8 (C, H, W), index of the sample actually read)
        sample_shape: tuple[int, int, int],
        labels: torch.Tensor | None,  # int64 (N,)
        num_classes: int,
        batch_size: int,
        device: torch.device,
        seed: int,
        workers: int,
    ):
        self.dataset = dataset
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size = batch_size
        self.device = device
        self.shape = DataShape(tuple(sample_shape), num_classes)
        self.rng = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self.sampler = _OrderFrom(self._new_order())
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=workers,
            pin_memory=device.type == "cuda",  # page-locked host memory: faster, asynchronous copies
            persistent_workers=workers > 0,  # one set of workers for the whole run, not one per epoch
            prefetch_factor=PREFETCH_BATCHES if workers > 0 else None,
        )
        self.batches = None  # the loader's iterator over the current epoch, from `position` on

    def __len__(self) -> int:
        return len(self.dataset)

    def _new_order(self) -> torch.Tensor:
        return torch.randperm(len(self.dataset), generator=self.rng)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > len(self):
            self.epoch += 1
            self.position = 0
            self.sampler.order = self._new_order()
            self.batches = None
        if self.batches is None:
            self.sampler.start = self.position
            self.batches = iter(self.loader)
        images, index = next(self.batches)  # uint8 (B, C, H, W), int64 (B,)
        self.position += self.batch_size
        x = images.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        y = self.labels[index.to(self.device)] if self.labels is not None else None
        return x, y

    def head(self, n: int) -> torch.Tensor:
        """The dataset's first n images (not the training order, which they do not change), in [-1, 1]
        on the training device: (n, C, H, W)."""
        images = torch.stack([self.dataset[i][0] for i in range(n)]) if n else torch.zeros(0, *self.shape.sample_shape)
        return images.to(self.device).float().div_(127.5).sub_(1.0)

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "order": self.sampler.order,
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.position = state["position"]
        self.sampler.order = state["order"]
        self.rng.set_state(state["rng"])
        self.batches = None  # the next batch is read from the restored position
