"""Latent walks: interpolation between random points, and InfoGAN code traversal."""

import torch
import torch.nn.functional as F

from gan_cli.errors import GanError
from gan_cli.models.base import Generator
from gan_cli.sampling.inputs import seeded_inputs


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b (B, D) at fractions t (T,) -> (B, T, D).

    Gaussian latents concentrate near a sphere; a straight line between two of them passes through
    its unlikely interior, the great circle stays where G was trained (White 2016)."""
    a_unit, b_unit = F.normalize(a, dim=1), F.normalize(b, dim=1)
    omega = torch.acos((a_unit * b_unit).sum(dim=1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]  # (B, 1, 1)
    t = t[None, :, None]
    return (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / torch.sin(omega)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation between rows of a and b (B, D) at fractions t (T,) -> (B, T, D)."""
    return a[:, None] + t[None, :, None] * (b - a)[:, None]


INTERPOLATIONS = {"slerp": slerp, "lerp": lerp}


def interpolation_inputs(
    generator: Generator, rows: int, steps: int, seed: int, method: str, labels: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """rows x steps inputs, row-major: each row walks from one random point to another (z by `method`,
    codes linearly); a conditional generator keeps each row's label."""
    if method not in INTERPOLATIONS:
        raise GanError(f"interpolation={method!r} is not known; use one of {', '.join(INTERPOLATIONS)}")
    start = seeded_inputs(generator, rows, seed, labels)
    end = seeded_inputs(generator, rows, seed + 1, start.get("y"))
    t = torch.linspace(0, 1, steps)
    walk = {"z": INTERPOLATIONS[method](start["z"], end["z"], t).flatten(0, 1)}
    if "c" in start:
        walk["c"] = lerp(start["c"], end["c"], t).flatten(0, 1)
    if "y" in start:
        walk["y"] = start["y"].repeat_interleave(steps)
    return walk


def traversal_inputs(generator: Generator, rows: int, steps: int, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """For each InfoGAN code, rows x values inputs that sweep that code with z and the other codes
    fixed per row: every value of a categorical code; -2..2 for a continuous one (the paper's range,
    beyond the [-1, 1] seen in training)."""
    codes = generator.codes
    if not codes:
        raise GanError("mode=traverse needs an InfoGAN checkpoint (a model with latent codes, model=infogan)")
    base = seeded_inputs(generator, rows, seed)
    base["c"][:, sum(codes.categorical) :] = 0  # continuous codes at their centre unless swept
    sweeps, offset = {}, 0
    for index, k in enumerate(codes.categorical):
        values = torch.eye(k)  # (k, k): each one-hot value
        sweeps[f"categorical{index}"] = _sweep(base, slice(offset, offset + k), values)
        offset += k
    for index in range(codes.continuous):
        values = torch.linspace(-2, 2, steps)[:, None]  # (steps, 1)
        sweeps[f"continuous{index}"] = _sweep(base, slice(offset + index, offset + index + 1), values)
    return sweeps


def _sweep(base: dict[str, torch.Tensor], columns: slice, values: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each base row repeated once per value (V, width), with c[:, columns] set to that value."""
    rows, count = len(base["z"]), len(values)
    inputs = {name: value.repeat_interleave(count, dim=0) for name, value in base.items()}
    inputs["c"][:, columns] = values.repeat(rows, 1)
    return inputs
