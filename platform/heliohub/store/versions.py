"""A dataset as it was: its snapshots (one per ingest commit), release tags, and a session pinned to one of them.

Every ingest commits each dataset it changes as a new Icechunk snapshot, and snapshots are kept: a dataset can be
opened as it was after any ingest (``open_dataset(..., version=...)``) by a tag, a snapshot ID, or a date (the last
snapshot written at or before it). ``tag_release`` names the current snapshot of datasets (a release, such as
``2026.12``), so that a notebook can pin a name rather than an ID.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import icechunk
import pandas as pd

from ..errors import DatasetNotFoundError, HeliohubError
from .catalog import read_catalog
from .location import BRANCH, StoreLocation

log = logging.getLogger(__name__)

_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SNAPSHOT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{20}$")
"""Icechunk's snapshot IDs: 20 characters of Crockford's base 32."""


def pinned_session(repo: icechunk.Repository, dataset_id: str, version: str | pd.Timestamp) -> icechunk.Session:
    """A read-only session of ``dataset_id`` at ``version``: a tag, a snapshot ID, or a time (the last snapshot
    written at or before it, UTC when the time has no zone)."""
    text = str(version)
    if isinstance(version, str) and _TAG.match(text) and text in repo.list_tags():
        return repo.readonly_session(tag=text)
    if isinstance(version, str) and _SNAPSHOT.match(text):
        try:
            return repo.readonly_session(snapshot_id=text)
        except icechunk.IcechunkError:
            raise HeliohubError(f"{dataset_id} has no snapshot {text}: see heliohub.versions({dataset_id!r})") from None
    try:
        when = pd.Timestamp(version)
    except (ValueError, TypeError):
        tags = ", ".join(sorted(repo.list_tags())) or "none yet"
        raise HeliohubError(f"version={version!r} of {dataset_id} is neither a tag ({tags}), a snapshot ID nor a "
                            f"time: see heliohub.versions({dataset_id!r})") from None
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    first = None
    for snapshot in repo.ancestry(branch=BRANCH):  # newest first
        if pd.Timestamp(snapshot.written_at) <= when:
            return repo.readonly_session(snapshot_id=snapshot.id)
        first = snapshot.written_at
    raise HeliohubError(f"{dataset_id} did not exist yet at {when}: its first snapshot was written at {first}")


def versions(dataset_id: str, *, archive: str | StoreLocation | None = None) -> pd.DataFrame:
    """The snapshots of a dataset, newest first: ``snapshot_id``, ``written_at`` (UTC), the commit ``message`` and
    the release ``tags`` that name it."""
    store = StoreLocation.resolve(archive)
    if not store.exists(dataset_id):
        raise DatasetNotFoundError(f"no dataset {dataset_id!r} in the archive store {store.url}: see heliohub.search()")
    repo = store.repository(dataset_id)
    tags: dict[str, list[str]] = {}
    for tag in sorted(repo.list_tags()):
        tags.setdefault(repo.lookup_tag(tag), []).append(tag)
    rows = [{"snapshot_id": s.id, "written_at": pd.Timestamp(s.written_at), "message": s.message,
             "tags": tags.get(s.id, [])} for s in repo.ancestry(branch=BRANCH)]
    return pd.DataFrame(rows, columns=["snapshot_id", "written_at", "message", "tags"])


def tag_release(name: str, dataset_ids: Iterable[str] | None = None, *,
                archive: str | StoreLocation | None = None) -> dict[str, str]:
    """Name the current snapshot of ``dataset_ids`` (every dataset of the store when omitted) ``name``; returns the
    snapshot each dataset's tag points to. Re-runnable: a dataset already tagged ``name`` keeps its tag."""
    if not _TAG.match(name):
        raise HeliohubError(f"release name {name!r}: use letters, digits, '.', '_' and '-' (at most 100)")
    store = StoreLocation.resolve(archive)
    if dataset_ids is None:
        dataset_ids = sorted(read_catalog(store))
    tagged: dict[str, str] = {}
    for dataset_id in dataset_ids:
        repo = store.repository(dataset_id)
        if name in repo.list_tags():
            tagged[dataset_id] = repo.lookup_tag(name)
            continue
        snapshot = repo.lookup_branch(BRANCH)
        repo.create_tag(name, snapshot)
        log.info("tagged %s %s at snapshot %s", dataset_id, name, snapshot)
        tagged[dataset_id] = snapshot
    return tagged
