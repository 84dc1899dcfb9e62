"""Checkpoint files: one self-contained dict of tensors and plain values, written atomically.

A checkpoint holds everything needed to resume exactly and to sample without any other file:
format version, resolved config, data shape (`image_shape`: {channels, image_size, num_classes} for
images, {sample_shape, num_classes} for vector data), step, G, D, EMA of G, optimizer and scaler states,
RNG states, the data order, and the fixed noise of the sample grids. It loads with
`torch.load(weights_only=True)`, which never runs code stored in the file.
"""

import pickle
import zipfile
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.files import atomic_write
from gan_cli.models import build_generator, build_networks
from gan_cli.validation import instantiation_targets

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "config", "image_shape", "step", "generator")
NETWORKS = ("generator", "discriminator", "generator_ema")
ZIP_SIGNATURE = b"PK\x03\x04"  # torch.save writes a zip archive, which starts with these bytes


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file as given, or <run dir>/checkpoints/last.pt for a run directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        last = path / "checkpoints" / "last.pt"
        if not last.is_file():
            raise GanError(
                f"{path} holds no complete checkpoint (checkpoints/last.pt): it is not a run directory, or its "
                "run stopped before writing the first one; give a run directory or a .pt file"
            )
        return last
    if not path.is_file():
        raise GanError(f"checkpoint not found: {path} does not exist")
    return path


def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """Write `checkpoint` to `path` atomically: the previous file survives any failure.

    A checkpoint whose networks hold NaN or inf is never written: resuming from it could only fail.
    """
    for network in NETWORKS:
        weights = checkpoint.get(network) or {}
        broken = [name for name, value in weights.items() if value.is_floating_point() and not value.isfinite().all()]
        if broken:
            raise GanError(
                f"not writing {path}: the {network}'s {', '.join(broken)} hold NaN or inf at step "
                f"{checkpoint['step']}; the previous checkpoint is kept. Lower the learning rate and resume from it"
            )
    atomic_write(path, lambda f: torch.save(checkpoint, f))


def load_checkpoint(path: str | Path) -> dict:
    """Read and check a checkpoint. Every kind of bad file gets its own message."""
    path = checkpoint_path(path)
    _check_archive(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise GanError(
            f"{path} holds Python objects other than tensors and plain values, and gan_cli never runs code "
            "from a file: it is not a gan_cli checkpoint, or it was altered"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise GanError(f"{path} is a damaged PyTorch archive ({str(err).splitlines()[0]}); use an intact copy") from err
    if (
        not isinstance(checkpoint, dict)
        or any(key not in checkpoint for key in REQUIRED_KEYS)
        or not isinstance(checkpoint["format_version"], int)
        or not isinstance(checkpoint["config"], dict)
    ):
        raise GanError(f"{path} is a PyTorch file but not a gan_cli checkpoint (keys {REQUIRED_KEYS} expected)")
    version = checkpoint["format_version"]
    if version > FORMAT_VERSION:
        raise GanError(
            f"{path} has checkpoint format version {version}, newer than this gan_cli understands "
            f"({FORMAT_VERSION}); upgrade gan_cli"
        )
    return checkpoint


def _check_archive(path: Path) -> None:
    """torch.save writes a zip archive: check that the file is one, complete and with intact contents."""
    try:
        with path.open("rb") as f:
            if f.read(len(ZIP_SIGNATURE)) != ZIP_SIGNATURE:
                raise GanError(f"{path} is not a checkpoint file: it is not a PyTorch archive (what torch.save writes)")
        if not zipfile.is_zipfile(path):  # an archive's directory is at its end: a cut-off file has none
            raise GanError(
                f"{path} is truncated: it starts like a checkpoint but its end is missing ({path.stat().st_size} "
                "bytes); the write or the copy was cut off, use a complete copy"
            )
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # torch.load does not verify the checksums: a flipped bit would load
    except OSError as err:
        raise GanError(f"cannot read {path}: {err.strerror or err}") from err
    except zipfile.BadZipFile as err:
        damaged = str(err)
    if damaged:
        raise GanError(f"{path} is a damaged PyTorch archive ({damaged} fails its check); use an intact copy")


def generator_from_checkpoint(checkpoint: dict, use_ema: bool = True) -> nn.Module:
    """The generator a checkpoint describes, with its EMA weights when asked and present, in eval mode."""
    weights = checkpoint["generator"]
    if use_ema and checkpoint.get("generator_ema") is not None:
        weights = checkpoint["generator_ema"]
    return _network_from_checkpoint(checkpoint, build_generator, weights, "generator")


def discriminator_from_checkpoint(checkpoint: dict, trained: bool = True) -> nn.Module:
    """The discriminator a checkpoint describes, in eval mode: with its trained weights, or (trained=False)
    freshly initialised as the config says, which draws from torch's global random stream."""
    if not isinstance(checkpoint.get("discriminator"), dict):
        raise GanError("the checkpoint holds no discriminator weights (its `discriminator` entry is missing)")
    loss = checkpoint["config"].get("loss") or {}
    penalty = bool(loss.get("gradient_penalty") or loss.get("r1"))  # decides d_norm=auto, as in training

    def build(model_cfg, shape):
        return build_networks(model_cfg, shape, penalty)[1]

    return _network_from_checkpoint(checkpoint, build, checkpoint["discriminator"] if trained else None, "discriminator")


def _network_from_checkpoint(checkpoint: dict, build, weights: dict | None, name: str) -> nn.Module:
    """build(model config, data shape) -> the network, loaded with `weights` (None: as initialised), in eval mode.

    Only the checkpoint is needed: the stored config names an architecture of the model registry and
    the stored data shape (`image_shape`) sizes it. The file is untrusted input: a model config that names a Python
    callable (`_target_`) is refused, and nothing but the registry's classes is ever built.
    """
    try:
        model_cfg = OmegaConf.create(checkpoint["config"]["model"])
        shape = DataShape.from_record(checkpoint["image_shape"])
    except (KeyError, TypeError, ValueError) as err:
        raise GanError(f"the checkpoint's config or image shape is malformed ({err})") from err
    targets = instantiation_targets(model_cfg, "model.")
    if targets:
        raise GanError(
            f"refusing the checkpoint: its model config sets {', '.join(targets)}, which gan_cli never writes; "
            "networks are built only from the model registry (model.name), never from a callable named in a file"
        )
    try:
        network = build(model_cfg, shape)
    except (RuntimeError, TypeError, ValueError, AttributeError, KeyError) as err:
        raise GanError(f"the checkpoint's model config and image shape describe no buildable model ({err})") from err
    if weights is None:
        return network.eval()
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


def _first_mismatch(expected: dict[str, torch.Tensor], weights, name: str) -> str | None:
    """The first reason `weights` cannot load into a network whose state_dict is `expected`, as one
    phrase (load_state_dict would list every tensor, a dozen lines); None when names and shapes fit."""
    if not isinstance(weights, dict):
        return f"the {name}'s weights are a {type(weights).__name__}, not a dict of tensors"
    for name, tensor in expected.items():
        if name not in weights:
            return f"the weights lack {name}, which the model its config describes has"
        shape = tuple(getattr(weights[name], "shape", ()))
        if shape != tuple(tensor.shape):
            return f"{name} has shape {shape} in the weights but {tuple(tensor.shape)} in the model its config describes"
    extra = [name for name in weights if name not in expected]
    if extra:
        return f"the weights hold {extra[0]}, which the model its config describes has not"
    return None
