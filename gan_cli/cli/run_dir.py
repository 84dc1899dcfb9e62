"""Where a gan-train run writes, and the checks made before Hydra creates anything there.

Two resolvers used by configs/train.yaml:
  gan_run_dir       hydra.run.dir: the resumed run's own folder, or a new timestamped one
  gan_config_subdir hydra.output_subdir: `.hydra` for a new run; a resumed run records its own
                    invocation in `.hydra/resume_<time>` and keeps the first one intact
"""

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gan_cli.cli import user_errors
from gan_cli.errors import GanError
from gan_cli.files import check_writable
from gan_cli.training.checkpoint import checkpoint_path
from gan_cli.validation import check_train_config


def run_dir_for(resume: str | None, new_run_dir: str) -> str:
    if resume is None:
        return new_run_dir
    path = Path(resume).expanduser()
    if path.is_dir():
        return str(path)
    if path.parent.name == "checkpoints":  # <run dir>/checkpoints/<file>.pt
        return str(path.parent.parent)
    return new_run_dir  # a checkpoint from elsewhere continues in a new folder


def config_subdir_for(resume: str | None, timestamp: str) -> str:
    return ".hydra" if resume is None else f".hydra/resume_{timestamp}"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("gan_run_dir", run_dir_for, replace=True)
    OmegaConf.register_new_resolver("gan_config_subdir", config_subdir_for, replace=True)


class RunGuard(Callback):
    """Refuses a gan-train command before its run directory is created or written.

    Checks the config's values, that `resume` points at a checkpoint, that the run directory (or a
    sweep's folder) can be written, and that a new run or sweep does not reuse a folder that already
    holds a run's checkpoints (continuing one requires `resume`).
    """

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        with user_errors("gan-train"):
            check_train_config(config)
            run_dir = Path(config.hydra.run.dir)
            if config.resume is not None:
                checkpoint_path(config.resume)
            else:
                _refuse_existing_checkpoints(run_dir, "checkpoints/*.pt", "hydra.run.dir")
            check_writable(run_dir, "the run directory")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        with user_errors("gan-train"):
            sweep_dir = Path(config.hydra.sweep.dir)
            _refuse_existing_checkpoints(sweep_dir, "**/checkpoints/*.pt", "hydra.sweep.dir")
            check_writable(sweep_dir, "the sweep folder")

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        """Each job of a multirun has its own overrides: check its values too."""
        with user_errors("gan-train"):
            check_train_config(config)


def _refuse_existing_checkpoints(folder: Path, pattern: str, key: str) -> None:
    found = sorted(folder.glob(pattern))
    if found:
        run_dir = found[0].parent.parent
        raise GanError(
            f"{folder} already holds a run's checkpoints; continue that run with resume={run_dir}, or choose "
            f"another {key}"
        )
