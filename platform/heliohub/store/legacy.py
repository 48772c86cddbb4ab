"""Stores written by heliohub 0.1, read as they are and moved to the present layout.

heliohub 0.1 kept a dataset's provenance (:data:`PROVENANCE`) and its time index (:data:`TIME_INDEX`) as JSON
attributes of its group, and the catalog as one JSON attribute (:data:`CATALOG_ATTRIBUTE`): every ingest and
search read and rewrote them whole. Such a store opens as it is (the readers fall back to these attributes); the
next ingest of a dataset moves it to the tables in the same commit as its new records
(:func:`upgrade_group`), and ``heliohub upgrade`` moves every dataset and the catalog at once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import zarr

from ..errors import StoreDamagedError
from . import provenance, time_index

log = logging.getLogger(__name__)
PROVENANCE = "heliohub_provenance"
TIME_INDEX = "heliohub_time_chunks"
CATALOG_ATTRIBUTE = "heliohub_catalog"
ATTRIBUTES = (PROVENANCE, TIME_INDEX)


def is_legacy(attrs: Any) -> bool:
    """Whether a dataset's group attributes are of the 0.1 layout."""
    return PROVENANCE in attrs


def read_provenance(attrs: Any, where: str) -> list[provenance.FileEntry]:
    """The provenance recorded in a 0.1 group's attributes."""
    try:
        return [provenance.FileEntry(**{**item, "spans": {k: tuple(v) for k, v in item["spans"].items()}})
                for item in json.loads(attrs.get(PROVENANCE) or "[]")]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise StoreDamagedError(f"{where}: its provenance attribute {PROVENANCE} is not a list of files "
                                f"({type(error).__name__}: {error})") from None


def bounds(attrs: Any, dim: str, records: int, chunk: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Each time chunk's first and last time from a 0.1 group's :data:`TIME_INDEX`, when it describes the axis as
    stored (``records`` values in chunks of ``chunk``); None otherwise (read the axis itself)."""
    entry = (attrs.get(TIME_INDEX) or {}).get(dim) if isinstance(attrs.get(TIME_INDEX), dict) else None
    if not isinstance(entry, dict) or not records or not chunk or entry.get("records") != records \
            or entry.get("chunk") != chunk:
        return None
    count = -(-records // chunk)
    if not all(isinstance(entry.get(k), list) and len(entry[k]) == count for k in ("first", "last")):
        return None
    return np.asarray(entry["first"], dtype="int64"), np.asarray(entry["last"], dtype="int64")


def upgrade_group(root: zarr.Group, where: str) -> list[provenance.FileEntry] | None:
    """Move a 0.1 group (in a writable session) to the present layout: its provenance attribute into the table
    and its time axes indexed as arrays; returns its files (None: the group was not of 0.1)."""
    attrs = root.attrs.asdict()
    if not is_legacy(attrs):
        return None
    entries = read_provenance(attrs, where)
    provenance.append(root, [(e, "ingested") for e in entries], None, len(entries))  # when: not recorded in 0.1
    for name, array in root.arrays():
        if array.ndim == 1 and array.attrs.get("units") == "nanoseconds since 1970-01-01" and \
                array.attrs.get("_ARRAY_DIMENSIONS", [name]) == [name]:
            length = int(array.chunks[0])
            time_index.write(root, name, length, int(array.shape[0]), 0,
                             time_index.summarize(array[:], length) if array.shape[0] else None)
    for name in ATTRIBUTES:
        root.attrs.pop(name, None)
    log.info("%s: moved to the tables of heliohub's present layout", where)
    return entries


def catalog_entries(attrs: Any) -> dict[str, dict[str, Any]] | None:
    """The entries of a 0.1 catalog (None: the catalog is not of 0.1)."""
    raw = attrs.get(CATALOG_ATTRIBUTE)
    if raw is None:
        return None
    try:
        entries = json.loads(raw)
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        raise StoreDamagedError(f"the catalog's attribute {CATALOG_ATTRIBUTE} is not a JSON object")
    return entries
