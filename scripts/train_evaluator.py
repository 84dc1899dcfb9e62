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


def train(data_root: str) -> tuple[MNISTEvaluator, float]:
    """The trained evaluator and its accuracy on the MNIST test set."""
    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    train_images, train_labels = load_mnist(data_root, "train", download=False)
    test_images, test_labels = load_mnist(data_root, "test", download=False)

    model = MNISTEvaluator()
    steps_per_epoch = len(train_images) // BATCH_SIZE
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, PEAK_LR, total_steps=EPOCHS * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(SEED)
    started = time.perf_counter()
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(train_images), generator=shuffle)
        for step in range(steps_per_epoch):
            index = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            x = augment(to_float(train_images[index]), shuffle)
            loss = F.cross_entropy(model(x), train_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        test_accuracy = accuracy(model, test_images, test_labels)
        print(f"epoch {epoch + 1}/{EPOCHS}: test accuracy {test_accuracy:.4f}  ({time.perf_counter() - started:.0f} s)")
    return model, test_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=SHIPPED, help="where to write the weights")
    parser.add_argument("--data-root", default=os.environ.get("GAN_DATA_ROOT", "./data"), help="folder holding MNIST/raw/")
    args = parser.parse_args()

    model, test_accuracy = train(args.data_root)
    if test_accuracy < REQUIRED_ACCURACY:
        raise SystemExit(f"test accuracy {test_accuracy:.4f} is below {REQUIRED_ACCURACY}; the weights were not written")
    raw = serialize(model.state_dict())
    atomic_write(args.out, lambda f: f.write(raw))
    digest = hashlib.sha256(raw).hexdigest()
    print(f"wrote {args.out} ({len(raw) / 1024:.0f} KB), test accuracy {test_accuracy:.4f}")
    print(f"sha256 {digest}")
    print("matches the recorded EVALUATOR_SHA256" if digest == EVALUATOR_SHA256 else
          "differs from the recorded EVALUATOR_SHA256: update gan_cli/metrics/evaluator.py to ship these weights")


if __name__ == "__main__":
    main()
