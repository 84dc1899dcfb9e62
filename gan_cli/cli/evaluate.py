"""gan-eval: metrics of a checkpoint's generator, or of images from anywhere, against real MNIST
(or, with metrics=[stacked_modes], Stacked MNIST's mode coverage)."""

import json
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli import console_script, user_errors
from gan_cli.data.source import DataShape
from gan_cli.device import select_device
from gan_cli.errors import GanError
from gan_cli.files import atomic_write
from gan_cli.metrics.evaluator import EVALUATOR_SHA256, require_evaluator_shape
from gan_cli.metrics.image_files import read_images
from gan_cli.metrics.stacked import build_suite, metrics_image_shape
from gan_cli.metrics.suite import evaluation_problems
from gan_cli.sampling import from_uint8
from gan_cli.training.checkpoint import checkpoint_path, generator_from_checkpoint, load_checkpoint

log = logging.getLogger("gan_cli.evaluate")


@console_script("gan-eval", path_keys=("ckpt", "images", "out"))
@hydra.main(version_base="1.3", config_path="pkg://gan_cli.configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    with user_errors("gan-eval"):
        _check(cfg)
        device = select_device(cfg.device)
        if cfg.ckpt is not None:
            path = checkpoint_path(cfg.ckpt)
            checkpoint = load_checkpoint(path)
            generator = generator_from_checkpoint(checkpoint, cfg.ema).to(device)
            shape = DataShape.from_record(checkpoint["image_shape"]).sample_shape  # readable: the generator was built
            require_evaluator_shape(shape, f"checkpoint {path}", metrics_image_shape(cfg.metrics))
            which = "EMA" if cfg.ema and checkpoint.get("generator_ema") is not None else "raw"
            source = {"checkpoint": str(path), "step": checkpoint["step"], "generator": which}
            log.info(f"Scoring {cfg.n} images of the {which} generator of {path} (step {checkpoint['step']}), seed {cfg.seed}")
            evaluation = build_suite(cfg.metrics, cfg.n, cfg.seed, cfg.data_root, device).evaluate_generator(
                generator, cfg.batch_size
            )
            out = Path(cfg.out) if cfg.out is not None else path.with_suffix(".metrics.json")
        else:
            images = _images(Path(cfg.images), cfg.n, metrics_image_shape(cfg.metrics))
            source = {"images": str(cfg.images)}
            evaluation = build_suite(cfg.metrics, len(images), cfg.seed, cfg.data_root, device).evaluate_images(
                from_uint8(images)
            )
            out = Path(cfg.out) if cfg.out is not None else Path("metrics.json")
        for line in evaluation.table():
            log.info(line)
        record = {**source, "seed": cfg.seed, "evaluator_sha256": EVALUATOR_SHA256, **evaluation.record()}
        atomic_write(out, lambda f: f.write((json.dumps(record, indent=2) + "\n").encode()))
        log.info(f"Wrote {out}")


def _check(cfg: DictConfig) -> None:
    if (cfg.ckpt is None) == (cfg.images is None):
        raise GanError(
            "give exactly one of ckpt= (a checkpoint or run directory) and images= (a folder of PNGs or an .npz)"
        )
    problems = evaluation_problems(cfg.metrics, cfg.n, None)
    if cfg.batch_size <= 0:
        problems.append(f"batch_size={cfg.batch_size} must be positive")
    if problems:
        raise GanError("; ".join(problems))


def _images(path: Path, n: int, shape: tuple[int, int, int]):
    """The first n images of `path` (all of them when there are fewer), uint8 (n, *shape)."""
    images = read_images(path)
    require_evaluator_shape(tuple(images.shape[1:]), f"images={path}", shape)
    if len(images) < n:
        log.info(f"{path} holds {len(images)} images, fewer than n={n}: scoring all of them")
    else:
        log.info(f"Scoring the first {n} of the {len(images)} images in {path}")
    return images[:n]


if __name__ == "__main__":
    main()
