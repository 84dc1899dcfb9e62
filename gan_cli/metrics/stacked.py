"""Stacked MNIST's mode metrics (metric name `stacked_modes`): the shipped MNIST evaluator reads each
channel of a 3x28x28 image as a digit, and the triple (red, green, blue) is the image's mode, one
of 1000 (see gan_cli.data.stacked_mnist).

Values: `modes_captured` (of 1000) and `modes_kl_uniform` (KL of the mode histogram to uniform).
The real-data floor is the same pair for n stacks of MNIST test digits read the same way: what a
perfect generator gets with n samples (with n = 10,000 a uniform draw misses a few modes and has
a KL of about 0.05, from sampling alone).
"""

import torch

from gan_cli.data.stacked_mnist import NUM_MODES, stack_indices, triple_labels
from gan_cli.metrics.evaluator import MNISTEvaluator, load_evaluator, score_images
from gan_cli.metrics.modes import histogram_modes
from gan_cli.metrics.reference import SUBSET_SEED, reference_scores
from gan_cli.metrics.suite import MAX_N, Evaluation
from gan_cli.models.base import Generator
from gan_cli.sampling.inputs import generate, seeded_inputs

NAME = "stacked_modes"
IMAGE_SHAPE = (3, 28, 28)
FLOOR = "stacked mnist/test"


def read_modes(evaluator: MNISTEvaluator, images: torch.Tensor) -> torch.Tensor:
    """The digit triple of each image (N, 3, 28, 28) in [-1, 1], as the number 100 r + 10 g + b (N,)."""
    digits = [score_images(evaluator, images[:, c : c + 1]).probs.argmax(1) for c in range(3)]
    return triple_labels(torch.stack(digits, dim=1))


def mode_values(modes: torch.Tensor) -> dict[str, float]:
    values = histogram_modes(modes, NUM_MODES)
    return {"modes_captured": values["captured"], "modes_kl_uniform": values["kl_uniform"]}


class StackedModesSuite:
    """Scores sets of n Stacked MNIST images; the same interface as MetricSuite."""

    image_shape = IMAGE_SHAPE

    def __init__(self, n: int, seed: int, data_root: str, device: torch.device):
        self.n, self.seed = n, seed
        self.evaluator = load_evaluator(device)
        # The floor: n stacks of real test digits (up to the whole test split, drawn with replacement
        # into triples), with the evaluator's reading of each digit.
        real_digits = reference_scores(self.evaluator, data_root, "test", min(n, MAX_N)).probs.argmax(1)  # (min(n, 10000),)
        self.floor = mode_values(triple_labels(real_digits[stack_indices(len(real_digits), n, SUBSET_SEED)]))

    def evaluate_images(self, images: torch.Tensor) -> Evaluation:
        """Mode metrics of images (n, 3, 28, 28) in [-1, 1]."""
        if len(images) != self.n:
            raise ValueError(f"{len(images)} images given to a suite for n={self.n}")
        values = mode_values(read_modes(self.evaluator, images))
        note = f"real-data floor: {self.n} stacks of MNIST test digits; modes of {NUM_MODES} digit triples"
        return Evaluation(values, self.floor, self.n, reference=f"{NUM_MODES} modes", floor_images=FLOOR, note=note)

    def evaluate_generator(self, generator: Generator, batch_size: int = 500) -> Evaluation:
        """Mode metrics of n images drawn from `seed` (the same latents every time)."""
        return self.evaluate_images(generate(generator, seeded_inputs(generator, self.n, self.seed), batch_size))
