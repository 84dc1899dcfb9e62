"""Networks for inference, rebuilt from a checkpoint alone (gan-sample, gan-eval).

The stored config names a game of the registry (gan_cli.games) and the networks' settings; the
stored data shape (`image_shape`) sizes them. The file is untrusted input: a model config that names
a Python callable (`_target_`) is refused, and nothing but the registry's classes is ever built.
"""

import torch
from omegaconf import OmegaConf
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games import game_class
from gan_cli.trust import instantiation_targets


def sampler_from_checkpoint(checkpoint: dict, use_ema: bool = True) -> nn.Module:
    """The network a checkpoint's game samples from (the GANs' G), with its EMA weights when asked
    and present, in eval mode. It keeps the generator contract (`sample_inputs`, `forward(**inputs)`)."""
    return network_from_checkpoint(checkpoint, None, use_ema)


def encoder_from_checkpoint(checkpoint: dict, use_ema: bool = True) -> nn.Module:
    """The network an encoder family's checkpoint (model=ae, vae, ...) encodes images with, with its
    EMA weights when asked and present, in eval mode."""
    encoder = game_class(checkpoint["config"]["model"]).encoder
    if encoder is None:
        raise GanError(f"the checkpoint's model ({checkpoint['config']['model'].get('name')}) has no encoder: "
                       "reconstructions need an encoder family (model=ae, model=vae)")
    return network_from_checkpoint(checkpoint, encoder, use_ema)


def samples_averaged(checkpoint: dict, use_ema: bool) -> bool:
    """Whether sampler_from_checkpoint(checkpoint, use_ema) gives EMA weights (else the raw ones)."""
    sampler = game_class(checkpoint["config"]["model"]).sampler
    return use_ema and (checkpoint.get("ema") or {}).get(sampler) is not None


def network_from_checkpoint(checkpoint: dict, name: str | None, use_ema: bool = True, trained: bool = True) -> nn.Module:
    """The game's network `name` (None: its sampler) as stored, in eval mode; with trained=False, as
    freshly initialised by its config instead (drawing from torch's global random stream)."""
    game, networks = _game_networks(checkpoint)
    name = name or game.sampler
    if name not in networks:
        raise GanError(f"the checkpoint's model ({checkpoint['config']['model'].get('name')}) has no network {name!r}")
    network = networks[name]
    if not trained:
        return network.eval()
    weights = checkpoint["networks"].get(name)
    if use_ema and (checkpoint.get("ema") or {}).get(name) is not None:
        weights = checkpoint["ema"][name]
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
    return network.eval()


def _game_networks(checkpoint: dict) -> tuple[type, dict[str, nn.Module]]:
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
    game = game_class(model_cfg)
    try:
        return game, game.build_networks(cfg, shape)
    except (RuntimeError, TypeError, ValueError, AttributeError, KeyError) as err:
        raise GanError(f"the checkpoint's model config and image shape describe no buildable model ({err})") from err


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
