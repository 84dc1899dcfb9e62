"""gan-sample: images from a checkpoint (grid, PNG files or .npz), needing nothing but the checkpoint."""

import logging

import hydra
from omegaconf import DictConfig

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli import console_script, user_errors
from gan_cli.device import select_device
from gan_cli.errors import GanError
from gan_cli.sampling.requests import check_sample_config, write_requested_samples
from gan_cli.inference import encoder_from_checkpoint, sampler_from_checkpoint, samples_averaged
from gan_cli.models.autoencoder import choose_latent_source
from gan_cli.training.checkpoint import checkpoint_path, load_checkpoint

log = logging.getLogger("gan_cli.sample")


@console_script("gan-sample", path_keys=("ckpt", "out", "terms"))  # terms: quoted too, `[1] - [2]` is no Hydra value
@hydra.main(version_base="1.3", config_path="pkg://gan_cli.configs", config_name="sample")
def main(cfg: DictConfig) -> None:
    with user_errors("gan-sample"):
        if cfg.ckpt is None:
            raise GanError("ckpt= is required: a checkpoint file or a run directory (e.g. ckpt=outputs/<date>/<time>)")
        check_sample_config(cfg)  # before reading the checkpoint: a mistyped option costs no loading
        path = checkpoint_path(cfg.ckpt)
        checkpoint = load_checkpoint(path)
        device = select_device(cfg.device)
        generator = sampler_from_checkpoint(checkpoint, cfg.ema).to(device)
        choose_latent_source(generator, cfg.sampler)  # the encoder families: prior or fitted codes
        encoder = encoder_from_checkpoint(checkpoint, cfg.ema).to(device) if cfg.mode == "reconstruct" else None
        written = write_requested_samples(generator, cfg, encoder)
        which = "EMA" if samples_averaged(checkpoint, cfg.ema) else "raw"
        log.info(f"Wrote {written} from the {which} generator of {path}, step {checkpoint['step']}")


if __name__ == "__main__":
    main()
