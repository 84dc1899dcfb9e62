"""Where a gan-train run writes, and the checks made before Hydra creates anything there.

Resolvers used by configs/train.yaml:
  gan_run_dir       hydra.run.dir: the resumed run's own folder, or a new timestamped one
  gan_config_subdir hydra.output_subdir: `.hydra` for a new run; a resumed run records its own
                    invocation in `.hydra/resume_<time>` and keeps the first one intact
  gan_now           like Hydra's `now`, but the same instant in every process of a torchrun, so that
                    they all name the same run directory
  gan_job_dir       hydra.sweep.subdir: `<job number>_<its overrides>`, one valid folder name per job
  gan_direction     an Optuna preset's direction: the way its metric (eval.best) improves
"""

import hashlib
import os
import time
from pathlib import Path
from urllib.parse import quote

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gan_cli.cli import user_errors
from gan_cli.errors import GanError
from gan_cli.files import check_writable
from gan_cli.metrics.suite import higher_is_better
from gan_cli.training import distributed
from gan_cli.training.checkpoint import checkpoint_path
from gan_cli.training.evaluation import evaluates
from gan_cli.validation import check_train_config

STARTED = time.time()  # this command's start, unless torchrun's rank 0 gave its own (gan_now)
# Characters kept as they are in a job folder's name; any other is percent-encoded (`/` -> %2F), so
# the name is one valid folder name and two different override lists never share one.
JOB_DIR_SAFE = "=,+@"
MAX_JOB_DIR = 200  # bytes; file systems allow 255 per name
# Set by schedulers that start a command again after a failure or preemption.
RESTART_COUNTS = ("SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT")


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


def start_time(pattern: str) -> str:
    started = float(os.environ.get(distributed.START_TIME_VARIABLE, STARTED))
    return time.strftime(pattern, time.localtime(started))


def job_dir_name(number: int, overrides: str) -> str:
    """`3_loss=hinge,optimizer.lr=2e-4` for job 3 given `loss=hinge,optimizer.lr=2e-4`. The job number
    keeps names unique and in order; an over-long name is cut and ends with a digest of the whole."""
    name = f"{number}_{quote(overrides, safe=JOB_DIR_SAFE)}" if overrides else str(number)
    if len(name) > MAX_JOB_DIR:
        name = f"{name[: MAX_JOB_DIR - 13]}~{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return name


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("gan_run_dir", run_dir_for, replace=True)
    OmegaConf.register_new_resolver("gan_config_subdir", config_subdir_for, replace=True)
    OmegaConf.register_new_resolver("gan_now", start_time, replace=True)
    OmegaConf.register_new_resolver("gan_job_dir", job_dir_name, replace=True)
    OmegaConf.register_new_resolver("gan_direction", optimisation_direction, replace=True)


def optimisation_direction(metric: str) -> str:
    """Optuna's direction for the metric value `metric`: maximize for is, precision, ...; minimize for fid, kid."""
    return "maximize" if higher_is_better(metric) else "minimize"


def restarted_run(run_dir: Path) -> str | None:
    """Why this command continues the run in `run_dir` by itself: a scheduler started it again (a
    SLURM requeue, a torchrun restart) and an earlier attempt left a checkpoint there. None for any
    other command, which must give `resume=` to continue a run."""
    restarts = [f"{name}={os.environ[name]}" for name in RESTART_COUNTS if os.environ.get(name, "0") not in ("", "0")]
    if restarts and (run_dir / "checkpoints" / "last.pt").is_file():
        return f"restarted by the scheduler ({', '.join(restarts)})"
    return None


class RunGuard(Callback):
    """Refuses a gan-train command before its run directory is created or written.

    Checks the config's values, that `resume` points at a checkpoint, that the run directory (or a
    sweep's folder) can be written, and that a new run or sweep does not reuse a folder that already
    holds a run's checkpoints (continuing one requires `resume`, unless a scheduler restarted this
    very command: see `restarted_run`). Under torchrun, that the batch splits over the processes and
    that no sweep is started in every process; for an Optuna search, that its runs are evaluated.
    """

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        with user_errors("gan-train"):
            check_train_config(config)
            _check_processes(config)
            run_dir = Path(config.hydra.run.dir)
            if config.resume is not None:
                checkpoint_path(config.resume)
            elif restarted_run(run_dir) is None:
                _refuse_existing_checkpoints(run_dir, "checkpoints/*.pt", "hydra.run.dir")
            check_writable(run_dir, "the run directory")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        with user_errors("gan-train"):
            if distributed.current().distributed:
                raise GanError(
                    "a sweep (-m, hparams_search=, launcher=) cannot run inside torchrun, which would run it once per "
                    "process: start one torchrun per job, or use launcher=slurm with several tasks per node"
                )
            if "optuna" in config.hydra.sweeper._target_.lower() and not evaluates(config):
                raise GanError(
                    "an Optuna search optimises the value of eval.best, and these runs are not evaluated: set "
                    "eval.every, and use dataset=mnist or eval.required=true (hparams_search presets do)"
                )
            sweep_dir = Path(config.hydra.sweep.dir)
            _refuse_existing_checkpoints(sweep_dir, "**/checkpoints/*.pt", "hydra.sweep.dir")
            check_writable(sweep_dir, "the sweep folder")

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        """Each job of a multirun has its own overrides: check its values too."""
        with user_errors("gan-train"):
            check_train_config(config)
            _check_processes(config)


def _check_processes(config: DictConfig) -> None:
    processes = distributed.launched_processes()
    if processes > 1:
        distributed.per_process_batch(config.train.batch_size, processes)


def _refuse_existing_checkpoints(folder: Path, pattern: str, key: str) -> None:
    found = sorted(folder.glob(pattern))
    if found:
        run_dir = found[0].parent.parent
        raise GanError(
            f"{folder} already holds a run's checkpoints; continue that run with resume={run_dir}, or choose "
            f"another {key}"
        )
