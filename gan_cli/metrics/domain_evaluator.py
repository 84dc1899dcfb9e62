"""The domain evaluator: one small classifier for every MNIST-derived domain (gan_cli.data.domain_transforms),
shipped with the package, which scores translations.

It reads any derived domain's image as 3 channels (grey domains repeated) and gives three things: the
digit (label preservation: is a translated 8 still an 8?), the domain in TRANSFORMS' order (domain
accuracy: did the translation reach its target?) and a feature vector (FID per domain). The weights
are trained by scripts/train_domain_evaluator.py and checked against DOMAIN_EVALUATOR_SHA256 when
loaded, like the MNIST evaluator's.
"""

from dataclasses import dataclass

import torch
from torch import nn

from gan_cli.data.domain_transforms import TRANSFORMS
from gan_cli.errors import GanError
from gan_cli.metrics.evaluator import FEATURE_DIM, NUM_CLASSES, evaluator_body, load_shipped

WEIGHTS_FILE = "domain_evaluator.pt"
DOMAIN_EVALUATOR_SHA256 = "132f94cee7fccc418c16ded3be3977fb07e5d8f9b770a81c61523f0b2b87e308"
DOMAINS = tuple(TRANSFORMS)  # the domain head's classes, in this order
CHANNELS = 3
IMAGE_SIZE = 28


class DomainEvaluator(nn.Module):
    """Images (N, 3, 28, 28) in [-1, 1] -> features (N, 128), digit logits (N, 10), domain logits (N, 8).

    The MNIST evaluator's body (six 3x3 convolutions, global average pooling) on 3 input channels, one
    hidden layer whose output is the feature vector, and two linear heads on it: about 0.2M parameters.
    """

    def __init__(self):
        super().__init__()
        self.body = evaluator_body(CHANNELS)
        self.hidden = nn.Sequential(nn.Linear(128, FEATURE_DIM), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.2)
        self.digit = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.domain = nn.Linear(FEATURE_DIM, len(DOMAINS))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.body(x))  # (N, FEATURE_DIM)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(digit logits (N, 10), domain logits (N, 8)): what training fits."""
        hidden = self.dropout(self.features(x))
        return self.digit(hidden), self.domain(hidden)


def load_domain_evaluator(device: torch.device | str = "cpu") -> DomainEvaluator:
    """The shipped domain evaluator in eval mode, after checking that its weights are the recorded ones."""
    return load_shipped(
        DomainEvaluator(), WEIGHTS_FILE, DOMAIN_EVALUATOR_SHA256, "the domain evaluator", "scripts/train_domain_evaluator.py", device
    )


@dataclass
class DomainScores:
    """What the domain evaluator says about a set of images."""

    features: torch.Tensor  # (N, FEATURE_DIM) float32
    digits: torch.Tensor  # (N,) int64: the predicted digit
    domain_logits: torch.Tensor  # (N, len(DOMAINS)) float32, in DOMAINS' order

    def domain_of(self, candidates: list[str]) -> torch.Tensor:
        """(N,) int64: which of `candidates` (domain names) each image is, by the largest logit among them."""
        columns = [DOMAINS.index(name) for name in candidates]
        return self.domain_logits[:, columns].argmax(1)


def evaluator_input(images: torch.Tensor) -> torch.Tensor:
    """Images (N, 1 or 3, 28, 28) in [-1, 1] -> (N, 3, 28, 28) float32: grey ones repeated over 3
    channels, as `to_domain` promotes them; any other shape is refused with a message."""
    if images.dim() != 4 or images.shape[1] not in (1, CHANNELS) or tuple(images.shape[2:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise GanError(
            f"the domain evaluator scores images of shape 1x28x28 or 3x28x28 (MNIST-derived domains), "
            f"not {'x'.join(map(str, images.shape[1:]))}"
        )
    return images.float().expand(-1, CHANNELS, -1, -1)


@torch.no_grad()
def score_domains(evaluator: DomainEvaluator, images: torch.Tensor, batch_size: int = 500) -> DomainScores:
    """Features, digits and domain logits of `images` (N, 1 or 3, 28, 28) in [-1, 1], in batches; on the CPU."""
    images = evaluator_input(images)
    device = next(evaluator.parameters()).device
    features, digits, domains = [], [], []
    for batch in images.split(batch_size):
        feature = evaluator.features(batch.to(device))
        features.append(feature.cpu())
        digits.append(evaluator.digit(feature).argmax(1).cpu())
        domains.append(evaluator.domain(feature).cpu())
    return DomainScores(torch.cat(features), torch.cat(digits), torch.cat(domains))
