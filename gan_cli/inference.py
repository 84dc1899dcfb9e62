"""Networks for inference, rebuilt from a checkpoint alone (gan-sample, gan-eval, gan-translate).

The stored config names a game of the registry (gan_cli.games) and the networks' settings; the
stored data shape (`image_shape`) sizes them. The file is untrusted input: a model config that names
a Python callable (`_target_`) is refused, and nothing but the registry's classes is ever built.
The game's networks are built once per request, and as many of them as it needs are loaded.
"""

from typing import NamedTuple

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games import game_class
from gan_cli.games.base import Game
from gan_cli.games.translation import TranslationGame
from gan_cli.trust import instantiation_targets

UNNAMED_DOMAINS = ["A", "B"]  # the domains of a run whose dataset config names none (dataset=unpaired)


class StoredModel(NamedTuple):
    """What a checkpoint says its model is, checked: the game class, the run's config, the data shape."""

    game: type[Game]
    cfg: DictConfig
    shape: DataShape

    @property
    def name(self) -> str:
        return self.cfg.model.get("name")


def sampler_from_checkpoint(checkpoint: dict, use_ema: bool = True) -> nn.Module:
    """The network a checkpoint's game samples from (the GANs' G), with its EMA weights when asked
    and present, in eval mode. It keeps the generator contract (`sample_inputs`, `forward(**inputs)`)."""
    return network_from_checkpoint(checkpoint, None, use_ema)


def encoder_from_checkpoint(checkpoint: dict, use_ema: bool = True) -> nn.Module:
    """The network an encoder family's checkpoint (model=ae, vae, ...) encodes images with, with its
    EMA weights when asked and present, in eval mode."""
    model = stored_model(checkpoint)
    if model.game.encoder is None:
        raise GanError(f"the checkpoint's model ({model.name}) has no encoder: "
                       "reconstructions need an encoder family (model=ae, model=vae)")
    return _loaded(checkpoint, model, [model.game.encoder], use_ema)[model.game.encoder]


def translator_from_checkpoint(
    checkpoint: dict, use_ema: bool = True
) -> tuple[type[TranslationGame], dict[str, nn.Module], list[str]]:
    """A translation family's checkpoint (model=cyclegan, ...) as (its game class, all its networks
    (EMA weights where asked and present) in eval mode, its domain names in index order): what
    `game.translate(networks, x, source, target)` and gan_cli.games.translation.translate_images take."""
    model = stored_model(checkpoint)
    if not issubclass(model.game, TranslationGame):
        raise GanError(f"the checkpoint's model ({model.name}) draws images from latents and translates none: use gan-sample")
    return model.game, _loaded(checkpoint, model, None, use_ema), domain_names(model)


def translates(checkpoint: dict) -> bool:
    """Whether the checkpoint's model is a translation family (gan-translate), not a sampler (gan-sample)."""
    return issubclass(stored_model(checkpoint).game, TranslationGame)


def draws_pairs(checkpoint: dict) -> bool:
    """Whether the checkpoint's model draws pairs of images in two domains (CoGAN): the pair metrics score it."""
    return stored_model(checkpoint).game.draws_pairs


def samples_averaged(checkpoint: dict, use_ema: bool) -> bool:
    """Whether sampler_from_checkpoint(checkpoint, use_ema) gives EMA weights (else the raw ones)."""
    return averaged(checkpoint, game_class(checkpoint["config"]["model"]).sampler, use_ema)


def averaged(checkpoint: dict, name: str | None, use_ema: bool) -> bool:
    """Whether network `name` is loaded with its EMA weights: asked for, and the checkpoint has them."""
    return use_ema and (checkpoint.get("ema") or {}).get(name) is not None


def network_from_checkpoint(checkpoint: dict, name: str | None, use_ema: bool = True, trained: bool = True) -> nn.Module:
    """The game's network `name` (None: its sampler) as stored, in eval mode; with trained=False, as
    freshly initialised by its config instead (drawing from torch's global random stream)."""
    model = stored_model(checkpoint)
    if name is None:
        if issubclass(model.game, TranslationGame):
            raise GanError(
                f"the checkpoint's model ({model.name}) translates images between domains and draws none from "
                "latents: use gan-translate ckpt=<run> images=<test, an .npz or a folder> to=<domain>"
            )
        name = model.game.sampler
    return _loaded(checkpoint, model, [name], use_ema, trained)[name]


def domain_names(model: StoredModel) -> list[str]:
    """The domains of a translation model in index order: dataset.domains of its run, else A and B."""
    count = model.shape.num_classes
    names = (model.cfg.get("dataset") or {}).get("domains") or (UNNAMED_DOMAINS if count == len(UNNAMED_DOMAINS) else None)
    if not isinstance(names, (list, ListConfig)) or len(names) != count or len(set(map(str, names))) != count:
        raise GanError(
            f"the checkpoint's config or image shape is malformed (dataset.domains={names} for a model of {count} domains)"
        )
    return [str(name) for name in names]


def stored_model(checkpoint: dict) -> StoredModel:
    """The checkpoint's game, config and data shape, after refusing a malformed or untrusted config."""
    try:
        cfg = OmegaConf.create(checkpoint["config"])
        model_cfg = cfg.model
        shape = DataShape.from_record(checkpoint["image_shape"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise GanError(f"the checkpoint's config or image shape is malformed ({err})") from err
    targets = instantiation_targets(model_cfg, "model.")
    if targets:
        raise GanError(
            f"refusing the checkpoint: its model config sets {', '.join(targets)}, which gan_cli never writes; "
            "networks are built only from the model registry (model.name), never from a callable named in a file"
        )
    return StoredModel(game_class(model_cfg), cfg, shape)


def _loaded(
    checkpoint: dict, model: StoredModel, names: list[str] | None, use_ema: bool, trained: bool = True
) -> dict[str, nn.Module]:
    """The model's networks `names` (None: all), built once from its config; loaded unless trained=False."""
    try:
        networks = model.game.build_networks(model.cfg, model.shape)
    except (RuntimeError, TypeError, ValueError, AttributeError, KeyError) as err:
        raise GanError(f"the checkpoint's model config and image shape describe no buildable model ({err})") from err
    chosen = {}
    for name in list(networks) if names is None else names:
        if name not in networks:
            raise GanError(f"the checkpoint's model ({model.name}) has no network {name!r}")
        if trained:
            _load(networks[name], checkpoint, name, use_ema)
        chosen[name] = networks[name].eval()
    return chosen


def _load(network: nn.Module, checkpoint: dict, name: str, use_ema: bool) -> None:
    """Network `name`'s stored weights (its EMA copy's when asked and present) into `network`."""
    weights = checkpoint["ema"][name] if averaged(checkpoint, name, use_ema) else checkpoint["networks"].get(name)
    mismatch = _first_mismatch(network.state_dict(), weights, name)
    if mismatch:
        raise GanError(
            f"the checkpoint's stored config and its weights disagree: {mismatch}; the file was altered, or its "
            "config and weights come from different runs"
        )
    try:
        network.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise GanError(f"the checkpoint's weights do not fit the model its config describes: {' '.join(str(err).split())}") from err


def _first_mismatch(expected: dict[str, torch.Tensor], weights, name: str) -> str | None:
    """The first reason `weights` cannot load into a network whose state_dict is `expected`, as one
    phrase (load_state_dict would list every tensor, a dozen lines); None when names and shapes fit."""
    if not isinstance(weights, dict):
        return f"the {name} network's weights are a {type(weights).__name__}, not a dict of tensors"
    for key, tensor in expected.items():
        if key not in weights:
            return f"the weights lack {key}, which the model its config describes has"
        shape = tuple(getattr(weights[key], "shape", ()))
        if shape != tuple(tensor.shape):
            return f"{key} has shape {shape} in the weights but {tuple(tensor.shape)} in the model its config describes"
    extra = [key for key in weights if key not in expected]
    if extra:
        return f"the weights hold {extra[0]}, which the model its config describes has not"
    return None
