"""Generating images from a generator, and writing them as grids, PNG files or arrays.

Used by gan-sample and by the training loop's sample grids. Images are float (N, C, H, W) in [-1, 1].

torchvision and matplotlib are imported where they are used: importing torchvision takes about 1.5 s
here (it loads torch's compiler), which every command would otherwise spend before it can report a
misspelled override.
"""

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_cli.arithmetic import arithmetic_problems, write_arithmetic
from gan_cli.errors import GanError
from gan_cli.files import atomic_write
from gan_cli.models.base import Generator

OUTPUT_FORMATS = ("auto", "grid", "images", "npz")
# The format an `out` name selects (by its output_kind) when format=auto.
NAMED_FORMATS = {"png": "grid", "npz": "npz", "folder": "images"}


def seeded_inputs(
    generator: Generator, n: int, seed: int, labels: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """`n` generator inputs drawn on the CPU from `seed`: the same images on any device.
    Conditional generators take `labels` (n,) when given."""
    return generator.sample_inputs(n, generator=torch.Generator().manual_seed(seed), labels=labels)


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


def image_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A grid image float (3, H', W') in [0, 1] from images in [-1, 1]."""
    from torchvision.utils import make_grid  # here, not at the top: see the module's docstring

    return make_grid(images, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 [0, 255], same shape."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 in [-1, 1], same shape (the inverse of to_uint8)."""
    return images.float().div(127.5).sub(1.0)


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write one image float (C, H, W) in [0, 1] as PNG, atomically."""
    from torchvision.utils import save_image  # here, not at the top: see the module's docstring

    atomic_write(path, lambda f: save_image(image, f, format="png"))


def output_kind(out: str | Path) -> str:
    """What the name `out` asks for: "folder" (no suffix, or a trailing /), else its suffix ("png", "npz", ...).

    Give the name as typed: a Path has already dropped the trailing / of `x.d/`."""
    if str(out).endswith(("/", os.sep)) or not Path(out).suffix:
        return "folder"
    return Path(out).suffix.lower().removeprefix(".")


def write_images(
    images: torch.Tensor, out: Path, output_format: str, nrow: int = 8, arrays: dict[str, np.ndarray] | None = None
) -> str:
    """Write `images` to `out` as a grid PNG, a folder of PNGs or an .npz (holding `arrays` too, such
    as the labels the images were drawn for); returns the format used."""
    if output_format == "grid":
        save_png(image_grid(images, nrow), out)
    elif output_format == "npz":
        save_npz(images, out, **(arrays or {}))
    elif output_format == "images":
        for i, image in enumerate(images):
            save_png((image + 1) / 2, out / f"{i:06d}.png")
    else:  # gan-sample resolves format=auto and refuses unknown formats before it comes here
        raise ValueError(f"output_format={output_format!r}: use grid, npz or images")
    return output_format


def save_npz(images: torch.Tensor, path: Path, **arrays: np.ndarray) -> None:
    """`images` as uint8 (N, H, W, C) under the key `images`, the layout other tools read; `arrays`
    (each with N rows) beside it under their own keys."""
    array = to_uint8(images).permute(0, 2, 3, 1).numpy()
    atomic_write(path, lambda f: _savez(f, images=array, **arrays))


def write_points(points: torch.Tensor, out: Path, output_format: str = "auto") -> str:
    """Write toy points (N, D) to `out`: an .npz with the float32 array `points` (N, D), or a picture
    (format grid, or auto with a .png: a histogram of 1-D points, a scatter of 2-D ones); returns the format."""
    if output_format == "auto":
        output_format = NAMED_FORMATS.get(output_kind(out))
    if output_format == "npz":
        atomic_write(out, lambda f: _savez(f, points=points.numpy().astype(np.float32)))
    elif output_format == "grid" and points.shape[1] <= 2:
        from gan_cli.figures import figure_image, points_figure  # matplotlib: only toy checkpoints draw

        save_png(figure_image(points_figure(points, f"{len(points)} generated points")), out)
        output_format = "picture"
    else:
        raise GanError(
            f"this checkpoint's generator makes {points.shape[1]}-D points, not images: write them with "
            "out=<name>.npz (the array `points`) or out=<name>.png (a picture)"
        )
    return output_format


def _savez(f, **arrays) -> None:
    buffer = io.BytesIO()  # np.savez_compressed seeks: write to memory first, then to the atomic file
    np.savez_compressed(buffer, **arrays)
    f.write(buffer.getvalue())


# --- latent walks: interpolation and InfoGAN code traversal ------------------------------------------


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


def save_gif(frames: list[torch.Tensor], path: Path, frame_ms: int = 120) -> None:
    """An animated GIF, looping, from grid images float (3, H, W) in [0, 1]; written atomically."""
    pictures = [Image.fromarray(frame.mul(255).round().byte().permute(1, 2, 0).numpy()) for frame in frames]
    atomic_write(
        path,
        lambda f: pictures[0].save(f, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0),
    )


# --- gan-sample's modes ----------------------------------------------------------------------------

# What each mode writes, by the output_kind of `out`. Any other name would hold something other than it
# says (a PNG named .npz, a folder named .jpg): it is refused before anything is written.
MODE_OUTPUTS = {
    "sample": {"png": "a grid", "npz": "arrays", "folder": "one PNG per image"},
    "interpolate": {"png": "a grid with a row per walk", "gif": "an animation whose frames are the steps"},
    "traverse": {"png": "one grid per code as <name>_<code>.png"},
    "arithmetic": {"png": "a figure of the terms, their averages and the result"},  # gan_cli.arithmetic
}
SAMPLE_MODES = tuple(MODE_OUTPUTS)
OUT_EXAMPLES = {"png": "out=<name>.png", "npz": "out=<name>.npz", "gif": "out=<name>.gif", "folder": "out=<folder>/"}


def check_sample_config(cfg) -> None:
    """Refuse a gan-sample config that cannot work, or of which a part would be silently ignored, before
    the checkpoint is read or anything is written: one line naming each option at fault and what to use.
    (What depends on the checkpoint, such as a label beyond its classes, is checked where it is used.)"""
    problems = [f"{key}={cfg[key]} must be positive" for key in ("n", "nrow", "batch_size") if cfg[key] < 1]
    if cfg.steps < 2:
        problems.append(f"steps={cfg.steps} must be at least 2: a walk or a sweep needs both its ends")
    if cfg.format not in OUTPUT_FORMATS:
        problems.append(f"format={cfg.format!r} is not an output format; use one of {', '.join(OUTPUT_FORMATS)}")
    if cfg.mode not in SAMPLE_MODES:
        problems.append(f"mode={cfg.mode!r} is not a gan-sample mode; use one of {', '.join(SAMPLE_MODES)}")
    else:
        problems += _label_problems(cfg) + _output_problems(cfg)
    problems += arithmetic_problems(cfg)
    if problems:
        raise GanError("; ".join(problems))


def _label_problems(cfg) -> list[str]:
    if cfg.labels is not None and cfg.labels != "all":
        return [f"labels={cfg.labels!r}: the only value is `all` (a row per class); for one class use label=<k>"]
    if cfg.label is not None and cfg.labels is not None:
        return [f"label={cfg.label} and labels=all contradict each other: give label=<k> for one class, or "
                "labels=all for a row per class"]
    if cfg.mode == "traverse" and (cfg.label is not None or cfg.labels is not None):
        return ["mode=traverse sweeps InfoGAN codes and takes no label= or labels=: drop them"]
    if cfg.mode == "interpolate" and cfg.labels is not None:
        return ["labels=all (a row per class) is for mode=sample; mode=interpolate takes label=<k> to walk within one class"]
    return []


def _output_problems(cfg) -> list[str]:
    if not cfg.out:
        return ["out= is empty: give the file or folder to write"]
    outputs, kind = MODE_OUTPUTS[cfg.mode], output_kind(cfg.out)
    if kind not in outputs:
        choices = [f"{what} ({OUT_EXAMPLES[name]})" for name, what in outputs.items()]
        listed = " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)
        return [f"out={cfg.out}: mode={cfg.mode} writes {listed}"]
    if cfg.format == "auto" or cfg.format not in OUTPUT_FORMATS:  # an unknown format is reported already
        return []
    if cfg.mode != "sample":
        return [f"format={cfg.format} is for mode=sample; mode={cfg.mode} writes what out's suffix names: drop format"]
    if cfg.format != NAMED_FORMATS[kind]:  # the format and the name must agree
        wanted = next(name for name, named in NAMED_FORMATS.items() if named == cfg.format)
        return [f"format={cfg.format} writes {OUT_EXAMPLES[wanted]}, and out={cfg.out} names {outputs[kind]}: "
                "rename out, or leave format=auto"]
    return []


def write_requested_samples(generator: Generator, cfg) -> str:
    """Make and write what a gan-sample config asks for; returns a summary of what was written.

    sample:      n images (or one class with `label`, or a row per class with `labels=all`) as a
                 grid, PNG files or an .npz, by `out` (and `format`)
    interpolate: n rows of `steps` images walking between two random points, as a grid PNG or,
                 when `out` ends in .gif, an animation whose frames are the steps
    traverse:    for each InfoGAN code a grid <out stem>_<code>.png with n rows sweeping it
    """
    check_sample_config(cfg)
    if len(generator.sample_shape) == 1 and cfg.mode != "sample":  # a toy checkpoint: G makes points
        raise GanError(f"mode={cfg.mode} draws images, and this checkpoint's generator makes points: use mode=sample")
    write = {"sample": _write_samples, "interpolate": _write_interpolations, "traverse": _write_traversals,
             "arithmetic": write_arithmetic}[cfg.mode]
    return write(generator, cfg, Path(cfg.out))


def _write_samples(generator: Generator, cfg, out: Path) -> str:
    inputs, columns = _requested_inputs(generator, cfg)
    samples = generate(generator, inputs, cfg.batch_size)
    output_format = NAMED_FORMATS[output_kind(cfg.out)] if cfg.format == "auto" else cfg.format
    if len(generator.sample_shape) == 1:
        return f"{len(samples)} points ({write_points(samples, out, output_format)}) to {out}"
    used = write_images(samples, out, output_format, columns, drawn_for(generator, inputs))
    return f"{len(inputs['z'])} images ({used}) to {out}"


def _write_interpolations(generator: Generator, cfg, out: Path) -> str:
    labels = _label_batch(generator, cfg.label, cfg.n)
    inputs = interpolation_inputs(generator, cfg.n, cfg.steps, cfg.seed, cfg.interpolation, labels)
    images = generate(generator, inputs, cfg.batch_size)  # (n * steps, C, H, W), row by row
    if output_kind(out) == "gif":
        save_gif([image_grid(images[t :: cfg.steps], cfg.nrow) for t in range(cfg.steps)], out)
    else:
        save_png(image_grid(images, nrow=cfg.steps), out)
    return f"{cfg.n} {cfg.interpolation} interpolations of {cfg.steps} steps to {out}"


def _write_traversals(generator: Generator, cfg, out: Path) -> str:
    written = []
    for name, inputs in traversal_inputs(generator, cfg.n, cfg.steps, cfg.seed).items():
        path = out.with_name(f"{out.stem}_{name}{out.suffix}")
        save_png(image_grid(generate(generator, inputs, cfg.batch_size), nrow=len(inputs["z"]) // cfg.n), path)
        written.append(str(path))
    return f"code traversals to {', '.join(written)}"


def drawn_for(generator: Generator, inputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """What each image was drawn for, to store beside it in an .npz (so that a scorer can check it):
    `labels` int64 (N,), the class of a conditional generator's image, and `codes` int64 (N,), the
    value of an InfoGAN generator's first categorical code. Empty for other generators."""
    arrays = {}
    if "y" in inputs:
        arrays["labels"] = inputs["y"].cpu().numpy().astype(np.int64)
    if generator.codes.categorical:
        categories, _ = generator.codes.split_codes(inputs["c"])
        arrays["codes"] = categories[0].cpu().numpy().astype(np.int64)
    return arrays


def _requested_inputs(generator: Generator, cfg) -> tuple[dict[str, torch.Tensor], int]:
    if cfg.labels == "all":
        _require_conditional(generator, "labels=all")
        return class_grid_inputs(generator, cfg.nrow, cfg.seed), cfg.nrow
    return seeded_inputs(generator, cfg.n, cfg.seed, _label_batch(generator, cfg.label, cfg.n)), cfg.nrow


def _label_batch(generator: Generator, label: int | None, n: int) -> torch.Tensor | None:
    """`n` copies of `label` for a conditional generator, or None when no label was asked for."""
    if label is None:
        return None
    _require_conditional(generator, f"label={label}")
    if not 0 <= label < generator.num_classes:
        raise GanError(f"label={label} is not a class of this model: use 0 to {generator.num_classes - 1}")
    return torch.full((n,), label, dtype=torch.long)


def _require_conditional(generator: Generator, option: str) -> None:
    if not generator.num_classes:
        raise GanError(f"{option} needs a conditional model (model=cgan); this checkpoint's generator takes no labels")
