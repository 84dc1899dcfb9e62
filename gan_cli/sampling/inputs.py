"""A sampler's inputs, drawn reproducibly, and the images it makes from them (on the CPU)."""

import math

import torch

from gan_cli.models.base import Generator


def seeded_inputs(
    generator: Generator, n: int, seed: int, labels: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """`n` generator inputs drawn on the CPU from `seed`: the same images on any device.
    Conditional generators take `labels` (n,) when given."""
    return generator.sample_inputs(n, rng=torch.Generator().manual_seed(seed), labels=labels)


def class_grid_inputs(generator: Generator, per_class: int, seed: int) -> dict[str, torch.Tensor]:
    """Inputs for a grid with one row per class of a conditional generator: labels 0 0 .. 1 1 .. ."""
    labels = torch.arange(generator.num_classes).repeat_interleave(per_class)
    return seeded_inputs(generator, len(labels), seed, labels)


def grid_inputs(generator: Generator, n: int, seed: int) -> tuple[dict[str, torch.Tensor], int]:
    """(inputs, images per row) for the training loop's sample grids: about `n` images in a square
    grid, or for a conditional generator one row per class."""
    if generator.num_classes:
        per_class = max(1, n // generator.num_classes)
        return class_grid_inputs(generator, per_class, seed), per_class
    return seeded_inputs(generator, n, seed), math.ceil(math.sqrt(n))


@torch.no_grad()
def generate(generator: Generator, inputs: dict[str, torch.Tensor], batch_size: int = 256) -> torch.Tensor:
    """Images for `inputs` (a dict of (N, ...) tensors), made in eval mode in chunks; on the CPU."""
    device = next(generator.parameters()).device
    n = len(inputs["z"])
    was_training = generator.training
    generator.eval()  # batch norm uses its running statistics: an image does not depend on its batch
    try:
        chunks = [
            generator(**{name: value[start : start + batch_size].to(device) for name, value in inputs.items()})
            .float()
            .cpu()
            for start in range(0, n, batch_size)
        ]
    finally:
        generator.train(was_training)
    return torch.cat(chunks)
