"""gan-translate: images of one domain into another with a translation model's checkpoint (grid,
PNG files or .npz), needing nothing but the checkpoint (and, for images=test, its dataset's files)."""

import logging

import hydra
from omegaconf import DictConfig

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli import console_script, user_errors
from gan_cli.sampling.translations import translate_requested

log = logging.getLogger("gan_cli.translate")


@console_script("gan-translate", path_keys=("ckpt", "images", "out", "data_root"))
@hydra.main(version_base="1.3", config_path="pkg://gan_cli.configs", config_name="translate")
def main(cfg: DictConfig) -> None:
    with user_errors("gan-translate"):
        log.info(f"Wrote {translate_requested(cfg)}")


if __name__ == "__main__":
    main()
