"""``heliohub upgrade``: move every dataset of a store written by heliohub 0.1, and its catalog, to the present
layout (see :mod:`.legacy`), each dataset in one commit and then the catalog in one, so a reader sees each of them
whole, before or after; then split the manifests of every repository written before
:func:`.location.repository_config` (one commit each). A run that stops part-way is completed by running it again."""

from __future__ import annotations

import logging
import math
import time

import icechunk
import zarr

from ..errors import ArchiveError
from . import catalog, legacy
from .location import BRANCH, CATALOG, MANIFEST_SPLIT_CHUNKS, StoreLocation, check_dataset_id
from .lock import RETRIES, store_lock, write_transaction

log = logging.getLogger(__name__)


def dataset_ids(location: StoreLocation) -> list[str]:
    """Every dataset repository of the store (by listing it: a 0.1 catalog may lack a dataset an ingest died
    before listing)."""
    fs, root = location.fsspec()
    if not fs.exists(root):
        return []
    names = sorted(path.rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(root, detail=False, refresh=True))
    found = []
    for name in names:
        try:
            check_dataset_id(name)
        except ArchiveError:  # not a dataset's folder (.locks, notes an operator left)
            continue
        if location.exists(name):
            found.append(name)
    return found


def upgrade_dataset(location: StoreLocation, dataset_id: str) -> bool:
    """Move one dataset to the present layout in one commit; False when it was already there."""

    def change(session: icechunk.Session) -> tuple[bool, str | None]:
        try:
            root = zarr.open_group(session.store, mode="r+")
        except (zarr.errors.GroupNotFoundError, FileNotFoundError):
            return False, None
        if legacy.upgrade_group(root, f"dataset {dataset_id}") is None:
            return False, None
        return True, f"upgrade {dataset_id} to heliohub's present layout"

    return write_transaction(location, dataset_id, change, create=False)


def split_manifests(location: StoreLocation, name: str) -> bool:
    """Rewrite the manifests of repository ``name`` in one commit when one of them holds more chunks than
    :func:`.location.repository_config` puts in a manifest (a repository written before it, under Icechunk's
    default of one manifest per array); False when none does. Icechunk splits an array's manifest only when a
    commit changes the array, so without this an array no ingest touches again (an ended mission's) keeps one
    manifest of its whole history, which every open of it reads."""
    repo = location.repository(name)
    with store_lock(location, name):
        for attempt in range(RETRIES):
            try:
                tip = repo.lookup_branch(BRANCH)
                largest = max((m.num_chunk_refs for m in repo.lookup_snapshot(tip).manifests), default=0)
                if largest <= MANIFEST_SPLIT_CHUNKS or \
                        largest <= MANIFEST_SPLIT_CHUNKS * _chunks_across_time(repo, tip):
                    return False
                repo.rewrite_manifests(f"split the manifests of {name} every {MANIFEST_SPLIT_CHUNKS} chunks in time",
                                       branch=BRANCH)
                return True
            except icechunk.ConflictError:  # an ingest committed meanwhile (object storage): look again
                time.sleep(min(2.0, 0.05 * 2**attempt))
            except icechunk.IcechunkError as error:
                raise location.error(f"cannot split the manifests of {name!r}", error) from None
    raise location.error(f"{name} stayed busy", RuntimeError(f"{RETRIES} conflicting commits in a row"))


def _chunks_across_time(repo: icechunk.Repository, snapshot: str) -> int:
    """The most chunks any array of the snapshot has along its other axes than the first (a split manifest holds
    :data:`.location.MANIFEST_SPLIT_CHUNKS` times that many at most)."""
    root = zarr.open_group(repo.readonly_session(snapshot_id=snapshot).store, mode="r")
    return max((math.prod(math.ceil(n / c) for n, c in zip(a.shape[1:], a.chunks[1:], strict=True))
                for _, a in root.members(max_depth=None) if isinstance(a, zarr.Array)), default=1)


def upgrade(archive: str | StoreLocation | None = None) -> tuple[list[str], list[str]]:
    """Move every dataset of the store and its catalog to the present layout, then split the manifests of every
    repository written before they were split; returns the datasets moved and the repositories split."""
    location = StoreLocation.resolve(archive)
    ids = dataset_ids(location)
    moved = [dataset_id for dataset_id in ids if upgrade_dataset(location, dataset_id)]
    catalog.refresh(location, ids, ingested=False)
    split = [name for name in [*ids, CATALOG] if split_manifests(location, name)]  # refresh made the catalog
    return moved, split
