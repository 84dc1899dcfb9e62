"""Inception-v3 pool features (2048-d) of any images, colour or grayscale, of any size: the features of
FID, KID and precision/recall with gan-eval's features=inception.

The weights are never downloaded: the user names a torchvision inception_v3 state_dict saved on this
machine, for instance with `torch.save(inception_v3(weights="IMAGENET1K_V1").state_dict(), path)`
where the network allows. It is read with torch.load(weights_only=True), which runs no code from the
file, and its SHA-256 names the cached real features: values compare between evaluations with the
same file. They are not the TensorFlow Inception of published FIDs (pytorch-fid's port), so compare
them with your own runs, not with papers.

Images (N, C, H, W) in [-1, 1], C = 1 or 3, are given to the network the way torchvision's ImageNet
models expect: grey repeated to 3 channels, resized to 299x299 (bilinear, with antialiasing, which
matters when shrinking large images), ImageNet mean/std normalisation.
"""

import hashlib
import io
import logging
import pickle
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.errors import GanError
from gan_cli.metrics.evaluator import Scores

log = logging.getLogger(__name__)

INPUT_SIZE = 299  # the size the network was trained at
FEATURE_DIM = 2048  # the global average pool before the classifier
BATCH_SIZE = 32  # images per forward pass: about 1.3 GB of activations at 299x299
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPTIONAL_KEYS = "AuxLogits."  # the auxiliary classifier, used only in training: a file saved without it is fine


@dataclass
class InceptionNetwork:
    model: nn.Module  # images (N, 3, 299, 299), ImageNet-normalised -> pool features (N, 2048)
    sha256: str  # of the weights file


def load_inception(path: str, device: torch.device | str = "cpu") -> InceptionNetwork:
    """The network with the weights at `path` (a torchvision inception_v3 state_dict), in eval mode."""
    file = Path(path).expanduser()
    if not file.is_file():
        problem = "does not exist" if not file.exists() else "is not a file"
        raise GanError(
            f"inception_weights={path} {problem}; give a torchvision inception_v3 state_dict (.pth) on this "
            "machine (nothing is downloaded)"
        )
    raw = file.read_bytes()
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise GanError(
            f"inception_weights={path} is not a PyTorch state_dict that loads without running code "
            f"({str(err).splitlines()[0] if str(err) else type(err).__name__})"
        ) from err
    # torchvision builds its ImageNet weights (ported from TensorFlow, trained on inputs in [-1, 1])
    # with transform_input=True, which maps ImageNet-normalised inputs back to that range: the same
    # here, so a state_dict saved from inception_v3(weights="IMAGENET1K_V1") gives its intended features.
    from torchvision.models import inception_v3  # here: importing torchvision takes 1.5 s (gan_cli.sampling)

    model = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    _load_weights(model, state, path)
    model.fc = nn.Identity()  # forward now ends at the pool (dropout is off in eval mode): (N, 2048)
    return InceptionNetwork(model.to(device).eval().requires_grad_(False), hashlib.sha256(raw).hexdigest())


def _load_weights(model: nn.Module, state, path: str) -> None:
    not_inception = f"inception_weights={path} is not a torchvision inception_v3 state_dict"
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise GanError(f"{not_inception}: it holds no dict of tensors")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # tensors of the wrong shape, one line each after a heading
        lines = [line.strip() for line in str(err).splitlines()[1:]] or [str(err)]
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise GanError(f"{not_inception}: {lines[0]}{more}") from err
    missing = [key for key in missing if not key.startswith(OPTIONAL_KEYS)]
    if missing or unexpected:
        examples = ", ".join((missing + unexpected)[:3])
        raise GanError(f"{not_inception}: {len(missing)} keys missing and {len(unexpected)} unexpected (such as {examples})")


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W), C = 1 or 3, uint8 or float in [-1, 1] -> (N, 3, 299, 299), ImageNet-normalised."""
    # [0, 1], as ImageNet's normalisation assumes
    x = images.float() / 255 if images.dtype == torch.uint8 else (images.float() + 1) / 2
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # grey -> RGB with equal channels
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def require_inception_images(shape: tuple[int, ...], source: str) -> None:
    """Refuse samples that are not images of 1 or 3 channels, naming where they come from."""
    if len(shape) != 3 or shape[0] not in (1, 3):
        found = f"{shape[0]}-D points" if len(shape) == 1 else f"samples of shape {'x'.join(map(str, shape))}"
        raise GanError(f"{source} has {found}; features=inception scores images of 1 or 3 channels (any size)")


@torch.no_grad()
def inception_scores(network: InceptionNetwork, images: torch.Tensor) -> Scores:
    """Pool features (N, 2048) of images (N, C, H, W), uint8 or float in [-1, 1], as Scores without
    posteriors; on the CPU. Batches are converted one at a time (a uint8 set stays small), and
    progress is logged: 10,000 images take many minutes on a CPU."""
    require_inception_images(tuple(images.shape[1:]), "the input")
    device = next(network.model.parameters()).device
    features, started, last_log = [], time.perf_counter(), time.perf_counter()
    for batch in images.split(BATCH_SIZE):
        features.append(network.model(preprocess(batch.to(device))).float().cpu())
        done = sum(len(f) for f in features)
        if time.perf_counter() - last_log > 30 and done < len(images):
            last_log = time.perf_counter()
            log.info(f"Inception features: {done}/{len(images)} images, {done / (last_log - started):.1f} images/s")
    return Scores(torch.cat(features), probs=None)
