"""Preemption and time limits on a cluster: SIGUSR2, and SIGTERM under SLURM.

SLURM signals a job before its time limit (`sbatch --signal=USR2@90`, which submitit sets) and when
it preempts it: SIGUSR2 where the cluster sets `preempt_send_user_signal`, otherwise SIGTERM, with
SIGKILL after the grace time. gan-train stops on either as on Ctrl-C: it finishes the step and writes
checkpoints/last.pt (gan_cli.training.signals). Then the job must be queued again and continue by
itself, which `hand_over` arranges once the checkpoint is written:

- Under submitit (launcher=slurm, hydra/launcher=submitit_local), submitit installed its own SIGUSR2
  handler before the job started: it is called now. It resubmits the same Hydra job (the launcher's
  `checkpoint()`), requeues it (`scontrol requeue`; submitit_local starts it again), and exits.
- Under SLURM without submitit, SIGUSR2 runs `scontrol requeue $SLURM_JOB_ID` (the job needs
  `--requeue`). A job preempted with SIGTERM is requeued by SLURM itself where the cluster's
  PreemptMode is REQUEUE (and a job cancelled with scancel, which also sends SIGTERM, is not).
- The job started again continues from its own folder's last.pt by itself: SLURM sets
  SLURM_RESTART_COUNT, and a sweep job whose folder already holds last.pt is always one started
  again (gan_cli.cli.run_dir.restarted_run).

Outside SLURM, SIGUSR2 stops a run like SIGTERM (exit status 140), with the resume command.
"""

import logging
import os
import signal
import subprocess

log = logging.getLogger(__name__)

SLURM_JOB = "SLURM_JOB_ID"


def is_preemption(signum: int) -> bool:
    """Whether the scheduler sent `signum` to stop the job for now, not for good."""
    return signum == signal.SIGUSR2 or (signum == signal.SIGTERM and SLURM_JOB in os.environ)


def hand_over(signum: int, previous, stopped: str) -> None:
    """The checkpoint is written (`stopped` says where): let the scheduler queue the job again.

    `previous` is the signal's handler from before training began: submitit's, when it is a Python
    function (on SIGUSR2 it requeues the job and exits the process)."""
    name = signal.Signals(signum).name
    if callable(previous):
        log.warning(f"{stopped}. Passing {name} on to the launcher's own handler (submitit's requeues the job)")
        previous(signum, None)
    elif signum == signal.SIGUSR2 and SLURM_JOB in os.environ:
        log.warning(f"{stopped}. Requeuing SLURM job {os.environ[SLURM_JOB]}: it continues from there by itself")
        _requeue(os.environ[SLURM_JOB])
    if signum == signal.SIGTERM:
        log.warning("SIGTERM under SLURM: a preempted job is requeued by SLURM and continues from its last.pt by itself")


def _requeue(job_id: str) -> None:
    try:
        subprocess.run(["scontrol", "requeue", job_id], check=True, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", None) or err
        log.error(f"could not requeue SLURM job {job_id} ({' '.join(str(detail).split())}): resume it by hand")
