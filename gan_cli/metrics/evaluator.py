"""The evaluator: a small MNIST classifier that ships with the package and scores every image.

Its penultimate layer gives the features of the Fréchet-type metrics (FID, KID, precision/recall),
its softmax the class posteriors (Inception-style score, mode coverage, label accuracy). The weights
are trained by scripts/train_evaluator.py and checked against EVALUATOR_SHA256 when loaded, so every
machine computes its numbers with the same network.
"""

import hashlib
import io
from dataclasses import dataclass
from importlib import resources

import torch
from torch import nn

from gan_cli.errors import GanError

WEIGHTS_FILE = "evaluator.pt"
EVALUATOR_SHA256 = "ed8d6b54c15ea4e16722c0a4e972754f8cee88acca1f5f7ef35a351e45d9ccec"
IMAGE_SHAPE = (1, 28, 28)  # what the evaluator scores: MNIST-like grayscale digits
FEATURE_DIM = 128
NUM_CLASSES = 10


def _conv(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def evaluator_body(in_channels: int) -> nn.Sequential:
    """Images (N, in_channels, 28, 28) -> (N, 128): six 3x3 convolutions, three with stride 2
    (28 -> 14 -> 7 -> 4), and global average pooling. Shared by the MNIST and the domain evaluator."""
    return nn.Sequential(
        _conv(in_channels, 16, 1),
        _conv(16, 32, 2),  # 14x14
        _conv(32, 32, 1),
        _conv(32, 64, 2),  # 7x7
        _conv(64, 64, 1),
        _conv(64, 128, 2),  # 4x4
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),  # (N, 128)
    )


class MNISTEvaluator(nn.Module):
    """Images (N, 1, 28, 28) in [-1, 1] -> features (N, 128) and class logits (N, 10).

    Six 3x3 convolutions, three with stride 2 (28 -> 14 -> 7 -> 4), global average pooling and one
    hidden fully-connected layer whose output is the feature vector: about 0.2M parameters, small
    enough to score 10,000 images in a few seconds on a CPU.
    """

    def __init__(self):
        super().__init__()
        self.body = evaluator_body(IMAGE_SHAPE[0])
        self.hidden = nn.Sequential(nn.Linear(128, FEATURE_DIM), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.body(x))  # (N, FEATURE_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x)))  # (N, NUM_CLASSES) logits


def serialize(state_dict: dict) -> bytes:
    """The bytes of the weights file: the same weights always give the same bytes (and SHA-256)."""
    buffer = io.BytesIO()  # not a named file: torch.save would put the file's name inside the archive
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def load_shipped(network: nn.Module, weights_file: str, recorded_sha256: str, what: str, script: str,
                 device: torch.device | str) -> nn.Module:
    """`network` with the shipped weights of gan_cli/metrics/`weights_file` (checked: see
    load_checked_state), on `device`, in eval mode, without gradients."""
    network.load_state_dict(load_checked_state(weights_file, recorded_sha256, what, script))
    return network.to(device).eval().requires_grad_(False)


def load_checked_state(weights_file: str, recorded_sha256: str, what: str, script: str) -> dict:
    """The state dict in gan_cli/metrics/`weights_file`, after checking that its bytes are the recorded
    ones (`what` names the network in messages, `script` the script that rebuilds the file)."""
    try:
        raw = resources.files("gan_cli.metrics").joinpath(weights_file).read_bytes()
    except FileNotFoundError as err:
        raise GanError(
            f"{what}'s weights gan_cli/metrics/{weights_file} are missing from this installation; reinstall gan_cli"
        ) from err
    digest = hashlib.sha256(raw).hexdigest()
    if digest != recorded_sha256:
        raise GanError(
            f"{what}'s weights gan_cli/metrics/{weights_file} have SHA-256 {digest[:16]}..., not the "
            f"recorded {recorded_sha256[:16]}...: the file was altered or replaced, and metrics computed "
            f"with it would not be comparable; reinstall gan_cli (or rebuild it with {script})"
        )
    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)


def load_evaluator(device: torch.device | str = "cpu") -> MNISTEvaluator:
    """The shipped evaluator in eval mode, after checking that its weights are the recorded ones."""
    return load_shipped(MNISTEvaluator(), WEIGHTS_FILE, EVALUATOR_SHA256, "the evaluator", "scripts/train_evaluator.py", device)


@dataclass
class Scores:
    """What the evaluator (or Inception-v3, gan_cli.metrics.inception) says about a set of images."""

    features: torch.Tensor  # (N, FEATURE_DIM) float32, the penultimate layer (Inception: (N, 2048) pool)
    probs: torch.Tensor | None  # (N, NUM_CLASSES) float32 softmax posteriors; None from Inception
    labels: torch.Tensor | None = None  # (N,) int64: true labels (real) or requested ones (conditional G)
    codes: torch.Tensor | None = None  # (N,) int64: InfoGAN's first categorical code (or, for real images, the labels)

    def __len__(self) -> int:
        return len(self.features)


def require_evaluator_shape(shape: tuple[int, ...], source: str, expected: tuple[int, int, int] = IMAGE_SHAPE) -> None:
    """Refuse samples the metrics cannot score (they score `expected`: MNIST's 1x28x28, or Stacked
    MNIST's 3x28x28 read channel by channel), naming where they come from."""
    if tuple(shape) == tuple(expected):
        return
    found = f"images of shape {'x'.join(map(str, shape))}" if len(shape) == 3 else f"{shape[0]}-D points, not images"
    if tuple(expected) == IMAGE_SHAPE:
        raise GanError(
            f"{source} has {found}, but the shipped evaluator is an MNIST classifier and scores 1x28x28 "
            "grayscale images only (and 3x28x28 Stacked MNIST with metrics=[stacked_modes])"
        )
    raise GanError(f"{source} has {found}, but metrics=[stacked_modes] scores 3x28x28 Stacked MNIST images only")


@torch.no_grad()
def score_images(evaluator: MNISTEvaluator, images: torch.Tensor, batch_size: int = 500) -> Scores:
    """Features and posteriors of `images` (N, 1, 28, 28) in [-1, 1], computed in batches; on the CPU."""
    require_evaluator_shape(images.shape[1:], "the input")
    device = next(evaluator.parameters()).device
    features, probs = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device, torch.float32)
        feature = evaluator.features(batch)
        features.append(feature.cpu())
        probs.append(torch.softmax(evaluator.classifier(feature), dim=1).cpu())
    return Scores(torch.cat(features), torch.cat(probs))
