"""gan-sample's modes: what a config asks for, checked before anything is read or written, then
made from the sampler and written."""

from pathlib import Path

import numpy as np
import torch

from gan_cli.arithmetic import arithmetic_problems, write_arithmetic
from gan_cli.errors import GanError
from gan_cli.models.autoencoder import LATENT_SOURCES, reconstruct
from gan_cli.models.base import Generator
from gan_cli.sampling.files import (
    NAMED_FORMATS,
    OUTPUT_FORMATS,
    from_uint8,
    image_grid,
    output_kind,
    reconstruction_grid,
    save_gif,
    save_png,
    write_images,
    write_points,
)
from gan_cli.sampling.inputs import class_grid_inputs, generate, seeded_inputs
from gan_cli.sampling.walks import interpolation_inputs, traversal_inputs

# What each mode writes, by the output_kind of `out`. Any other name would hold something other than it
# says (a PNG named .npz, a folder named .jpg): it is refused before anything is written.
MODE_OUTPUTS = {
    "sample": {"png": "a grid", "npz": "arrays", "folder": "one PNG per image"},
    "interpolate": {"png": "a grid with a row per walk", "gif": "an animation whose frames are the steps"},
    "traverse": {"png": "one grid per code as <name>_<code>.png"},
    "reconstruct": {"png": "a grid of inputs over their reconstructions", "npz": "arrays", "folder": "one PNG per image"},
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
        problems += _label_problems(cfg) + _output_problems(cfg) + _reconstruction_problems(cfg)
    if cfg.sampler not in LATENT_SOURCES:
        problems.append(f"sampler={cfg.sampler!r} must be one of {', '.join(LATENT_SOURCES)}")
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
    if cfg.mode == "reconstruct" and (cfg.label is not None or cfg.labels is not None):
        return ["mode=reconstruct rebuilds the images of images= and takes no label= or labels=: drop them"]
    if cfg.mode == "interpolate" and cfg.labels is not None:
        return ["labels=all (a row per class) is for mode=sample; mode=interpolate takes label=<k> to walk within one class"]
    return []


def _reconstruction_problems(cfg) -> list[str]:
    if cfg.mode == "reconstruct" and cfg.images is None:
        return ["mode=reconstruct needs images=<a folder of PNGs or an .npz> to reconstruct"]
    if cfg.mode != "reconstruct" and cfg.images is not None:
        return [f"images= is read by mode=reconstruct; mode={cfg.mode} draws new images: drop images= or set mode=reconstruct"]
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
    if cfg.mode not in ("sample", "reconstruct"):
        return [f"format={cfg.format} is for mode=sample; mode={cfg.mode} writes what out's suffix names: drop format"]
    if cfg.format != NAMED_FORMATS[kind]:  # the format and the name must agree
        wanted = next(name for name, named in NAMED_FORMATS.items() if named == cfg.format)
        return [f"format={cfg.format} writes {OUT_EXAMPLES[wanted]}, and out={cfg.out} names {outputs[kind]}: "
                "rename out, or leave format=auto"]
    return []


def write_requested_samples(generator: Generator, cfg, encoder: torch.nn.Module | None = None) -> str:
    """Make and write what a gan-sample config asks for; returns a summary of what was written.

    sample:      n images (or one class with `label`, or with `labels=all` n / classes of each class,
                 a grid row per class) as a grid, PNG files or an .npz, by `out` (and `format`)
    interpolate: n rows of `steps` images walking between two random points, as a grid PNG or,
                 when `out` ends in .gif, an animation whose frames are the steps
    traverse:    for each InfoGAN code a grid <out stem>_<code>.png with n rows sweeping it
    reconstruct: the first n images of `images` through `encoder` and the generator (the decoder):
                 a grid of inputs over reconstructions, or the reconstructions as PNG files or an .npz
    """
    check_sample_config(cfg)
    if cfg.mode == "reconstruct":
        return _write_reconstructions(encoder, generator, cfg, Path(cfg.out))
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
    labels = label_batch(generator, cfg.label, cfg.n)
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


def _write_reconstructions(encoder: torch.nn.Module, decoder: Generator, cfg, out: Path) -> str:
    from gan_cli.metrics.image_files import read_images  # (reads PIL and numpy only)

    images = from_uint8(read_images(Path(cfg.images))[: cfg.n])  # (n, C, H, W) in [-1, 1]
    if tuple(images.shape[1:]) != tuple(decoder.sample_shape):
        raise GanError(f"images={cfg.images} are {'x'.join(map(str, images.shape[1:]))}, and this checkpoint's model "
                       f"encodes {'x'.join(map(str, decoder.sample_shape))} images")
    device = next(decoder.parameters()).device
    rebuilt = torch.cat([reconstruct(encoder, decoder, chunk.to(device)).cpu() for chunk in images.split(cfg.batch_size)])
    output_format = NAMED_FORMATS[output_kind(cfg.out)] if cfg.format == "auto" else cfg.format
    if output_format == "grid":
        save_png(reconstruction_grid(images, rebuilt, cfg.nrow), out)
    else:
        write_images(rebuilt, out, output_format)
    return f"reconstructions of {len(images)} images of {cfg.images} ({output_format}) to {out}"


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
    """(inputs, images per grid row). labels=all: n images, n / classes of each class, a row per class."""
    if cfg.labels == "all":
        per_class = _per_class(generator, cfg.n)
        return class_grid_inputs(generator, per_class, cfg.seed), per_class
    return seeded_inputs(generator, cfg.n, cfg.seed, label_batch(generator, cfg.label, cfg.n)), cfg.nrow


def _per_class(generator: Generator, n: int) -> int:
    """Images of each class when labels=all asks for `n` in all: refused unless the classes share n evenly."""
    _require_conditional(generator, "labels=all")
    classes = generator.num_classes
    if n % classes:
        lower, upper = classes * max(1, n // classes), classes * (n // classes + 1)
        nearest = f"n={lower} or n={upper}" if lower < n else f"n={upper}"
        raise GanError(f"n={n} with labels=all: this model has {classes} classes, and n must be a multiple of "
                       f"{classes} (n / {classes} images of each class); use for example {nearest}")
    return n // classes


def label_batch(generator: Generator, label: int | None, n: int) -> torch.Tensor | None:
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
