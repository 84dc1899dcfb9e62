"""Value checks the schema's types cannot express. All problems are reported at once, each by key."""

from omegaconf import DictConfig, OmegaConf

from gan_cli.device import PRECISIONS
from gan_cli.errors import GanError
from gan_cli.metrics.suite import evaluation_problems
from gan_cli.models.dcgan import resolution_stages

# Keys that must be > 0 where present (a null optional key is fine).
POSITIVE_KEYS = (
    "train.batch_size",
    "train.steps",
    "train.epochs",
    "train.d_steps",
    "log.every",
    "samples.every",
    "samples.n",
    "checkpoint.every",
    "checkpoint.keep_every",
    "eval.every",
    "optimizer.generator.lr",
    "optimizer.discriminator.lr",
    "model.latent_dim",
    "model.g_width",
    "model.d_width",
    "dataset.num_samples",
    "dataset.channels",
    "dataset.image_size",
)


def check_train_config(cfg: DictConfig) -> None:
    """Raise GanError naming every key of a gan-train config whose value cannot work."""
    problems = []
    for key in POSITIVE_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value <= 0:
            problems.append(f"{key}={value} must be positive")
    num_classes = OmegaConf.select(cfg, "dataset.num_classes", default=None)
    if num_classes is not None and num_classes < 0:
        problems.append(f"dataset.num_classes={num_classes} must be 0 (unlabelled) or more")
    decay = cfg.train.ema_decay
    if decay is not None and not 0 <= decay < 1:
        problems.append(f"train.ema_decay={decay} must be in [0, 1), or null to disable the EMA")
    if cfg.train.precision not in PRECISIONS:
        problems.append(f"train.precision={cfg.train.precision!r} must be one of {', '.join(PRECISIONS)}")
    image_size = OmegaConf.select(cfg, "dataset.image_size", default=None)
    if cfg.model.name == "dcgan" and image_size is not None and image_size > 0:
        try:
            resolution_stages(image_size)
        except GanError as err:
            problems.append(f"dataset.image_size={image_size}: {err}")
    problems += evaluation_problems(cfg.eval.metrics, cfg.eval.n, cfg.eval.best, "eval.")
    if problems:
        raise GanError("invalid config: " + "; ".join(problems))
