"""The archive catalog: one row per dataset ID, a table in the store's ``_catalog`` repository.

The table ``datasets`` (see :mod:`.tables`) has the columns of :data:`COLUMNS`: what a search filters on, and what
``describe`` shows. Its size is the number of datasets, whatever the number of files or commits behind them; a
dataset's files and coverage stay with the dataset (:mod:`.provenance`, :mod:`.time_index`). Rows are derived
from each dataset's own group, so the catalog can always be rebuilt from the datasets; :func:`refresh` does that
for the IDs an ingest touched.

A dataset and the catalog are two repositories, committed one after the other. So that the catalog lists exactly
the committed datasets even when an ingest dies between the two commits, the ingest first marks the datasets it is
about to write as pending (:func:`mark_pending`), and a reader looks at a pending dataset's own repository to decide:
committed (its row derived from it) or not (left out). The next ingest, or refresh, settles it for good.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ..errors import ArchiveError, StoreDamagedError
from . import legacy, provenance, tables, time_index
from .layout import TIME_UNITS
from .location import BRANCH, CATALOG, StoreLocation, forget_repositories
from .lock import write_transaction

log = logging.getLogger(__name__)
TABLE = "datasets"
TEXT = ("dataset_id", "title", "mission", "spacecraft", "instrument", "description", "version", "acknowledgement",
        "variables")
TIMES = ("start", "end", "last_ingest")
NUMBERS = ("records", "nbytes", "stored_bytes", "files", "pending")
COLUMNS = TEXT + TIMES + NUMBERS
SEARCHED = ("dataset_id", "title", "mission", "spacecraft", "instrument", "start", "end", "records", "nbytes",
            "stored_bytes", "pending")
"""The columns a search reads (not the descriptions, variables and acknowledgements)."""
LAYOUT = {"text_searched": ["dataset_id", "title", "mission", "spacecraft", "instrument"],
          "text_about": ["description", "version", "acknowledgement", "variables"],
          "numbers": ["start", "end", "last_ingest", "records", "nbytes", "stored_bytes", "files", "pending"]}
"""The table's arrays: what a search reads (``text_searched``, ``numbers``) apart from what only ``describe`` does."""
_NAT = np.iinfo(np.int64).min


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


def _span(ds: xr.Dataset, root: zarr.Group, axis: str) -> tuple[str | None, str | None]:
    """The first and last time of the main axis: from its index, else from the axis itself."""
    values = ds.variables[axis]
    chunk = values.encoding.get("chunks", (values.shape[0],))[0]
    bounds = time_index.read_bounds(root, axis, ds.sizes[axis], chunk) or \
        legacy.bounds(root.attrs, axis, ds.sizes[axis], chunk)
    if bounds is not None:
        first, last = int(bounds[0][0]), int(bounds[1][-1])
    else:
        stamps = np.asarray(values.values).view("int64")
        stamps = stamps[stamps != _NAT]
        if not stamps.size:
            return None, None
        first, last = int(stamps.min()), int(stamps.max())
    return tuple(str(np.datetime64(t, "ns")) for t in (first, last))  # type: ignore[return-value]


def row_for(dataset_id: str, ds: xr.Dataset, root: zarr.Group, files: int, stored_bytes: int | None,
            last_ingest: str | None) -> dict[str, Any]:
    """The catalog row of a stored dataset (``ds`` opened lazily from its group ``root``, times as stored)."""
    attrs = ds.attrs
    axes = [d for d in ds.dims if d in ds.coords and ds.variables[d].ndim == 1 and _is_time(ds.variables[d])]
    axes.sort(key=lambda d: (d != "time", d))
    start = end = None
    if axes and ds.sizes[axes[0]]:
        start, end = _span(ds, root, axes[0])
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
        "records": int(ds.sizes[axes[0]]) if axes else 0,
        "variables": variables,
        "nbytes": int(ds.nbytes),
        "stored_bytes": stored_bytes,
        "version": attrs.get("dataset_version"),
        "files": files,
        "acknowledgement": attrs.get("acknowledgement"),
        "last_ingest": last_ingest,
    }


def dataset_row(location: StoreLocation, dataset_id: str, last_ingest: str | None = None) -> dict[str, Any] | None:
    """Derive one dataset's row from its group in the store (None when the dataset is absent or empty)."""
    try:  # the repository as this process opened it (the usual case: it has just been written)
        session = location.repository(dataset_id).readonly_session(branch=BRANCH)
    except (icechunk.IcechunkError, ArchiveError):  # absent, or removed since: look before saying so
        forget_repositories(location, dataset_id)
        if not location.exists(dataset_id):
            return None
        session = location.repository(dataset_id).readonly_session(branch=BRANCH)
    try:
        root = zarr.open_group(session.store, mode="r")
    except (zarr.errors.GroupNotFoundError, FileNotFoundError):
        return None
    where = f"dataset {dataset_id}"
    if legacy.is_legacy(root.attrs):
        files = len(legacy.read_provenance(root.attrs, where))
    elif tables.open_table(root, provenance.FILES) is not None:
        files = provenance.count(root)
    else:
        return None
    # Times as stored and no index: decoding and indexing a long time axis cost more than everything else the row
    # needs.
    ds = xr.open_zarr(session.store, consolidated=False, chunks=None, decode_times=False,
                      create_default_indexes=False)
    stored = sum(int(array.nbytes_stored()) for _, array in root.arrays())
    return row_for(dataset_id, ds, root, files, stored, last_ingest)


def _encode(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as table columns: times as int64 nanoseconds (NaT for none), numbers with -1 for none."""
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for row in rows:
        for name in TEXT:
            value = row.get(name)
            columns[name].append(json.dumps(value or [], sort_keys=True) if name == "variables" else value or "")
        for name in TIMES:
            value = row.get(name)
            columns[name].append(int(np.datetime64(value, "ns").view("int64")) if value else _NAT)
        for name in NUMBERS:
            value = row.get(name)
            columns[name].append(-1 if value is None else int(value))
    return columns


def _decode(columns: dict[str, np.ndarray], index: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, values in columns.items():
        value = values[index]
        if name == "variables":
            row[name] = json.loads(value or "[]")
        elif name in TEXT:
            row[name] = value or None
        elif name in TIMES:
            row[name] = None if int(value) == _NAT else str(np.datetime64(int(value), "ns"))
        else:
            row[name] = None if int(value) < 0 else int(value)
    row["pending"] = bool(row.get("pending"))
    return row


def _from_legacy(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**{k: v for k, v in entry.items() if k in COLUMNS}, "pending": 1 if entry.get("pending") else 0}
            for entry in entries.values()]


def _snapshot_root(location: StoreLocation) -> zarr.Group | None:
    if not location.exists(CATALOG):
        return None
    return _session_root(location.repository(CATALOG).readonly_session(branch=BRANCH))


def _session_root(session: icechunk.Session) -> zarr.Group | None:
    try:
        return zarr.open_group(session.store, mode="r")
    except (zarr.errors.GroupNotFoundError, FileNotFoundError):
        return None


def _read(root: zarr.Group | None, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The catalog's columns (a 0.1 catalog: converted in memory)."""
    if root is None:
        return {name: np.empty(0, dtype=object) for name in columns}
    table = tables.open_table(root, TABLE)
    if table is None:
        old = legacy.catalog_entries(root.attrs)
        encoded = _encode(_from_legacy(old or {}))
        return {name: np.asarray(encoded[name], dtype=object if name in TEXT else np.int64) for name in columns}
    return tables.read(table, columns, where="the catalog")


def _settled(location: StoreLocation, columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Every row, a pending dataset's as its repository holds it (left out when it holds nothing)."""
    rows = []
    for index in range(len(columns["dataset_id"])):
        row = _decode(columns, index)
        if row["pending"]:
            try:
                committed = dataset_row(location, row["dataset_id"], row.get("last_ingest"))
            except StoreDamagedError as error:
                log.warning("%s; it is left out of the catalog", error)
                continue
            if committed is None:
                continue
            row = {**{k: v for k, v in committed.items() if k in columns}, "pending": False}
        rows.append(row)
    return rows


def read_frame(location: StoreLocation, session: icechunk.Session | None) -> pd.DataFrame:
    """The catalog's searched columns (:data:`SEARCHED`), one row per committed dataset, sorted by ID: reads
    only these columns of the table (and a pending dataset's repository); from ``session`` of the catalog when
    given (else its latest snapshot, or nothing when the store has no catalog yet)."""
    rows = _settled(location, _read(_session_root(session) if session is not None else _snapshot_root(location),
                                    SEARCHED))
    frame = pd.DataFrame(rows, columns=list(SEARCHED))
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column])
    return frame.drop(columns=["pending"]).sort_values("dataset_id", ignore_index=True)


def read_catalog(location: StoreLocation) -> dict[str, dict[str, Any]]:
    """Every row of the catalog, all columns, by dataset ID."""
    rows = _settled(location, _read(_snapshot_root(location), COLUMNS))
    return {row["dataset_id"]: {k: v for k, v in row.items() if k != "pending"} for row in rows}


def read_row(location: StoreLocation, dataset_id: str) -> dict[str, Any] | None:
    """One dataset's row, all columns (None when the catalog lists no such dataset)."""
    root = _snapshot_root(location)
    ids = _read(root, ("dataset_id",))["dataset_id"]
    found = np.flatnonzero(ids == dataset_id)
    if not found.size:
        return None
    index = int(found[-1])
    table = tables.open_table(root, TABLE) if root is not None else None
    columns = tables.read(table, COLUMNS, slice(index, index + 1), where="the catalog") if table is not None \
        else {k: v[index:index + 1] for k, v in _read(root, COLUMNS).items()}
    rows = _settled(location, columns)
    return {k: v for k, v in rows[0].items() if k != "pending"} if rows else None


def mark_pending(location: StoreLocation, dataset_ids: list[str]) -> None:
    """Mark datasets about to be written as pending, in one catalog commit (see the module's description)."""
    _update(location, {dataset_id: None for dataset_id in dataset_ids}, pending=True)


def refresh(location: StoreLocation, dataset_ids: list[str], *, ingested: bool = True) -> None:
    """Derive the rows of ``dataset_ids`` from their groups and publish them in one catalog commit, with now as
    their last ingest (``ingested``; else the last ingest the catalog has is kept)."""
    now = str(np.datetime64(time.time_ns(), "ns")) if ingested else None
    _update(location, {dataset_id: dataset_row(location, dataset_id, now) for dataset_id in dataset_ids})


def _update(location: StoreLocation, rows: dict[str, dict[str, Any] | None], *, pending: bool = False) -> None:
    def change(session: icechunk.Session) -> tuple[None, str]:
        _write_changes(zarr.open_group(session.store, mode="a"), rows, pending)
        return None, f"catalog{' (pending)' if pending else ''}: {', '.join(sorted(rows))}"

    write_transaction(location, CATALOG, change)


def _write_changes(root: zarr.Group, rows: dict[str, dict[str, Any] | None], pending: bool) -> None:
    """Write the changed rows: in place, new ones after the others. The whole table is written when there is none
    yet (or one of 0.1, whose attribute goes) and when a row is removed (its size is the number of datasets)."""
    table = tables.open_table(root, TABLE)
    whole = table is None
    keys = ("dataset_id", "pending", "last_ingest")
    columns = _read(root, COLUMNS) if whole else tables.read(table, keys, where="the catalog")
    where = {dataset_id: index for index, dataset_id in enumerate(columns["dataset_id"])}
    changed: dict[int, dict[str, Any]] = {}
    added: list[dict[str, Any]] = []
    removed: set[int] = set()
    for dataset_id, row in rows.items():
        index = where.get(dataset_id)
        if pending:
            if index is not None and columns["pending"][index]:
                continue
            row = {"dataset_id": dataset_id, "pending": 1}
        elif row is None:
            if index is not None:
                removed.add(index)
            continue
        else:
            known = _decode({k: columns[k] for k in keys}, index)["last_ingest"] if index is not None else None
            row = {**row, "pending": 0, "last_ingest": row.get("last_ingest") or known}
        if index is None:
            added.append(row)
        else:
            changed[index] = row
    if whole or removed:
        if not whole:
            columns = tables.read(table, COLUMNS, where="the catalog")
        kept = [_merged(changed.get(i), columns, i) for i in range(len(columns["dataset_id"])) if i not in removed]
        root.attrs.pop(legacy.CATALOG_ATTRIBUTE, None)
        tables.write(root, TABLE, _encode(kept + added), layout=LAYOUT)
        return
    for index, row in changed.items():
        encoded = _encode([row])
        # a pending mark changes one number of a listed row: only the array holding it is written (and committed)
        names = ("pending",) if pending else COLUMNS
        tables.write_row(root[TABLE], index, {name: encoded[name][0] for name in names})
    if added:
        tables.write(root, TABLE, _encode(added), at=len(columns["dataset_id"]))


def _merged(row: dict[str, Any] | None, columns: dict[str, np.ndarray], index: int) -> dict[str, Any]:
    """A row as changed (a pending mark changes only that), else as it is."""
    current = _decode(columns, index)
    return current if row is None else {**current, **row} if set(row) == {"dataset_id", "pending"} else row
