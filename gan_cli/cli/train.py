"""gan-train: compose the training config with Hydra and hand it to the training loop."""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli import console_script, user_errors
from gan_cli.cli.run_dir import register_resolvers
from gan_cli.files import remove_interrupted_writes
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import training_loop
from gan_cli.training.resume import resumed_config
from gan_cli.validation import check_train_config

log = logging.getLogger("gan_cli.train")
register_resolvers()


@console_script("gan-train")
@hydra.main(version_base="1.3", config_path="pkg://gan_cli.configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the best value of eval.best (for sweepers), or None when the run was not evaluated."""
    with user_errors("gan-train"):
        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        log.info(f"Run directory: {run_dir}")
        for leftover in remove_interrupted_writes(run_dir):
            log.info(f"Removed {leftover.relative_to(run_dir)}, the partial file of a write that was interrupted")
        overrides = list(hydra_cfg.overrides.task)
        checkpoint = None
        if cfg.resume is not None:
            checkpoint = load_checkpoint(cfg.resume)
            cfg, overrides = resumed_config(checkpoint, overrides)
            check_train_config(cfg)
        return training_loop(cfg, run_dir, {"overrides": overrides}, checkpoint)


if __name__ == "__main__":
    main()
