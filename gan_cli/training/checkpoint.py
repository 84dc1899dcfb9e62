"""Checkpoint files: one self-contained dict of tensors and plain values, written atomically.

A checkpoint holds everything needed to resume exactly and to sample without any other file:
format version, resolved config, dataset shape, step, G, D, EMA of G, optimizer and scaler states,
RNG states, the data order, and the fixed noise of the sample grids. It loads with
`torch.load(weights_only=True)`, which never runs code stored in the file.
"""

import pickle
import zipfile
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from gan_cli.data.source import ImageShape
from gan_cli.errors import GanError
from gan_cli.files import atomic_write
from gan_cli.models import build_generator

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "config", "image_shape", "step", "generator")


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file as given, or <run dir>/checkpoints/last.pt for a run directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        last = path / "checkpoints" / "last.pt"
        if not last.is_file():
            raise GanError(f"{path} is a folder without checkpoints/last.pt; give a run directory or a .pt file")
        return last
    if not path.is_file():
        raise GanError(f"checkpoint not found: {path} does not exist")
    return path


def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """Write `checkpoint` to `path` atomically (the previous file survives any failure)."""
    try:
        atomic_write(path, lambda f: torch.save(checkpoint, f))
    except OSError as err:
        raise GanError(f"could not write checkpoint {path}: {err.strerror or err}; the previous one is intact") from err


def load_checkpoint(path: str | Path) -> dict:
    """Read and check a checkpoint. Every kind of bad file gets its own message."""
    path = checkpoint_path(path)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut-off one has no directory
        raise GanError(f"{path} is truncated or not a checkpoint file (it is not a complete PyTorch archive)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise GanError(
            f"{path} holds Python objects other than tensors and plain values, and gan_cli never runs code "
            "from a file: it is not a gan_cli checkpoint, or it was altered"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise GanError(f"{path} is truncated or not a checkpoint file ({str(err).splitlines()[0]})") from err
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in REQUIRED_KEYS):
        raise GanError(f"{path} is a PyTorch file but not a gan_cli checkpoint (keys {REQUIRED_KEYS} expected)")
    version = checkpoint["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise GanError(
            f"{path} has checkpoint format version {version}, newer than this gan_cli understands "
            f"({FORMAT_VERSION}); upgrade gan_cli"
        )
    return checkpoint


def generator_from_checkpoint(checkpoint: dict, use_ema: bool = True) -> nn.Module:
    """The generator a checkpoint describes, with its EMA weights when asked and present, in eval mode.

    Only the checkpoint is needed: the stored config names an architecture of the model registry and
    the stored image shape sizes it.
    """
    try:
        model_cfg = OmegaConf.create(checkpoint["config"]["model"])
        shape = ImageShape(**checkpoint["image_shape"])
    except (KeyError, TypeError, ValueError) as err:
        raise GanError(f"the checkpoint's config or image shape is malformed ({err})") from err
    generator = build_generator(model_cfg, shape)
    weights = checkpoint["generator"]
    if use_ema and checkpoint.get("generator_ema") is not None:
        weights = checkpoint["generator_ema"]
    try:
        generator.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise GanError(f"the checkpoint's weights do not fit the model its config describes: {err}") from err
    return generator.eval()
