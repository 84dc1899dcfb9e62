"""The config of a resumed run: the stored run's command line plus the new one, composed again.

Hydra composes `train` with the original overrides followed by the new ones (later ones win), so
interpolations such as `optimizer.generator.lr: ${..lr}` follow a changed `optimizer.lr`. The result
is compared with the stored resolved config: keys that would change the model, the data or the
loss are refused with the list of differences; the keys below may change and are logged. A run
whose learning rate came from a default that has changed since keeps its own rate.

The stored overrides come from a file, which may have been altered: they must be a list of strings,
and none may touch Hydra's own settings (`hydra.*`, `hydra/...`), which a gan-train command line
never stores. What they compose is checked like any command line, and optimizers are built only from
torch.optim (gan_cli.training.optim).
"""

import logging

from hydra import compose
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_cli.errors import GanError

log = logging.getLogger(__name__)

MUTABLE_ON_RESUME = (
    "train.steps",
    "train.epochs",
    "train.precision",
    "train.channels_last",
    "train.compile",
    "train.compile_mode",
    "train.on_nan",
    "train.max_skipped_steps",
    "train.on_divergence",
    "train.divergence",
    "log",
    "samples.every",
    "checkpoint",
    "eval",
    "device",
    "resume",
    "dataset.root",
    "dataset.path",
    "dataset.download",
    "dataset.workers",
    "optimizer.lr",
    "optimizer.generator.lr",
    "optimizer.discriminator.lr",
    "optimizer.generator.fused",
    "optimizer.discriminator.fused",
    "optimizer.encoder.lr",
    "optimizer.encoder.fused",
)


def resumed_config(checkpoint: dict, new_overrides: list[str]) -> tuple[DictConfig, list[str]]:
    """(config to continue with, its full override list). Call inside a Hydra app (gan-train)."""
    # A launcher (launcher=slurm) only says where a sweep's jobs ran: a resumed run does not need its plugin.
    stored, new = (
        [o for o in overrides if not o.startswith(("resume=", "launcher="))]
        for overrides in (stored_overrides(checkpoint), new_overrides)
    )
    stored_config = _in_current_names(checkpoint["config"])
    overrides = stored + _kept_learning_rate(stored_config, _composed(stored)) + new
    cfg = _composed(overrides)
    changes = _differences(stored_config, OmegaConf.to_container(cfg, resolve=True))
    # Keys the stored config lacks came with a later gan_cli (an optimizer node, a guard's setting): the
    # run never set them, so their defaults are no change of what it learns.
    stored_keys = _leaves(stored_config)
    refused = [change for key, change in changes.items() if key in stored_keys and not _mutable(key)]
    if refused:
        raise GanError(
            "cannot resume with a changed model, data or training recipe: " + "; ".join(refused)
            + ". Resume without these overrides, or start a new run"
        )
    for change in changes.values():
        log.info(f"Resume changes {change}")
    return cfg, overrides


def _composed(overrides: list[str]) -> DictConfig:
    try:
        cfg = compose(config_name="train", overrides=overrides)
        OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise GanError(f"the run's command line and this one do not compose ({' '.join(str(err).split())})") from err
    return cfg


def _kept_learning_rate(stored_config: dict, recomposed: DictConfig) -> list[str]:
    """The run's own optimizer.lr as an override, when its command line composes to another one today.

    A newer gan_cli may have a different default rate (2e-4 before optimizer=adam_fast became the
    default): the run keeps the rate it trained with, unless the new command line sets one.
    """
    optimizer = stored_config.get("optimizer")
    stored_lr = optimizer.get("lr") if isinstance(optimizer, dict) else None
    if not isinstance(stored_lr, float) or OmegaConf.select(recomposed, "optimizer.lr") == stored_lr:
        return []
    return [f"optimizer.lr={stored_lr!r}"]


def stored_overrides(checkpoint: dict) -> list[str]:
    """The command line a checkpoint stores (origin.overrides), refused when it is not a list of strings
    or touches Hydra's own settings."""
    origin = checkpoint.get("origin")
    overrides = origin.get("overrides") if isinstance(origin, dict) else None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise GanError("the checkpoint holds no command line to resume from (origin.overrides); it cannot be resumed")
    foreign = [o for o in overrides if o.lstrip("+~").startswith("hydra")]
    if foreign:
        raise GanError(
            f"refusing to resume: the checkpoint's stored command line holds {', '.join(foreign)}, which gan-train "
            "never stores (the file was altered)"
        )
    return overrides


def _in_current_names(config: dict) -> dict:
    """A stored config with the names of today's configs. Before loss=wgan_gp had its own name, its
    runs stored `loss.name: wgan` with a gradient penalty and no clipping: composed again, their command
    line says wgan_gp, which is the same loss, not a change."""
    loss = config.get("loss")
    if isinstance(loss, dict) and loss.get("name") == "wgan" and loss.get("gradient_penalty") and loss.get("clip") is None:
        return {**config, "loss": {**loss, "name": "wgan_gp"}}
    return config


def _mutable(key: str) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in MUTABLE_ON_RESUME)


def _differences(old: dict, new: dict) -> dict[str, str]:
    """{dotted key: 'key: old -> new'} for every leaf that differs."""
    old_leaves, new_leaves = _leaves(old), _leaves(new)
    missing = "<absent>"
    return {
        key: f"{key}: {old_leaves.get(key, missing)} -> {new_leaves.get(key, missing)}"
        for key in sorted(old_leaves.keys() | new_leaves.keys())
        if old_leaves.get(key, missing) != new_leaves.get(key, missing)
    }


def _leaves(tree: dict, prefix: str = "") -> dict:
    leaves = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            leaves.update(_leaves(value, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves
