"""gan-translate: a config checked, images of one domain read (the model's test images, an .npz or a
folder of PNGs), translated into another domain by a translation model, and written.

Images are uint8 (N, C, H, W) as read, float (N, C, H, W) in [-1, 1] as translated. Everything a
request can get wrong is refused before anything is written.
"""

import logging
import os
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.device import select_device
from gan_cli.errors import GanError
from gan_cli.games.translation import TranslationGame, translate_images
from gan_cli.inference import averaged, translator_from_checkpoint
from gan_cli.sampling.files import from_uint8, output_kind, row_groups_grid, save_npz, save_png, write_images
from gan_cli.training.checkpoint import checkpoint_path, load_checkpoint

log = logging.getLogger(__name__)

TEST_IMAGES = "test"  # images=test: the model's own test images of domain `from`
# What gan-translate writes, by the output_kind of `out`; any other name is refused.
TRANSLATION_OUTPUTS = {
    "png": "a grid of inputs over their translations over their reconstructions (out=<name>.png)",
    "npz": "the translations and their inputs as arrays (out=<name>.npz)",
    "folder": "one PNG per translation (out=<folder>/)",
}


def translate_requested(cfg) -> str:
    """Do what a gan-translate config asks: read the checkpoint and the images, translate the first n
    into domain `to`, write them to `out`; returns a summary of what was written."""
    if cfg.ckpt is None:
        raise GanError("ckpt= is required: a checkpoint file or a run directory (e.g. ckpt=outputs/<date>/<time>)")
    check_translate_config(cfg)  # before reading the checkpoint: a mistyped option costs no loading
    path = checkpoint_path(cfg.ckpt)
    checkpoint = load_checkpoint(path)
    game, networks, domains = translator_from_checkpoint(checkpoint, cfg.ema)
    source, target = chosen_domains(cfg, domains)
    shape = DataShape.from_record(checkpoint["image_shape"])  # readable: the networks were built from it
    images = translation_inputs(cfg, domains[source], shape, checkpoint["config"].get("dataset") or {})
    device = select_device(cfg.device)
    networks = {name: network.to(device) for name, network in networks.items()}
    written = write_translations(game, networks, domains, images, cfg, source, target)
    which = "EMA" if any(averaged(checkpoint, name, cfg.ema) for name in networks) else "raw"
    return f"{written}, by the {which} generators of {path}, step {checkpoint['step']}"


def check_translate_config(cfg) -> None:
    """Refuse what cannot work before the checkpoint is read: one line naming each option at fault.
    (What depends on the model, its domains and image shape, is checked once it is read.)"""
    problems = [f"{key}={cfg[key]} must be positive" for key in ("n", "nrow", "batch_size") if cfg[key] < 1]
    if not cfg.out:
        problems.append("out= is empty: give the file or folder to write")
    elif output_kind(cfg.out) not in TRANSLATION_OUTPUTS:
        problems.append(f"out={cfg.out}: gan-translate writes {', or '.join(TRANSLATION_OUTPUTS.values())}")
    if not cfg.images:
        problems.append(f"images= is empty: give {TEST_IMAGES} (the model's test images), an .npz or a folder of PNGs")
    if cfg.data_root is not None and cfg.images != TEST_IMAGES:
        problems.append(f"data_root= is where images={TEST_IMAGES} reads the model's test images; images={cfg.images} "
                        "needs none: drop data_root")
    if cfg.to is not None and cfg["from"] == cfg.to:
        problems.append(f"from={cfg['from']} and to={cfg.to} are the same domain: translate into another one")
    if problems:
        raise GanError("; ".join(problems))


def chosen_domains(cfg, domains: list[str]) -> tuple[int, int]:
    """(source, target): the indices into `domains` of the images' domain (`from`) and of `to`."""
    listed = ", ".join(domains)
    if cfg.to is None:
        raise GanError(f"to= is required: the domain to translate into, one of this model's domains ({listed})")
    for key in ("to", "from"):
        if cfg[key] is not None and cfg[key] not in domains:
            raise GanError(f"{key}={cfg[key]} is not a domain of this model; its domains are {listed}")
    target = domains.index(cfg.to)
    if cfg["from"] is not None:
        return domains.index(cfg["from"]), target
    if len(domains) > 2:
        raise GanError(
            f"from= is required: this model translates between {len(domains)} domains ({listed}); "
            "name the domain of the images"
        )
    return 1 - target, target


def translation_inputs(cfg, domain: str, shape: DataShape, dataset: dict) -> torch.Tensor:
    """The first n images to translate, uint8 (n, C, H, W) in the model's shape: the test images of
    `domain` of the model's `dataset` config (images=test), or those of an .npz or a PNG folder."""
    if cfg.images == TEST_IMAGES:
        images, source = stored_test_set(dataset, cfg.data_root).images[domain], f"the test images of {domain}"
    else:
        from gan_cli.metrics.image_files import read_images  # (reads PIL and numpy only)

        images, source = read_images(Path(cfg.images)), f"images={cfg.images}"
    if not len(images):
        raise GanError(f"{source}: there are no images to translate")
    if len(images) < cfg.n:
        log.info(f"{source}: {len(images)} images, fewer than n={cfg.n}: translating all of them")
    return fitted(images[: cfg.n], shape, f"images={cfg.images}")


def fitted(images: torch.Tensor, shape: DataShape, source: str) -> torch.Tensor:
    """`images` (N, c, h, w) in the model's shape (C, S, S): as they are, or 1-channel ones repeated
    over a 3-channel model's channels (grey digits into a colour model); any other shape is refused."""
    channels, size = shape.channels, shape.image_size
    if tuple(images.shape[2:]) == (size, size):
        if images.shape[1] == channels:
            return images
        if images.shape[1] == 1 and channels == 3:
            return images.repeat(1, 3, 1, 1)
    grey = f" (or 1x{size}x{size}, repeated over its 3 channels)" if channels == 3 else ""
    raise GanError(
        f"{source} are {'x'.join(map(str, images.shape[1:]))} images, and this checkpoint's model translates "
        f"{channels}x{size}x{size} images{grey}"
    )


def stored_test_set(dataset: dict, data_root: str | None):
    """The DomainTestSet of the dataset config a model was trained on (a checkpoint's), read (never
    downloaded) from the first of `data_root`, its dataset.root and $GAN_DATA_ROOT that holds them."""
    from gan_cli.data.domains import domain_test_set

    if "root" not in dataset:  # dataset=unpaired: its own dataset.path
        if data_root is not None:
            raise GanError(f"data_root= replaces dataset.root, and the model's dataset={dataset.get('name')} has "
                           "none (dataset=unpaired reads dataset.path): drop data_root, or give images=<a folder of PNGs>")
        roots = [None]
    else:
        roots = list(dict.fromkeys(root for root in (data_root, dataset["root"], os.environ.get("GAN_DATA_ROOT")) if root))
    failures = []
    for root in roots:
        cfg = OmegaConf.create({**dataset, **({"root": root, "download": False} if root is not None else {})})
        try:
            return domain_test_set(cfg)
        except GanError as err:
            failures.append(f"{'' if root is None else f'under {root}: '}{err}")
    raise GanError(
        f"images={TEST_IMAGES} reads the test images of the model's dataset ({dataset.get('name')}), and cannot "
        f"({'; '.join(failures)}); give data_root=<the folder holding its files>, or images=<an .npz or a folder of PNGs>"
    )


def write_translations(
    game: type[TranslationGame], networks: dict[str, nn.Module], domains: list[str], images: torch.Tensor, cfg,
    source: int, target: int,
) -> str:
    """Translate `images` (uint8 (N, C, H, W) of domain `source`) into `target` and write them to
    `out`: a grid (with the translations translated back: the reconstructions), an .npz or PNG files.
    Returns a summary of what was written."""
    x = from_uint8(images)  # (N, C, H, W) in [-1, 1]
    torch.manual_seed(cfg.seed)
    translated = translate_images(game, networks, x, source, target, cfg.batch_size)
    out, kind = Path(cfg.out), output_kind(cfg.out)
    if kind == "png":
        back = translate_images(game, networks, translated, target, source, cfg.batch_size)
        save_png(row_groups_grid([x, translated, back], cfg.nrow), out)
        what = "a grid of inputs, translations and reconstructions"
    elif kind == "npz":
        save_npz(translated, out, source_images=images.permute(0, 2, 3, 1).numpy())
        what = "arrays `images` (the translations) and `source_images`"
    else:
        write_images(translated, out, "images")
        what = "one PNG per translation"
    return f"{len(images)} images of {domains[source]} translated into {domains[target]}: {what} to {out}"
