"""Thin @hydra.main entry points: compose the config, check it, hand over. No training logic here."""

import sys
from contextlib import contextmanager

from gan_cli.errors import GanError, StoppedBySignal


@contextmanager
def user_errors(prog: str):
    """Turn a GanError into one line on stderr and exit status 1; a signal stop into its own status."""
    try:
        yield
    except GanError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except StoppedBySignal as stop:
        print(f"{prog}: {stop}", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
