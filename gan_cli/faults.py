"""Deterministic fault injection, for tests: a signal delivered to this process at an exact point.

A test that must kill a run inside a write, or signal it between two given steps, names the point in
the environment variable GAN_CLI_FAULT instead of racing the process with a timer:

    GAN_CLI_FAULT="checkpoints/last.pt#2 before-rename"           SIGKILL there
    GAN_CLI_FAULT="samples/step_0000004.png#1 partial 100"         SIGKILL once 100 bytes of the file are written
    GAN_CLI_FAULT="after step 4=SIGINT; checkpoints/last.pt#2 partial=SIGINT"   two signals, at two points

The points of a run:

    after step N                 step N trained, logged, drawn, evaluated and checkpointed; step N+1 not begun
    <file>#K before-partial      the K-th atomic write of <file> in this process, before its partial file exists
    <file>#K partial [B]         ... B bytes (default 1) of its partial file written and flushed, the rest not
    <file>#K before-rename       ... its partial file complete and on disk, not yet renamed over <file>
    <file>#K after-rename        ... renamed over <file> (the folder's entry not yet synced)

<file> is the last two parts of the written path (`checkpoints/last.pt`, `samples/step_0000005.png`);
K counts that name's writes since this process started. GAN_CLI_FAULT_TRACE=<file> appends every point
reached to <file>, one a line (`partial` without a byte count): a test lists a run's points from an
uninterrupted run, then injects a fault at each.

A signal with a Python handler (SIGINT, SIGTERM, SIGUSR2) is handled before the point's code goes on;
SIGKILL ends the process there, as a crash or `kill -9` would. With neither variable set a point
costs one environment lookup.
"""

import collections
import os
import re
import signal
from functools import cache
from pathlib import Path
from typing import BinaryIO

from gan_cli.errors import GanError

FAULT_VARIABLE = "GAN_CLI_FAULT"
TRACE_VARIABLE = "GAN_CLI_FAULT_TRACE"
POINT = re.compile(r"after step \d+|\S+#\d+ (before-partial|partial|before-rename|after-rename)")
PARTIAL = re.compile(r"(?P<write>\S+#\d+) partial(?: (?P<bytes>\d+))?")

_writes: collections.Counter = collections.Counter()  # writes per file name in this process


def reached(point: str) -> None:
    """Record `point` (GAN_CLI_FAULT_TRACE) and deliver the signal GAN_CLI_FAULT sets there, if any."""
    _trace(point)
    spec = os.environ.get(FAULT_VARIABLE)
    if spec and point in faults(spec):
        _deliver(faults(spec)[point])


def write_point(path: Path) -> str:
    """The name of this write of `path` in fault points: `checkpoints/last.pt#2` for its second write."""
    name = "/".join(Path(path).parts[-2:])
    _writes[name] += 1
    return f"{name}#{_writes[name]}"


def watched(f: BinaryIO, write: str) -> BinaryIO:
    """`f`, or a file that delivers the fault `<write> partial B` once B bytes went through it."""
    _trace(f"{write} partial")
    spec = os.environ.get(FAULT_VARIABLE)
    for point, signum in faults(spec).items() if spec else ():
        match = PARTIAL.fullmatch(point)
        if match and match["write"] == write:
            return _FaultAfterBytes(f, int(match["bytes"] or 1), signum)
    return f


@cache
def faults(spec: str) -> dict[str, int]:
    """{point: signal number} of a GAN_CLI_FAULT value: points separated by `;`, each `point[=SIGNAL]`."""
    parsed = {}
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        point, _, name = entry.partition("=")
        point = " ".join(point.split())
        if not POINT.fullmatch(point) and not PARTIAL.fullmatch(point):
            raise GanError(f"{FAULT_VARIABLE}: {entry!r} names no fault point (see gan_cli/faults.py)")
        try:
            parsed[point] = signal.Signals[name.strip() or "SIGKILL"].value
        except KeyError:
            raise GanError(f"{FAULT_VARIABLE}: {entry!r}: {name.strip()} is not a signal name such as SIGKILL") from None
    return parsed


def _trace(point: str) -> None:
    trace = os.environ.get(TRACE_VARIABLE)
    if trace:
        with open(trace, "a") as f:
            f.write(point + "\n")


def _deliver(signum: int) -> None:
    if signum == signal.SIGKILL:
        os.kill(os.getpid(), signum)
    signal.raise_signal(signum)  # Python runs the signal's handler before this returns


class _FaultAfterBytes:
    """A write-only file that passes bytes on to `f` and delivers `signum` once `limit` bytes went
    through, with those bytes flushed: what a process killed in the middle of a write leaves.

    It has no fileno(), so that writers that would use the descriptor directly (PIL does) go
    through write() instead."""

    def __init__(self, f: BinaryIO, limit: int, signum: int):
        self.f, self.limit, self.signum = f, limit, signum
        self.written = 0
        self.delivered = False

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        head = max(0, self.limit - self.written)
        if not self.delivered and len(data) >= head:
            self.f.write(data[:head])
            self.f.flush()
            self.delivered = True
            _deliver(self.signum)
            self.f.write(data[head:])  # a handled signal returns here, and the write goes on
        else:
            self.f.write(data)
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        self.f.flush()
