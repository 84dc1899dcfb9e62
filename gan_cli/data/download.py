"""Fetching a missing dataset with torchvision, when the network allows.

A failure is only logged: the caller then looks for the files again and, when they are still
missing, raises its own message naming the folder and the files expected there.
"""

import logging
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


def try_download(name: str, root: Path, download: Callable[[Path], None]) -> None:
    """Run `download(root)` for the dataset `name`, logging instead of raising when it fails."""
    log.info(f"{name} not found under {root}; trying to download it there")
    try:
        download(root)
    except Exception as err:  # no network, a proxy, a read-only folder, a missing helper: all end in the same advice
        log.warning(f"{name} download failed: {' '.join(str(err).split())}")
