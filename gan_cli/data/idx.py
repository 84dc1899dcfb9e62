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


def parse_idx(raw: bytes, name: str = "<bytes>") -> torch.Tensor:
    """Decode IDX bytes of unsigned bytes into a uint8 tensor of the header's shape."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise GanError(f"{name} is not an IDX file: it does not start with the IDX magic number")
    if raw[2] != UNSIGNED_BYTE:
        raise GanError(f"{name}: IDX type code {raw[2]:#04x} is not supported (expected 0x08, unsigned byte)")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_size:
        raise GanError(f"{name}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header_size + math.prod(shape)  # Python ints: no overflow, whatever the header claims
    if len(raw) != expected:
        raise GanError(
            f"{name}: the header promises shape {shape} ({expected} bytes) but the file has {len(raw)} "
            "bytes; it is truncated or corrupt, replace it with a fresh copy"
        )
    try:
        data = np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)
    except ValueError as err:  # an empty array whose other dimensions are too large to represent
        raise GanError(f"{name}: the header's shape {shape} cannot be represented ({err})") from err
    return torch.from_numpy(data.copy())


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (plain or .gz) into a uint8 tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # zlib.error: a damaged .gz stream
        raise GanError(f"cannot read {path}: {err}") from err
    return parse_idx(raw, str(path))
