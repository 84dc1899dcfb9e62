"""Ctrl-C, SIGTERM and SIGUSR2: finish the current step, write a checkpoint, and stop cleanly.

SIGUSR2 (and SIGTERM under SLURM) is a scheduler's notice of preemption or of the time limit: once
the checkpoint is written the job is handed back to its scheduler to be queued again
(gan_cli.training.preemption).
"""

import logging
import os
import signal

from gan_cli.errors import StoppedBySignal
from gan_cli.training.preemption import hand_over, is_preemption

log = logging.getLogger(__name__)


class StopSignal:
    """Within `with StopSignal() as stop:` the first SIGINT, SIGTERM or SIGUSR2 sets `stop.requested`
    to the signal's name; the loop checks it between steps. A second signal exits at once.

    When the block ends with the loop's StoppedBySignal for a preemption, after its checkpoint, the
    handler the signal had before (submitit's) gets its turn."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)

    def __init__(self):
        self.requested: str | None = None
        self._previous = {}

    def __enter__(self) -> "StopSignal":
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if isinstance(exc, StoppedBySignal) and is_preemption(exc.signal_number):
            hand_over(exc.signal_number, self._previous[exc.signal_number], str(exc))

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            log.error(f"{name} again: stopping now, without a checkpoint for the current step")
            os._exit(128 + signum)
        self.requested = name
        why = " (the scheduler's notice of preemption or of the time limit)" if is_preemption(signum) else ""
        log.warning(f"{name} received{why}: stopping after this step and writing a checkpoint (again to stop at once)")
