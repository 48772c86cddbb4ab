"""Serialising writers of one repository in a local-folder store.

On object storage, Icechunk's conditional writes make the second of two concurrent commits fail, and heliohub
retries it on the new state. A local folder has no conditional writes (Icechunk warns that it is unsafe for
concurrent commits), so writers of one repository there take an exclusive lock first (``filelock``: on every
platform Python runs on, so ``import heliohub`` needs no ``fcntl``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

if TYPE_CHECKING:
    from .location import StoreLocation

log = logging.getLogger(__name__)


@contextlib.contextmanager
def store_lock(location: StoreLocation, name: str) -> Iterator[None]:
    """Hold the exclusive lock of repository ``name`` (a no-op on S3, where commits are checked instead)."""
    if location.is_s3:
        yield
        return
    folder = Path(location.url) / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / f"{name}.lock"):
        yield
