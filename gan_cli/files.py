"""Atomic file writes: a reader sees the old file or the new one, never half of one.

A write goes to a temporary file beside its target, named `.<target name>.<random>.partial`, and is
renamed over the target once complete. A process killed mid-write (SIGKILL, power loss) leaves that
partial file behind and the target untouched; `remove_interrupted_writes` clears such leftovers when a
run starts or resumes.

Fault points (gan_cli.faults): every write passes four, before its partial file, inside it, before
the rename and after it, where a test can kill the process deterministically (tests/test_faults.py).
"""

import errno
import itertools
import os
import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from gan_cli import faults
from gan_cli.errors import GanError

PARTIAL_SUFFIX = ".partial"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(f)` on a partial file beside `path`, flush it to disk, then rename it over `path`.

    A crash at any moment leaves the previous `path` intact. A failed write (a full disk, a folder
    that is not writable) removes the partial file and raises GanError saying what happened.
    """
    tmp_name = None
    point = faults.write_point(path)
    try:
        faults.reached(f"{point} before-partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = _create_partial(path)
        with os.fdopen(fd, "wb") as f:
            write(faults.watched(f, point))
            f.flush()
            os.fsync(f.fileno())
        faults.reached(f"{point} before-rename")
        os.replace(tmp_name, path)
    except BaseException as err:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise GanError(f"could not write {path}: {_describe(err)}; any previous version of it is intact") from err
        raise
    faults.reached(f"{point} after-rename")
    _fsync_directory(path.parent)


def _create_partial(path: Path) -> tuple[int, str]:
    """(descriptor, name) of a new, empty partial file beside `path`, open for writing.

    Created with mode 0666 less the umask, as open() creates files: tempfile.mkstemp would give 0600
    whatever the umask, and other users could not read a shared run's checkpoints and grids.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    while True:
        name = str(path.with_name(f".{path.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}"))
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue  # O_EXCL: another write holds this random name; draw another


def remove_interrupted_writes(folder: Path) -> list[Path]:
    """Delete the partial files that killed writes left anywhere under `folder`; returns them.

    Only call it when no other process writes into `folder`.
    """
    leftovers = sorted(folder.rglob(f".*{PARTIAL_SUFFIX}")) if folder.is_dir() else []
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def check_writable(folder: Path, what: str) -> None:
    """Raise GanError unless `folder` exists as a writable folder or can be created as one.

    Probes with a nameless temporary file in the nearest existing ancestor, so nothing is left
    behind; unlike os.access this also holds for root on a read-only file system.
    """
    existing = folder.absolute()
    try:
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise GanError(f"cannot create {what} {folder}: {existing} is a file, not a folder")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise GanError(f"cannot write {what} {folder}: {existing} is not writable ({_describe(err)})") from err


def create_new_folder(folder: Path, what: str) -> Path:
    """Create `folder`, or when it exists already the first of `<folder>_2`, `<folder>_3`, ... that does
    not; returns the folder created. os.mkdir is atomic: of two commands that ask for one name at
    the same moment (two runs started in the same second), exactly one gets it, so each gets its own.
    """
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        for candidate in itertools.chain([folder], (folder.with_name(f"{folder.name}_{n}") for n in itertools.count(2))):
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue  # another run's folder
    except OSError as err:
        raise GanError(f"cannot create {what} {folder}: {_describe(err)}") from err


def _describe(err: OSError) -> str:
    """'No space left on device (ENOSPC)': the reason, and the code a user can search for."""
    reason = err.strerror or str(err)
    return f"{reason} ({errno.errorcode[err.errno]})" if err.errno in errno.errorcode else reason


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort: some systems cannot sync a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
