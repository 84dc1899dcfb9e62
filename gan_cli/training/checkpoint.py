"""Checkpoint files: one self-contained dict of tensors and plain values, written atomically.

A checkpoint holds everything needed to resume exactly and to sample without any other file, keyed
by the names the run's game gives (format 2):

    format_version, config (resolved), origin (the command line), image_shape (the data shape:
    {channels, image_size, num_classes} for images, {sample_shape, num_classes} for vectors), step,
    networks{name}, ema{name}, ema_updates{name}, optimizers{name}, scalers{name},
    game (the game's own state: a replay buffer, BEGAN's k_t, ...), data (the batch order),
    rng (the training steps' generator), global_rng (torch, CUDA, Python, NumPy), fixed_inputs
    (the sample grids' inputs), skipped_steps, evaluation (best-metric bookkeeping).

Format 1 (before games: one G and one D under fixed keys) is upgraded on load, so its files keep
resuming, sampling and evaluating. It loads with `torch.load(weights_only=True)`, which never runs
code stored in the file.
"""

import pickle
import zipfile
from pathlib import Path

import torch

from gan_cli.errors import GanError
from gan_cli.files import atomic_write

FORMAT_VERSION = 2
REQUIRED_KEYS = ("format_version", "config", "image_shape", "step")
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
    weights_by_network = {
        **{f"network {name}": weights for name, weights in checkpoint["networks"].items()},
        **{f"the EMA of {name}": weights for name, weights in checkpoint["ema"].items()},
    }
    for network, weights in weights_by_network.items():
        broken = [name for name, value in weights.items() if value.is_floating_point() and not value.isfinite().all()]
        if broken:
            raise GanError(
                f"not writing {path}: {network}'s {', '.join(broken)} hold NaN or inf at step "
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
    if version == 1:
        checkpoint = upgraded_from_format_1(checkpoint)
    if not isinstance(checkpoint.get("networks"), dict):
        raise GanError(f"{path} is a PyTorch file but not a gan_cli checkpoint (it holds no networks)")
    return checkpoint


def upgraded_from_format_1(checkpoint: dict) -> dict:
    """A format-1 checkpoint (one G and one D under fixed keys, before games) in format 2: the same
    state under the adversarial game's names. Keys a file lacks stay absent (a resume then says so)."""
    renamed = {  # format-2 key -> {name in that key: format-1 key}
        "networks": {"G": "generator", "D": "discriminator"},
        "optimizers": {"generator": "optimizer_g", "discriminator": "optimizer_d"},
        "scalers": {"generator": "scaler_g", "discriminator": "scaler_d"},
    }
    old = dict(checkpoint)
    new = {key: old.pop(key) for key in ("format_version", "config", "origin", "image_shape", "step", "data",
                                         "fixed_inputs", "evaluation") if key in old}
    for key, names in renamed.items():
        new[key] = {name: old[old_key] for name, old_key in names.items() if old_key in old}
    has_ema = old.get("generator_ema") is not None
    new["ema"] = {"G": old["generator_ema"]} if has_ema else {}
    new["ema_updates"] = {"G": old.get("ema_updates", 0)} if has_ema else {}
    new["game"] = {"replay": old.get("replay")}
    for new_key, old_key in (("rng", "latent_rng"), ("global_rng", "rng")):
        if old_key in old:
            new[new_key] = old[old_key]
    new["skipped_steps"] = old.get("skipped_steps", 0)  # absent in checkpoints older than on_nan
    data = new.get("data")
    if isinstance(data, dict) and "generator" in data:  # the batch order's random generator, now `rng`
        new["data"] = {("rng" if key == "generator" else key): value for key, value in data.items()}
    model = new["config"].get("model")
    if isinstance(model, dict):  # the GAN families' game, which format 1 did not name
        new["config"] = {**new["config"], "model": {**model, "game": "adversarial"}}
    new["format_version"] = FORMAT_VERSION
    return new


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
