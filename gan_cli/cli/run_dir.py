"""Where a gan-train run writes, and the checks made before Hydra creates anything there.

Resolvers used by configs/train.yaml:
  gan_run_dir       hydra.run.dir: the resumed run's own folder, or a new timestamped one
                    (outputs/<date>/<time>, which RunGuard makes the run's own: `<time>_2` if taken)
  gan_config_subdir hydra.output_subdir: `.hydra` for a run's first command; any later command in its
                    folder (a resume, a restart, a resumed sweep's job) records its own invocation in
                    `.hydra/resume_<time>` and keeps the first one intact
  gan_now           like Hydra's `now`, but the same instant in every process of a torchrun, so that
                    they all name the same run directory (also names a sweep's folder)
  gan_job_dir       hydra.sweep.subdir: `<job number>_<its overrides>`, one valid folder name per job
                    (a resumed sweep's job: the folder the sweep made for its number)
  gan_direction     an Optuna preset's direction: the way its metric (eval.best) improves
"""

import hashlib
import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from gan_cli.cli import quote_path, user_errors
from gan_cli.data import check_dataset_files
from gan_cli.errors import GanError
from gan_cli.files import check_writable, create_new_folder
from gan_cli.metrics.suite import higher_is_better
from gan_cli.sweeps.resume import is_sweep_folder, job_folder
from gan_cli.training import distributed
from gan_cli.training.checkpoint import checkpoint_path
from gan_cli.training.evaluation import evaluates
from gan_cli.validation import check_train_config

log = logging.getLogger(__name__)
STARTED = time.time()  # this command's start, unless torchrun's rank 0 gave its own (gan_now)
# Characters kept as they are in a job folder's name; any other is percent-encoded (`/` -> %2F), so
# the name is one valid folder name and two different override lists never share one.
JOB_DIR_SAFE = "=,+@"
MAX_JOB_DIR = 200  # bytes; file systems allow 255 per name
# Set by schedulers that start a command again after a failure or preemption.
RESTART_COUNTS = ("SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT")


def run_dir_for(resume: str | None, new_run_dir: str) -> str:
    return resumed_run_dir(resume) or new_run_dir


def resumed_run_dir(resume: str | None) -> str | None:
    """The folder of the run that `resume` continues; None for a new run, and for a checkpoint from
    elsewhere, which continues in a new folder."""
    if resume is None:
        return None
    path = Path(resume).expanduser()
    if path.is_dir():
        return str(path)
    if path.parent.name == "checkpoints":  # <run dir>/checkpoints/<file>.pt
        return str(path.parent.parent)
    return None


def config_subdir_for(resume: str | None, timestamp: str, output_dir: str | None = None) -> str:
    """`output_dir` is the job's folder once Hydra has chosen it (None before, for --cfg)."""
    if output_dir is None:
        first = resume is None
    else:
        first = not _recorded_by_an_earlier_command(Path(output_dir) / ".hydra" / "overrides.yaml")
    return ".hydra" if first else f".hydra/resume_{timestamp}"


def _recorded_by_an_earlier_command(record: Path) -> bool:
    """Whether `record` was written before this command started. Under torchrun, rank 0 of this same
    command may have written it a moment ago: after the start time all its processes share."""
    try:
        return record.stat().st_mtime < _started()
    except FileNotFoundError:
        return False


def _started() -> float:
    return float(os.environ.get(distributed.START_TIME_VARIABLE, STARTED))


def start_time(pattern: str) -> str:
    return time.strftime(pattern, time.localtime(_started()))


def job_dir_name(number: int, overrides: str, resume: str | None = None) -> str:
    """`3_loss=hinge,optimizer.lr=2e-4` for job 3 given `loss=hinge,optimizer.lr=2e-4`. The job number
    keeps names unique and in order; an over-long name is cut and ends with a digest of the whole.
    A job of a resumed sweep (`resume` names the sweep's folder) keeps the folder the sweep made for
    it, whatever overrides the resume command adds."""
    if is_sweep_folder(resume):
        existing = job_folder(Path(resume).expanduser(), number)
        if existing:
            return existing
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


def restarted_run(run_dir: Path, sweep_job: bool = False) -> str | None:
    """Why this command continues the run in `run_dir` by itself: an earlier attempt left a checkpoint
    there, and a scheduler started the command again (a SLURM requeue, a torchrun restart), or it is a
    job of a sweep (`sweep_job`): a sweep never starts in a folder holding checkpoints, so its job
    finding one is the same job started again (requeued by submitit, or its sweep resumed). None for
    any other command, which must give `resume=` to continue a run."""
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        return None
    restarts = [f"{name}={os.environ[name]}" for name in RESTART_COUNTS if os.environ.get(name, "0") not in ("", "0")]
    if restarts:
        return f"restarted by the scheduler ({', '.join(restarts)})"
    if sweep_job:
        return "an earlier attempt of this sweep job wrote it (a requeued job, or a resumed sweep)"
    return None


class RunGuard(Callback):
    """Refuses a gan-train command before its run directory is created or written, and gives every
    new run or sweep a folder of its own.

    Checks the config's values, that the device exists, a new run's dataset files where that is
    cheap (check_dataset_files; a resumed run's data is that of its stored config, read later), that
    `resume` points at a checkpoint, that the run directory (or a sweep's folder) can be written, and
    that a new run or sweep does not reuse a folder that already holds a run's checkpoints (continuing one requires
    `resume`, unless a scheduler restarted this very command: see `restarted_run`). Under torchrun,
    that the batch splits over the processes and that no sweep is started in every process; for an
    Optuna search, that its runs are evaluated.

    A new run's timestamped folder (outputs/<date>/<time>, multirun/<date>/<time> for a sweep) is
    created here, once every check passed, with os.mkdir: another command started in the same
    second may want the same name, and the one that comes second takes `<time>_2` (then `_3`, ...)
    instead of writing over the first one's checkpoints. Under torchrun rank 0 creates it and the
    other processes take its choice. A folder named with hydra.run.dir or hydra.sweep.dir is used as
    given (refused if it holds checkpoints), as are a resumed run's and a restarted run's own.
    """

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        with user_errors("gan-train"):
            check_train_config(config)
            _check_processes(config)
            distributed.current().device(config.device)  # a device this machine (or process) lacks
            run_dir = Path(config.hydra.run.dir)
            new_folder = _claims_new_run_dir(config, run_dir)
            if config.resume is not None:
                checkpoint_path(config.resume)  # its data: read with the run's own config, rebuilt by gan-train
            else:
                check_dataset_files(config.dataset)
                if restarted_run(run_dir) is None and not new_folder:
                    _refuse_existing_checkpoints(run_dir, "checkpoints/*.pt", "hydra.run.dir")
            check_writable(run_dir, "the run directory")
            _remember_what_it_makes(run_dir)
            if new_folder:
                claimed = distributed.current().from_rank_0(lambda: create_new_folder(run_dir, "the run directory"))
                with read_write(config.hydra.run):
                    config.hydra.run.dir = str(claimed)
                _made[claimed.absolute()] = _made.pop(run_dir.absolute(), claimed.absolute())  # <time>_2: made itself

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
            named = _on_command_line(config, "hydra.sweep.dir")
            if named and not _resumes(config, sweep_dir):
                _refuse_existing_checkpoints(sweep_dir, "**/checkpoints/*.pt", "hydra.sweep.dir")
            check_writable(sweep_dir, "the sweep folder")
            if not named:
                _use_sweep_dir(config, create_new_folder(sweep_dir, "the sweep folder"))

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        """Each job of a multirun has its own overrides: check its values too."""
        with user_errors("gan-train"):
            check_train_config(config)
            _check_processes(config)
            distributed.current().device(config.device)  # a device this machine (or process) lacks


# A run directory this command creates -> the topmost folder it creates for it (outputs/, its date, ...).
_made: dict[Path, Path] = {}
# What a run directory holds before its training has written anything: Hydra's record and the log.
RECORDS = {".hydra", "train.log"}


def _remember_what_it_makes(run_dir: Path) -> None:
    top, folder = None, run_dir.absolute()
    while not folder.exists():
        top, folder = folder, folder.parent
    if top is not None:
        _made[run_dir.absolute()] = top


@contextmanager
def removed_if_nothing_trained(run_dir: Path):
    """Remove the run directory this command made when the run fails before its training wrote
    anything there (a failed download, a combination refused once the data or networks are built):
    nothing is left behind but the error on the terminal. A run directory holding anything else
    (TensorBoard events, checkpoints, grids, evaluations: the run began) is kept with its train.log,
    as is any folder this command did not make (a resumed run's, a sweep job's)."""
    try:
        yield
    except (Exception, KeyboardInterrupt):
        top = _made.get(run_dir.absolute())
        if top is not None and run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= RECORDS:
            _remove_made_folders(run_dir, top)
            log.info(f"Removed {run_dir}: the run failed before training wrote anything there")
        raise


def _remove_made_folders(run_dir: Path, top: Path) -> None:
    """`run_dir`, and the folders above it up to `top` that are left empty (outputs/<date>/, ...)."""
    shutil.rmtree(run_dir)
    folder = run_dir.absolute().parent
    while top in (folder, *folder.parents):
        try:
            folder.rmdir()  # only an empty folder: another run's folder beside it keeps it
        except OSError:
            return
        folder = folder.parent


def _on_command_line(config: DictConfig, key: str) -> bool:
    """Whether the command line sets Hydra's `key` (such as hydra.run.dir)."""
    return any(override.lstrip("+~").split("=", 1)[0] == key for override in config.hydra.overrides.hydra)


def _resumes(config: DictConfig, sweep_dir: Path) -> bool:
    """Whether this sweep is `gan-train -m resume=<sweep_dir>`, which continues the sweep in its folder."""
    return is_sweep_folder(config.resume) and Path(config.resume).expanduser().resolve() == sweep_dir.resolve()


def _claims_new_run_dir(config: DictConfig, run_dir: Path) -> bool:
    """Whether this run writes into a new timestamped folder, rather than the one the command line
    names, the resumed run's own or the one a scheduler restarted."""
    named = _on_command_line(config, "hydra.run.dir")
    return not named and resumed_run_dir(config.resume) is None and restarted_run(run_dir) is None


def _use_sweep_dir(config: DictConfig, folder: Path) -> None:
    """Make the sweep write into `folder`: the launcher reads hydra.sweep.dir, and composes each job's
    config again from the command line's Hydra overrides, so the folder goes there too."""
    with read_write(config.hydra):
        config.hydra.sweep.dir = str(folder)
        config.hydra.overrides.hydra.append(quote_path(f"hydra.sweep.dir={folder}", ("hydra.sweep.dir",)))


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
