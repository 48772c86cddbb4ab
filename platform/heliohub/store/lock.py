"""Serialising writers of one repository: a lock in a local-folder store, commits retried on object storage.

On object storage, Icechunk's conditional writes make the second of two concurrent commits fail, and heliohub
retries it on the new state. A local folder has no conditional writes (Icechunk warns that it is unsafe for
concurrent commits), so writers of one repository there take an exclusive lock first (``filelock``: on every
platform Python runs on, so ``import heliohub`` needs no ``fcntl``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import icechunk
from filelock import FileLock

from .location import BRANCH, CATALOG, StoreLocation, forget_repositories

log = logging.getLogger(__name__)
RETRIES = 50
_T = TypeVar("_T")


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


def write_transaction(location: StoreLocation, name: str, change: Callable[[icechunk.Session], tuple[_T, str | None]],
                      *, create: bool = True) -> _T:
    """Run ``change`` on a writable session of repository ``name`` under its lock and commit what it wrote with
    the message it gives (None, or no change: nothing is committed); when another commit won the race (object
    storage), ``change`` is run again on the new state, up to :data:`RETRIES` times. Returns what ``change``
    returned."""
    repo = location.repository(name, create=create)
    with store_lock(location, name):
        for attempt in range(RETRIES):
            try:
                session = repo.writable_session(BRANCH)
            except icechunk.IcechunkError:  # removed since it was opened in this process: open it again
                forget_repositories(location, name)
                repo = location.repository(name, create=create)
                session = repo.writable_session(BRANCH)
            result, message = change(session)
            if message is None or not session.has_uncommitted_changes:
                return result
            try:
                session.commit(message)
                return result
            except icechunk.ConflictError:
                time.sleep(min(2.0, 0.05 * 2**attempt))
    what = "the catalog" if name == CATALOG else name
    raise location.error(f"{what} stayed busy", RuntimeError(f"{RETRIES} conflicting commits in a row"))
