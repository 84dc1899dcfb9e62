"""gan-eval: metrics of a checkpoint's generator, or of images from anywhere, against real MNIST
(or, with metrics=[stacked_modes], Stacked MNIST's mode coverage; with features=inception, against
real images of any dataset through Inception-v3); of a translation family's checkpoint (model=cyclegan,
stargan), the translation metrics of every pair of its domains; of a pair generator's (model=cogan),
the pair metrics."""

import json
import logging
from functools import partial
from pathlib import Path

import hydra
from omegaconf import DictConfig

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli import console_script, user_errors
from gan_cli.data.source import DataShape
from gan_cli.device import select_device
from gan_cli.errors import GanError
from gan_cli.files import atomic_write
from gan_cli.metrics import d_features
from gan_cli.metrics.evaluator import EVALUATOR_SHA256, require_evaluator_shape
from gan_cli.metrics.image_files import read_images
from gan_cli.metrics.inception import require_inception_images
from gan_cli.metrics.inception_suite import InceptionSuite, dataset_images, file_images
from gan_cli.metrics.choice import build_suite, metrics_image_shape
from gan_cli.metrics.reconstruction import NAME as RECONSTRUCTION
from gan_cli.metrics.reconstruction import evaluate_reconstructions
from gan_cli.metrics.suite import FEATURE_METRICS, evaluation_problems, merged
from gan_cli.models.autoencoder import choose_latent_source
from gan_cli.sampling.files import from_uint8
from gan_cli.games.translation import translate_images
from gan_cli.inference import (
    averaged, draws_pairs, encoder_from_checkpoint, sampler_from_checkpoint, samples_averaged, translates, translator_from_checkpoint,
)
from gan_cli.metrics.pairs import evaluate_pairs
from gan_cli.metrics.translation import evaluate_translation
from gan_cli.sampling.translations import stored_test_set
from gan_cli.training.checkpoint import checkpoint_path, load_checkpoint

log = logging.getLogger("gan_cli.evaluate")

FEATURES = ("evaluator", "inception")
# metrics=null: all the metrics the features allow
DEFAULT_METRICS = {"evaluator": ["fid", "kid", "is", "precision_recall", "coverage"], "inception": list(FEATURE_METRICS)}


@console_script("gan-eval", path_keys=("ckpt", "images", "out", "inception_weights", "ref_images"))
@hydra.main(version_base="1.3", config_path="pkg://gan_cli.configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    with user_errors("gan-eval"):
        metrics = _check(cfg)
        device = select_device(cfg.device)
        if metrics == [d_features.NAME]:  # D's features as a representation: a probe of D, not of G's images
            return _probe_discriminator(cfg, device)
        if cfg.ckpt is not None:
            path = checkpoint_path(cfg.ckpt)
            checkpoint = load_checkpoint(path)
            if translates(checkpoint):
                return _evaluate_translation(cfg, checkpoint, path, device)
            if draws_pairs(checkpoint):
                return _evaluate_pairs(cfg, checkpoint, path, device)
            generator = sampler_from_checkpoint(checkpoint, cfg.ema).to(device)
            choose_latent_source(generator, cfg.sampler)  # the encoder families: prior or fitted codes
            shape = DataShape.from_record(checkpoint["image_shape"]).sample_shape  # readable: the generator was built
            _require_shape(cfg, metrics, shape, f"checkpoint {path}")
            which = "EMA" if samples_averaged(checkpoint, cfg.ema) else "raw"
            source = {"checkpoint": str(path), "step": checkpoint["step"], "generator": which, "sampler": cfg.sampler}
            evaluations, suite = [], None
            if RECONSTRUCTION in metrics:  # the encoder and decoder rebuild real images
                encoder = encoder_from_checkpoint(checkpoint, cfg.ema).to(device)
                log.info(f"Reconstructing {cfg.n} MNIST test images with the {which} encoder and decoder of {path}")
                evaluations.append(evaluate_reconstructions(encoder, generator, cfg.n, cfg.data_root, cfg.batch_size))
                metrics = [name for name in metrics if name != RECONSTRUCTION]
            if metrics:
                log.info(f"Scoring {cfg.n} images of the {which} generator of {path} (step {checkpoint['step']}), seed {cfg.seed}")
                suite = _suite(cfg, metrics, cfg.n, device, checkpoint)
                if cfg.features == "inception" and (generator.num_classes or generator.codes.categorical):
                    log.info("label_accuracy and code_accuracy need the MNIST evaluator's class posteriors: not with features=inception")
                evaluations.insert(0, suite.evaluate_generator(generator, cfg.batch_size))
            evaluation = merged(evaluations)
            out = Path(cfg.out) if cfg.out is not None else path.with_suffix(".metrics.json")
        else:
            if RECONSTRUCTION in metrics:
                raise GanError("metrics=[reconstruction] rebuilds real images with a checkpoint's encoder: give ckpt=, not images=")
            images = _images(cfg, metrics, Path(cfg.images))
            source = {"images": str(cfg.images)}
            suite = _suite(cfg, metrics, len(images), device)
            evaluation = suite.evaluate_images(from_uint8(images))
            out = Path(cfg.out) if cfg.out is not None else Path("metrics.json")
        for line in evaluation.table():
            log.info(line)
        record = {**source, "seed": cfg.seed, "features": cfg.features, **_network(cfg, suite), **evaluation.record()}
        atomic_write(out, lambda f: f.write((json.dumps(record, indent=2) + "\n").encode()))
        log.info(f"Wrote {out}")


def _evaluate_translation(cfg: DictConfig, checkpoint: dict, path: Path, device) -> None:
    """A translation family's checkpoint: every translation metric of every ordered pair of its
    domains on the first n test images of each (gan_cli.metrics.translation)."""
    _require_default_metrics(cfg, "a translation checkpoint is scored on every translation metric")
    game, networks, _ = translator_from_checkpoint(checkpoint, cfg.ema)
    networks = {name: network.to(device) for name, network in networks.items()}
    dataset = checkpoint["config"]["dataset"]
    test_set = stored_test_set(dataset, cfg.data_root if "root" in dataset else None)  # (unpaired folders: dataset.path)
    n = min(cfg.n, *(len(images) for images in test_set.images.values()))
    which = "EMA" if averaged(checkpoint, next(iter(game.averaged), None), cfg.ema) else "raw"
    log.info(f"Translating {n} test images of each of {', '.join(test_set.domains)} with the {which} generators of "
             f"{path} (step {checkpoint['step']})")
    result = evaluate_translation(partial(translate_images, game, networks, batch_size=cfg.batch_size), test_set, n,
                                  cfg.batch_size, device, cfg.seed)
    _report(cfg, path, result.lines(), {"checkpoint": str(path), "step": checkpoint["step"], "generators": which,
                                        "seed": cfg.seed, "n": n, "values": result.values,
                                        "worst_pair": result.worst_pair, "hidden": result.hidden})


def _evaluate_pairs(cfg: DictConfig, checkpoint: dict, path: Path, device) -> None:
    """A pair generator's checkpoint: the pair metrics of n pairs (gan_cli.metrics.pairs)."""
    _require_default_metrics(cfg, "a pair generator's checkpoint is scored on every pair metric")
    generator = sampler_from_checkpoint(checkpoint, cfg.ema).to(device)
    test_set = stored_test_set(checkpoint["config"]["dataset"], cfg.data_root)
    which = "EMA" if samples_averaged(checkpoint, cfg.ema) else "raw"
    log.info(f"Scoring {cfg.n} pairs of the {which} generator of {path} (step {checkpoint['step']}), seed {cfg.seed}")
    result = evaluate_pairs(generator, test_set, cfg.n, cfg.seed)
    _report(cfg, path, result.lines(), {"checkpoint": str(path), "step": checkpoint["step"], "generator": which,
                                        "seed": cfg.seed, "n": cfg.n, "values": result.values})


def _require_default_metrics(cfg: DictConfig, what: str) -> None:
    if cfg.metrics is not None or cfg.features != "evaluator":
        raise GanError(f"{what} with the shipped domain evaluator: drop metrics= and features=")


def _report(cfg: DictConfig, path: Path, lines: list[str], record: dict) -> None:
    """Log the report's lines and write the record as JSON to out= (default: beside the checkpoint)."""
    for line in lines:
        log.info(line)
    out = Path(cfg.out) if cfg.out is not None else path.with_suffix(".metrics.json")
    atomic_write(out, lambda f: f.write((json.dumps(record, indent=2) + "\n").encode()))
    log.info(f"Wrote {out}")


def _check(cfg: DictConfig) -> list[str]:
    """The metric list to compute, after refusing settings that cannot work (all problems in one message)."""
    if (cfg.ckpt is None) == (cfg.images is None):
        raise GanError(
            "give exactly one of ckpt= (a checkpoint or run directory) and images= (a folder of PNGs or an .npz)"
        )
    if cfg.features not in FEATURES:
        raise GanError(
            f"features={cfg.features!r}: use evaluator (the shipped MNIST classifier) or inception (Inception-v3 "
            "with inception_weights=<path>)"
        )
    metrics = list(cfg.metrics) if cfg.metrics is not None else DEFAULT_METRICS[cfg.features]
    if d_features.NAME in metrics:
        return _d_features_check(cfg, metrics)
    problems = evaluation_problems(metrics, cfg.n, None, features=cfg.features)
    if cfg.features == "inception":
        if cfg.inception_weights is None:
            problems.append(
                "features=inception needs inception_weights=<a torchvision inception_v3 state_dict (.pth) on this "
                "machine>; nothing is downloaded"
            )
        if cfg.images is not None and cfg.ref_images is None:
            problems.append("features=inception with images= needs ref_images=<a folder of PNGs or an .npz of real images>")
    else:
        problems += [f"{key}= goes with features=inception" for key in ("inception_weights", "ref_images") if cfg[key] is not None]
    if cfg.batch_size <= 0:
        problems.append(f"batch_size={cfg.batch_size} must be positive")
    if problems:
        raise GanError("; ".join(problems))
    return metrics


def _d_features_check(cfg: DictConfig, metrics: list[str]) -> list[str]:
    """Refuse what metrics=[d_features] cannot do (it probes D with the shipped data, not G's images)."""
    problems = []
    if metrics != [d_features.NAME]:
        problems.append("metrics: d_features probes D and the others score G's images: use metrics=[d_features] alone")
    if cfg.ckpt is None:
        problems.append("metrics=[d_features] probes a checkpoint's discriminator: give ckpt=<run or .pt>, not images=")
    if cfg.features != "evaluator":
        problems.append("metrics=[d_features] uses D's own features: drop features=inception")
    if not cfg.labels_per_class or any(k < 1 for k in cfg.labels_per_class):
        problems.append(f"labels_per_class={list(cfg.labels_per_class)} must be a list of positive counts, such as [10,100,1000]")
    if cfg.batch_size <= 0:
        problems.append(f"batch_size={cfg.batch_size} must be positive")
    if problems:
        raise GanError("; ".join(problems))
    return metrics


def _probe_discriminator(cfg: DictConfig, device) -> None:
    """metrics=[d_features]: the linear probe of D's features, printed and written as JSON."""
    path = checkpoint_path(cfg.ckpt)
    checkpoint = load_checkpoint(path)
    log.info(f"Probing the features of the discriminator of {path} (step {checkpoint['step']}), seed {cfg.seed}")
    report = d_features.probe_checkpoint(
        checkpoint, f"ckpt={cfg.ckpt}", cfg.data_root, list(cfg.labels_per_class), cfg.seed, device, cfg.batch_size
    )
    for line in report.table():
        log.info(line)
    record = {"checkpoint": str(path), "step": checkpoint["step"], "seed": cfg.seed, "d_features": report.record()}
    out = Path(cfg.out) if cfg.out is not None else path.with_suffix(".d_features.json")
    atomic_write(out, lambda f: f.write((json.dumps(record, indent=2) + "\n").encode()))
    log.info(f"Wrote {out}")


def _require_shape(cfg: DictConfig, metrics: list[str], shape: tuple[int, ...], source: str) -> None:
    """Refuse samples the features cannot score: the evaluator's 1x28x28 (or Stacked MNIST's 3x28x28),
    Inception's images of 1 or 3 channels."""
    if cfg.features == "inception":
        require_inception_images(shape, source)
    else:
        require_evaluator_shape(shape, source, metrics_image_shape(metrics))


def _suite(cfg: DictConfig, metrics: list[str], n: int, device, checkpoint: dict | None = None):
    """The suite that scores n images: the evaluator's (MNIST or Stacked MNIST), or Inception's
    against ref_images= or, by default, the checkpoint's dataset."""
    if cfg.features != "inception":
        return build_suite(metrics, n, cfg.seed, cfg.data_root, device)
    if cfg.ref_images is not None:
        real = file_images(Path(cfg.ref_images))
    else:
        real = dataset_images(checkpoint["config"].get("dataset") or {}, cfg.data_root)
    return InceptionSuite(metrics, n, cfg.seed, real, cfg.inception_weights, device)


def _network(cfg: DictConfig, suite) -> dict:
    """The metrics file's record of the network that scored the images."""
    if cfg.features == "inception":
        return {"inception_weights": str(cfg.inception_weights), "inception_sha256": suite.network.sha256}
    return {"evaluator_sha256": EVALUATOR_SHA256}


def _images(cfg: DictConfig, metrics: list[str], path: Path):
    """The first n images of `path` (all of them when there are fewer), uint8 (n, C, H, W)."""
    images = read_images(path)
    _require_shape(cfg, metrics, tuple(images.shape[1:]), f"images={path}")
    if len(images) < cfg.n:
        log.info(f"{path} holds {len(images)} images, fewer than n={cfg.n}: scoring all of them")
    else:
        log.info(f"Scoring the first {cfg.n} of the {len(images)} images in {path}")
    return images[: cfg.n]


if __name__ == "__main__":
    main()
