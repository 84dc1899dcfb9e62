"""Exceptions for outcomes a user caused or can act on. The CLI prints them as one line, no traceback."""

import signal


class GanError(Exception):
    """Bad input, missing files, a broken checkpoint: the message says what was wrong and how to fix it."""


class StoppedBySignal(Exception):
    """Training stopped on Ctrl-C, SIGTERM or SIGUSR2 after writing a checkpoint; the message says how to resume."""

    def __init__(self, message: str, signal_name: str):
        super().__init__(message)
        self.signal_number = signal.Signals[signal_name].value
        self.exit_code = 128 + self.signal_number  # the shell's convention: 130 for SIGINT
