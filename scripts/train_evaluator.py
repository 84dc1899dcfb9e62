"""Train the MNIST evaluator that gan_cli ships (gan_cli/metrics/evaluator.pt), reproducibly.

    GAN_DATA_ROOT=../shared/data python scripts/train_evaluator.py            # rewrite the shipped file
    GAN_DATA_ROOT=../shared/data python scripts/train_evaluator.py --out x.pt # elsewhere (the slow test)

CPU only, fixed seed, deterministic algorithms and one thread, so the same torch build on the same
kind of CPU writes the same bytes; the SHA-256 it prints is the one recorded in
gan_cli/metrics/evaluator.py as EVALUATOR_SHA256. 4 epochs, 99.4% test accuracy: a few minutes
(about 6 on a busy 2-core machine).
"""

import argparse
import hashlib
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.data.mnist import load_mnist
from gan_cli.files import atomic_write
from gan_cli.metrics.evaluator import EVALUATOR_SHA256, MNISTEvaluator, serialize

SHIPPED = Path(__file__).resolve().parents[1] / "gan_cli" / "metrics" / "evaluator.pt"
SEED = 0
THREADS = 1  # fixed: the order of floating-point sums (and so the bytes) depends on it; one thread also
# keeps a busy machine from stalling the run (two threads on contended cores wait on each other)
EPOCHS = 4
BATCH_SIZE = 128
PEAK_LR = 4e-3
REQUIRED_ACCURACY = 0.99


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) -> float in [-1, 1], the range generators produce."""
    return images.float().div(127.5).sub(1.0)


def augment(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random small rotations (±10°), scalings (±10%) and shifts (±2 px) of a batch (B, 1, 28, 28).

    Handwriting varies this much; a classifier that has seen it generalises better to the test set and
    to generated digits that are slightly off-centre.
    """
    b = len(x)
    angle = (torch.rand(b, generator=rng) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(b, generator=rng) * 2 - 1) * 0.1
    shift = (torch.rand(b, 2, generator=rng) * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] grid units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, 28, 28, 2)
    # Background is -1 (black): pad with it, not with grid_sample's zeros (mid-grey in [-1, 1]).
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


@torch.no_grad()
def accuracy(model: MNISTEvaluator, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    predictions = torch.cat([model(to_float(images[i : i + 1000])).argmax(1) for i in range(0, len(images), 1000)])
    return (predictions == labels).float().mean().item()


def deterministic() -> None:
    """Fixed seed, one thread, deterministic kernels: the conditions under which the bytes repeat."""
    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)


def fit(model: nn.Module, num_images: int, epochs: int, batch_loss, after_epoch) -> None:
    """AdamW with a one-cycle learning rate over `epochs` shuffled passes of `num_images` images.

    batch_loss(index, generator) -> the loss of the batch of images at `index` (int64 (BATCH_SIZE,)),
    drawing any augmentation from `generator` (the shuffling one, so one seed fixes the whole run);
    after_epoch(epoch) reports (it may put the model in eval mode: each epoch starts in train mode).
    """
    steps_per_epoch = num_images // BATCH_SIZE
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, PEAK_LR, total_steps=epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(SEED)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(num_images, generator=shuffle)
        for step in range(steps_per_epoch):
            loss = batch_loss(order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE], shuffle)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        after_epoch(epoch)


def train(data_root: str) -> tuple[MNISTEvaluator, float]:
    """The trained evaluator and its accuracy on the MNIST test set."""
    deterministic()
    train_images, train_labels = load_mnist(data_root, "train", download=False)
    test_images, test_labels = load_mnist(data_root, "test", download=False)
    model = MNISTEvaluator()
    started = time.perf_counter()

    def batch_loss(index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return F.cross_entropy(model(augment(to_float(train_images[index]), generator)), train_labels[index])

    def after_epoch(epoch: int) -> None:
        test_accuracy = accuracy(model, test_images, test_labels)
        print(f"epoch {epoch + 1}/{EPOCHS}: test accuracy {test_accuracy:.4f}  ({time.perf_counter() - started:.0f} s)")

    fit(model, len(train_images), EPOCHS, batch_loss, after_epoch)
    return model, accuracy(model, test_images, test_labels)


def parse_arguments(doc: str, shipped: Path) -> argparse.Namespace:
    """--out (default: the shipped file) and --data-root (default: $GAN_DATA_ROOT, then ./data)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=shipped, help="where to write the weights")
    parser.add_argument("--data-root", default=os.environ.get("GAN_DATA_ROOT", "./data"), help="folder holding MNIST/raw/")
    return parser.parse_args()


def write_weights(model: nn.Module, out: Path, recorded_sha256: str, constant: str) -> None:
    """Write the weights atomically and say whether their SHA-256 is the one recorded as `constant`
    ("module.py's NAME"), which loading checks."""
    raw = serialize(model.state_dict())
    atomic_write(out, lambda f: f.write(raw))
    digest = hashlib.sha256(raw).hexdigest()
    print(f"wrote {out} ({len(raw) / 1024:.0f} KB)")
    print(f"sha256 {digest}")
    print(f"matches the recorded {constant}" if digest == recorded_sha256 else
          f"differs from the recorded {constant}: update it to ship these weights")


def main() -> None:
    args = parse_arguments(__doc__, SHIPPED)
    model, test_accuracy = train(args.data_root)
    if test_accuracy < REQUIRED_ACCURACY:
        raise SystemExit(f"test accuracy {test_accuracy:.4f} is below {REQUIRED_ACCURACY}; the weights were not written")
    write_weights(model, args.out, EVALUATOR_SHA256, "gan_cli/metrics/evaluator.py's EVALUATOR_SHA256")


if __name__ == "__main__":
    main()
