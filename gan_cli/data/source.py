"""What a dataset looks like to the networks (DataShape), and the batch source for data that fits in
memory: one tensor on the training device.

Shuffling happens on the device with a dedicated generator, so there is no per-sample Python, no
worker process, and the whole data order is part of the checkpoint (exact resume).
"""

from dataclasses import dataclass

import torch

from gan_cli.errors import GanError


@dataclass(frozen=True)
class DataShape:
    """What the networks need to know about a dataset: the shape of one sample and the class count.

    Images have sample_shape (C, S, S) (square: every dataset is cropped to a square); vector data
    such as the toy mixtures have (D,).
    """

    sample_shape: tuple[int, ...]
    num_classes: int = 0  # 0 for unlabelled data

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3

    @property
    def channels(self) -> int:
        return self._image_shape()[0]

    @property
    def image_size(self) -> int:
        return self._image_shape()[1]

    def _image_shape(self) -> tuple[int, int, int]:
        if not self.is_image:
            raise GanError(f"the data are {self.describe()}, not images")
        return self.sample_shape

    def describe(self) -> str:
        if self.is_image:
            return f"images of {'x'.join(map(str, self.sample_shape))}"
        return f"{self.sample_shape[0]}-D points"

    def record(self) -> dict:
        """The checkpoint's `image_shape` entry. Images keep the form of the first checkpoints
        ({channels, image_size, num_classes}), so image checkpoints are unchanged; vector data write
        {sample_shape, num_classes}."""
        if self.is_image:
            return {"channels": self.channels, "image_size": self.image_size, "num_classes": self.num_classes}
        return {"sample_shape": list(self.sample_shape), "num_classes": self.num_classes}

    @classmethod
    def from_record(cls, record: dict) -> "DataShape":
        """The inverse of `record` (raises KeyError or TypeError for a malformed entry)."""
        if "sample_shape" in record:
            return cls(tuple(int(d) for d in record["sample_shape"]), int(record["num_classes"]))
        size = int(record["image_size"])
        return cls((int(record["channels"]), size, size), int(record["num_classes"]))


class TensorBatchSource:
    """Endless shuffled batches `(x, y)`: x float of shape (B, *sample_shape), y int64 (B,) or None.

    uint8 images are scaled from [0, 255] to [-1, 1]; float samples (the toy mixtures) are used as
    they are. Each epoch is a fresh permutation; the last incomplete batch of an epoch is dropped so
    every batch has the same size.
    """

    def __init__(
        self,
        samples: torch.Tensor,  # uint8 images (N, C, H, W) or float vectors (N, D)
        labels: torch.Tensor | None,  # int64 (N,)
        num_classes: int,
        batch_size: int,
        device: torch.device,
        seed: int,
    ):
        self.samples = samples.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size = batch_size
        self.device = device
        self.shape = DataShape(tuple(samples.shape[1:]), num_classes)
        self.rng = torch.Generator(device=device).manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self.order = self._new_order()

    def __len__(self) -> int:
        """Number of samples."""
        return self.samples.shape[0]

    @property
    def batches_per_epoch(self) -> int:
        return len(self) // self.batch_size

    def _new_order(self) -> torch.Tensor:
        return torch.randperm(len(self), generator=self.rng, device=self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > len(self):
            self.epoch += 1
            self.position = 0
            self.order = self._new_order()
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        x = self.samples[index]
        if x.dtype == torch.uint8:
            x = x.float().div_(127.5).sub_(1.0)  # uint8 [0, 255] -> [-1, 1]
        y = self.labels[index] if self.labels is not None else None
        return x, y

    def head(self, n: int) -> torch.Tensor:
        """The dataset's first n samples in its stored order (not the training order, which they do
        not change), scaled like batches: images (n, C, H, W) in [-1, 1]."""
        x = self.samples[:n]
        return x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.clone()

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "order": self.order.cpu(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.position = state["position"]
        self.order = state["order"].to(self.device)
        self.rng.set_state(state["rng"])
