"""What a gan-train job does differently as one job of a sweep (Hydra's multirun).

- A job's error fails that job only. `user_errors` ends a command with SystemExit, which Hydra does
  not catch: inside a sweep it would end the whole sweep at the first failing job, and an Optuna
  study with it. In a sweep the error is logged (the job's train.log) and raised as JobFailed, which
  Hydra records as the job's failure: the other jobs run, the Optuna sweeper records a failed trial,
  and the basic sweeper ends the command with exit status 1 and the message once all jobs ran.
- With several GPUs, device=auto gives job n the GPU n mod (number of GPUs): jobs that run side by
  side (launcher=joblib) use different GPUs.
- gan_cli's Optuna sweeper (hydra_plugins/gan_cli_optuna) is registered with Hydra, whose scan of
  the hydra_plugins package misses the plugin of a project installed in editable mode (pip install -e).
"""

import logging
from contextlib import contextmanager

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException
from hydra.types import RunMode

from gan_cli.cli import user_errors
from gan_cli.errors import GanError

log = logging.getLogger(__name__)


class JobFailed(CompactHydraException):
    """One job of a sweep failed; Hydra prints its message as one line."""


def in_sweep() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def job_errors(prog: str):
    """user_errors(prog) for a single run; in a sweep, a GanError fails its job only."""
    with user_errors(prog):
        try:
            yield
        except GanError as err:
            if not in_sweep():
                raise
            hydra_cfg = HydraConfig.get()
            log.error(f"{prog}: error: {err}")
            raise JobFailed(f"{prog}: job {hydra_cfg.job.num} ({hydra_cfg.runtime.output_dir}) failed: {err}") from None


def job_device(device: str, job_number: int) -> str:
    """The device of sweep job `job_number`: its own GPU for device=auto when there are several."""
    gpus = torch.cuda.device_count()
    if device != "auto" or gpus < 2:
        return device
    return f"cuda:{job_number % gpus}"


def register_optuna_sweeper() -> None:
    from hydra_plugins.gan_cli_optuna.tolerant_sweeper import TolerantOptunaSweeper

    if TolerantOptunaSweeper is not None:  # None without the optuna extra
        Plugins.instance().register(TolerantOptunaSweeper)
