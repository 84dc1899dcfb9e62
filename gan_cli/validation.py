"""Value checks the schema's types cannot express. All problems are reported at once, each by key."""

import math

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_cli.device import PRECISIONS
from gan_cli.errors import GanError
from gan_cli.models.dcgan import resolution_stages

# Keys that must be > 0 (and finite) where present (a null optional key is fine).
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
    "optimizer.lr",
    "optimizer.generator.lr",
    "optimizer.discriminator.lr",
    "model.latent_dim",
    "model.g_width",
    "model.d_width",
    "dataset.num_samples",
    "dataset.channels",
    "dataset.image_size",
)

# Keys that hold a probability or a rate in [0, 1] (null = off where the schema allows it), with
# whether 1 itself is allowed: an EMA decay of 1 would never move from the initial weights.
PROBABILITY_KEYS = {
    "train.ema_decay": False,
}

# Keys that name one of a few choices.
CHOICE_KEYS = {
    "train.precision": PRECISIONS,
    "train.on_nan": ("stop", "skip"),
}


def check_train_config(cfg: DictConfig) -> None:
    """Raise GanError naming every key of a gan-train config whose value cannot work."""
    _check_resolvable(cfg)
    problems = []
    for key in POSITIVE_KEYS:
        value = _number(cfg, key, problems)
        if value is not None and not 0 < value < math.inf:
            problems.append(f"{key}={value} must be positive" + ("" if math.isfinite(value) else " and finite"))
    for key, one_allowed in PROBABILITY_KEYS.items():
        value = _number(cfg, key, problems)
        if value is not None and not (0 <= value <= 1 and (one_allowed or value < 1)):
            interval = "[0, 1]" if one_allowed else "[0, 1)"
            problems.append(f"{key}={value} must be in {interval}, or null to turn it off")
    for key, choices in CHOICE_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value not in choices:
            problems.append(f"{key}={value!r} must be one of {', '.join(choices)}")
    for key in ("dataset.num_classes", "train.max_skipped_steps"):
        value = _number(cfg, key, problems)
        if value is not None and value < 0:
            problems.append(f"{key}={value} must be 0 or more")
    image_size = OmegaConf.select(cfg, "dataset.image_size", default=None)
    if cfg.model.name == "dcgan" and isinstance(image_size, int) and 0 < image_size:
        try:
            resolution_stages(image_size)
        except GanError as err:
            problems.append(f"dataset.image_size={image_size}: {err}")
    if problems:
        raise GanError("invalid config: " + "; ".join(problems))


def _check_resolvable(cfg: DictConfig) -> None:
    """Every interpolation (`${...}`) outside Hydra's own settings must resolve to a value of its key's type."""
    for key in cfg:
        if key != "hydra":
            try:
                value = cfg[key]  # resolves an interpolation at the top level
                if OmegaConf.is_config(value):
                    OmegaConf.to_container(value, resolve=True)
            except OmegaConfBaseException as err:
                raise GanError(f"invalid config: {err.full_key}: {str(err).splitlines()[0]}") from None


def _number(cfg: DictConfig, key: str, problems: list[str]) -> int | float | None:
    """The value at `key` if it is a number, None if absent or null (a problem is noted if it is something else)."""
    value = OmegaConf.select(cfg, key, default=None)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    problems.append(f"{key}={value} must be a number")
    return None


def instantiation_targets(tree, prefix: str = "") -> list[str]:
    """Dotted keys of every `_target_` inside a config tree (dicts, lists or their OmegaConf forms).

    A `_target_` names a Python callable that Hydra would call: configs that come from a file must
    not smuggle one in where gan_cli does not expect it.
    """
    if OmegaConf.is_config(tree):
        tree = OmegaConf.to_container(tree, resolve=False)
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    found = []
    for key, value in items:
        if key == "_target_":
            found.append(f"{prefix}{key}")
        found += instantiation_targets(value, f"{prefix}{key}.")
    return found
