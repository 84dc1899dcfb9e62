"""Ctrl-C and SIGTERM: finish the current step, write a checkpoint, and stop cleanly."""

import logging
import os
import signal

log = logging.getLogger(__name__)


class StopSignal:
    """Within `with StopSignal() as stop:` the first SIGINT/SIGTERM sets `stop.requested` to the
    signal's name; the loop checks it between steps. A second signal exits at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: str | None = None
        self._previous = {}

    def __enter__(self) -> "StopSignal":
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            log.error(f"{name} again: stopping now, without a checkpoint for the current step")
            os._exit(128 + signum)
        self.requested = name
        log.warning(f"{name} received: stopping after this step and writing a checkpoint (again to stop at once)")
