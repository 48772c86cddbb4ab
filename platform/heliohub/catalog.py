"""The archive catalog: one entry per dataset ID, kept in the store's ``_catalog`` repository.

Entries are derived from each dataset's own group (attributes, shapes, provenance), so the catalog can always be
rebuilt from the datasets; :func:`refresh` does that for the IDs an ingest touched.

A dataset and the catalog are two repositories, committed one after the other. So that the catalog lists exactly
the committed datasets even when an ingest dies between the two commits, the ingest first marks the datasets it is
about to write as pending (:func:`mark_pending`), and :func:`read_catalog` looks at a pending dataset's own
repository to decide: committed (its entry derived from it) or not (left out). The next ingest, or refresh, settles
it for good.
"""

from __future__ import annotations

import json
import time
from typing import Any

import icechunk
import numpy as np
import xarray as xr
import zarr

from .archive import BRANCH, CATALOG, Archive
from .layout import TIME_CHUNK_RECORDS, TIME_UNITS, coverage, time_index_entry
from .merge import PROVENANCE, read_provenance
from .store_lock import store_lock

ATTRIBUTE = "heliohub_catalog"
PENDING = "pending"
_RETRIES = 50
def _text(attrs: dict[str, Any], *names: str) -> str | None:
    upper = {k.upper(): v for k, v in attrs.items()}
    for name in names:
        value = upper.get(name.upper())
        if isinstance(value, list):
            value = " ".join(str(v).strip() for v in value if str(v).strip())
        if value not in (None, ""):
            return str(value).strip()
    return None


def _is_time(var: xr.Variable) -> bool:
    """A time variable, decoded or as stored (int64 nanoseconds since 1970, see ``layout.encode_times``)."""
    return var.dtype.kind == "M" or (var.dtype.kind == "i" and var.attrs.get("units") == TIME_UNITS)


def _times(var: xr.Variable) -> np.ndarray:
    values = np.asarray(var.values)
    return values if values.dtype.kind == "M" else values.view("datetime64[ns]")


def entry_for(dataset_id: str, ds: xr.Dataset, stored_bytes: int | None) -> dict[str, Any]:
    """The catalog entry of a stored dataset (``ds`` opened lazily from its group, times decoded or not)."""
    attrs = ds.attrs
    provenance = [
        {"file": e.file, "version": e.version, "checksum": e.checksum, "records": e.records}
        for e in read_provenance(attrs)
    ]
    axes = [d for d in ds.dims if d in ds.coords and ds.variables[d].ndim == 1 and _is_time(ds.variables[d])]
    axes.sort(key=lambda d: (d != "time", d))
    time_axis = axes[0] if axes else None
    start = end = None
    intervals: list[list[str]] = []
    if time_axis and ds.sizes[time_axis]:
        # the writer's coverage of the axis it wrote; a group written before there was one: from the axis
        chunk = ds.variables[time_axis].encoding.get("chunks", (TIME_CHUNK_RECORDS,))[0]
        indexed = time_index_entry(attrs, time_axis, ds.sizes[time_axis], chunk)
        intervals = indexed["coverage"] if indexed else coverage(_times(ds.variables[time_axis]), chunk)
        if intervals:
            start, end = intervals[0][0], intervals[-1][1]
    variables = [
        {"name": str(name), "dims": list(var.dims), "shape": list(var.shape),
         "dtype": "datetime64[ns]" if _is_time(var) else str(var.dtype),
         "units": None if _is_time(var) else var.attrs.get("units") or _text(var.attrs, "UNITS"),
         "description": var.attrs.get("description") or var.attrs.get("long_name")}
        for name, var in sorted(ds.variables.items())
    ]
    return {
        "dataset_id": dataset_id,
        "mission": attrs.get("mission"),
        "spacecraft": attrs.get("observatory"),
        "instrument": attrs.get("instrument"),
        "title": attrs.get("title"),
        "description": _text(attrs, "DATASET_DESCRIPTION", "Logical_source_description", "TEXT") or attrs.get("title"),
        "start": start,
        "end": end,
        "coverage": intervals,
        "records": int(ds.sizes[time_axis]) if time_axis else 0,
        "variables": variables,
        "nbytes": int(ds.nbytes),
        "stored_bytes": stored_bytes,
        "version": attrs.get("dataset_version"),
        "files": len(provenance),
        "provenance": provenance,
        "acknowledgement": attrs.get("acknowledgement"),
    }


def dataset_entry(archive: Archive, dataset_id: str) -> dict[str, Any] | None:
    """Recompute one dataset's entry from its group in the store (None when the dataset is absent or empty)."""
    if not archive.exists(dataset_id):
        return None
    repo = archive.repository(dataset_id)
    session = repo.readonly_session(branch=BRANCH)
    try:
        # Times as stored and no index: decoding and indexing a long time axis cost more than everything else
        # the entry needs.
        ds = xr.open_zarr(session.store, consolidated=False, chunks=None, decode_times=False,
                          create_default_indexes=False)
    except (zarr.errors.GroupNotFoundError, FileNotFoundError, KeyError):
        return None
    if PROVENANCE not in ds.attrs:
        return None
    try:
        stats = repo.chunk_storage_stats()
        stored = int(stats.native_bytes + stats.inlined_bytes)
    except (icechunk.IcechunkError, AttributeError, TypeError):
        stored = None
    return entry_for(dataset_id, ds, stored)


def read_catalog(archive: Archive) -> dict[str, dict[str, Any]]:
    """Every entry of the catalog, by dataset ID (empty when the store has no catalog yet); a pending dataset (an
    ingest died before it published its entry) is listed if, and as, its repository holds it."""
    if not archive.exists(CATALOG):
        return {}
    session = archive.repository(CATALOG).readonly_session(branch=BRANCH)
    try:
        group = zarr.open_group(session.store, mode="r")
    except (zarr.errors.GroupNotFoundError, FileNotFoundError):
        return {}
    entries = json.loads(group.attrs.get(ATTRIBUTE, "{}"))
    for dataset_id in [d for d, entry in entries.items() if entry.get(PENDING)]:
        committed = dataset_entry(archive, dataset_id)
        if committed is None:
            del entries[dataset_id]
        else:
            entries[dataset_id] = committed
    return entries


def mark_pending(archive: Archive, dataset_ids: list[str]) -> None:
    """Mark datasets about to be written as pending, in one catalog commit (see the module's description)."""
    _update(archive, {dataset_id: None for dataset_id in dataset_ids}, pending=True)


def refresh(archive: Archive, dataset_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Recompute the entries of ``dataset_ids`` from their groups and publish them in one catalog commit."""
    return _update(archive, {dataset_id: dataset_entry(archive, dataset_id) for dataset_id in dataset_ids})


def _update(archive: Archive, entries: dict[str, dict[str, Any] | None], *,
            pending: bool = False) -> dict[str, dict[str, Any]]:
    repo = archive.repository(CATALOG, create=True)
    with store_lock(archive, CATALOG):
        for attempt in range(_RETRIES):
            session = repo.writable_session(BRANCH)
            group = zarr.open_group(session.store, mode="a")
            current = json.loads(group.attrs.get(ATTRIBUTE, "{}"))
            updated = dict(current)
            for dataset_id, entry in entries.items():
                if pending:
                    updated[dataset_id] = {**updated.get(dataset_id, {"dataset_id": dataset_id}), PENDING: True}
                elif entry is None:
                    updated.pop(dataset_id, None)
                else:
                    updated[dataset_id] = entry
            if updated == current and ATTRIBUTE in group.attrs:
                return updated
            group.attrs[ATTRIBUTE] = json.dumps(dict(sorted(updated.items())), sort_keys=True)
            try:
                session.commit(f"catalog{' (pending)' if pending else ''}: {', '.join(sorted(entries))}")
                return updated
            except icechunk.ConflictError:
                time.sleep(min(2.0, 0.05 * 2**attempt))
    raise archive.error("the catalog stayed busy", RuntimeError(f"{_RETRIES} conflicting commits in a row"))
