"""Reader for the IDX format of the MNIST files (http://yann.lecun.com/exdb/mnist/).

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then one
big-endian uint32 per dimension, then the data. Every check raises GanError naming the file.
"""

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from gan_cli.errors import GanError

UNSIGNED_BYTE = 0x08
MAX_HEADER = 4 + 4 * 255  # bytes: the number of dimensions is one byte


def parse_idx(raw: bytes, name: str = "<bytes>") -> torch.Tensor:
    """Decode IDX bytes of unsigned bytes into a uint8 tensor of the header's shape."""
    shape, header_size = _header(raw, name)
    _check_size(shape, header_size, len(raw), name)
    try:
        data = np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)
    except ValueError as err:  # an empty array whose other dimensions are too large to represent
        raise GanError(f"{name}: the header's shape {shape} cannot be represented ({err})") from err
    return torch.from_numpy(data.copy())


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (plain or .gz) into a uint8 tensor."""
    return parse_idx(_read(path, str(path)), str(path))


def check_idx_file(path: Path, name: str) -> None:
    """The checks of read_idx that need only the header, reading no data: the magic number, the type
    code, and that a plain file's size is what the header's dimensions promise (a .gz file's size
    says nothing of its contents). `name` names the file in messages."""
    shape, header_size = _header(_read(path, name, MAX_HEADER), name)
    if path.suffix != ".gz":
        _check_size(shape, header_size, path.stat().st_size, name)


def _read(path: Path, name: str, size: int = -1) -> bytes:
    """The first `size` bytes of a plain or .gz file (all of them for -1)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError, zlib.error) as err:  # zlib.error: a damaged .gz stream
        raise GanError(f"cannot read {name}: {err}") from err


def _header(raw: bytes, name: str) -> tuple[tuple[int, ...], int]:
    """(shape, header size in bytes) from the start of IDX bytes of unsigned bytes."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise GanError(f"{name} is not an IDX file: it does not start with the IDX magic number")
    if raw[2] != UNSIGNED_BYTE:
        raise GanError(f"{name}: IDX type code {raw[2]:#04x} is not supported (expected 0x08, unsigned byte)")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_size:
        raise GanError(f"{name}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return shape, header_size


def _check_size(shape: tuple[int, ...], header_size: int, size: int, name: str) -> None:
    expected = header_size + math.prod(shape)  # Python ints: no overflow, whatever the header claims
    if size != expected:
        raise GanError(
            f"{name}: the header promises shape {shape} ({expected} bytes) but the file has {size} "
            "bytes; it is truncated or corrupt, replace it with a fresh copy"
        )
