"""Serialising writers of one repository in a local-folder store.

On object storage, Icechunk's conditional writes make the second of two concurrent commits fail, and heliohub
retries it on the new state. A local folder has no conditional writes (Icechunk warns that it is unsafe for
concurrent commits), so writers of one repository there take an exclusive ``fcntl`` lock first.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .archive import Archive


@contextlib.contextmanager
def store_lock(archive: Archive, name: str) -> Iterator[None]:
    """Hold the exclusive lock of repository ``name`` (a no-op on S3, where commits are checked instead)."""
    if archive.is_s3:
        yield
        return
    folder = Path(archive.url) / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
