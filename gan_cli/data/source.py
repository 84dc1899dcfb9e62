"""A batch source for datasets that fit in memory: one uint8 tensor on the training device.

Shuffling happens on the device with a dedicated generator, so there is no per-sample Python, no
worker process, and the whole data order is part of the checkpoint (exact resume).
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageShape:
    """What the networks need to know about a dataset."""

    channels: int
    image_size: int
    num_classes: int  # 0 for unlabelled data


class TensorBatchSource:
    """Endless shuffled batches `(x, y)`: x float in [-1, 1] of shape (B, C, H, W), y int64 (B,) or None.

    Each epoch is a fresh permutation; the last incomplete batch of an epoch is dropped so every
    batch has the same size.
    """

    def __init__(
        self,
        images: torch.Tensor,  # uint8 (N, C, H, W)
        labels: torch.Tensor | None,  # int64 (N,)
        num_classes: int,
        batch_size: int,
        device: torch.device,
        seed: int,
    ):
        self.images = images.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size = batch_size
        self.shape = ImageShape(images.shape[1], images.shape[2], num_classes)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self.order = self._new_order()

    def __len__(self) -> int:
        """Number of images."""
        return self.images.shape[0]

    @property
    def batches_per_epoch(self) -> int:
        return len(self) // self.batch_size

    def _new_order(self) -> torch.Tensor:
        return torch.randperm(len(self), generator=self.generator, device=self.images.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > len(self):
            self.epoch += 1
            self.position = 0
            self.order = self._new_order()
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        x = self.images[index].float().div_(127.5).sub_(1.0)  # uint8 [0, 255] -> [-1, 1]
        y = self.labels[index] if self.labels is not None else None
        return x, y

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "order": self.order.cpu(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.position = state["position"]
        self.order = state["order"].to(self.images.device)
        self.generator.set_state(state["generator"])
