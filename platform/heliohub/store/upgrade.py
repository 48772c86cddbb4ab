"""``heliohub upgrade``: move every dataset of a store written by heliohub 0.1, and its catalog, to the present
layout (see :mod:`.legacy`), each dataset in one commit and then the catalog in one, so a reader sees each of them
whole, before or after; a run that stops part-way is completed by running it again."""

from __future__ import annotations

import logging

import icechunk
import zarr

from ..errors import ArchiveError
from . import catalog, legacy
from .location import StoreLocation, check_dataset_id
from .lock import write_transaction

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


def upgrade(archive: str | StoreLocation | None = None) -> list[str]:
    """Move every dataset of the store and its catalog to the present layout; returns the datasets moved."""
    location = StoreLocation.resolve(archive)
    ids = dataset_ids(location)
    moved = [dataset_id for dataset_id in ids if upgrade_dataset(location, dataset_id)]
    catalog.refresh(location, ids, ingested=False)
    return moved
