"""The files each dataset came from: a table in the dataset's own group, appended by every ingest.

The table ``heliohub/files`` (see :data:`~.layout.META`) has one row per file that went in, in the order they went
in: its name, delivery key and version, size, SHA-256, record count, first and last time (int64 nanoseconds, of
the main time axis; every axis's span as JSON), when it went in and how (``ingested``, or ``replaced`` when it
replaced an older version of its delivery). A row is never rewritten: a delivery's current version is its latest
row. It is committed with the records it describes, read by the ingest (to know known files and versions) and by
``heliohub files``, never by ``open_dataset``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ..errors import StoreDamagedError
from . import tables
from .layout import META, record_dims, time_bounds

log = logging.getLogger(__name__)
FILES = f"{META}/files"
LAYOUT = {"text": ["file", "key", "version", "checksum"], "text_details": ["spans", "status"],
          "numbers": ["size", "records", "start", "end", "ingested"]}
"""Who the files are (what an ingest reads of every row) apart from their details (read for the rows it needs).
Tables written before this split hold all text in one array; they are read as their ``columns`` attribute says."""
COLUMNS = ("file", "key", "version", "checksum", "size", "records", "start", "end", "spans", "ingested", "status")
_NAT = np.iinfo(np.int64).min


@dataclass(frozen=True)
class FileEntry:
    """One source file of a dataset, as its provenance records it."""

    file: str
    key: str
    """The file's name without its version: two files of one key are versions of one delivery."""
    version: str
    checksum: str
    records: int
    spans: dict[str, tuple[str, str]]
    """For each record axis, the first and last time in the file (ISO text)."""
    size: int = -1
    """The file's size in bytes, as read (decompressed); -1 where it was not recorded (stores of 0.1)."""

    @property
    def order(self) -> tuple[Any, ...]:
        """Later files win ties: by version, then name (independent of the order files were given in)."""
        return (self.key, _version_number(self.version), self.file)


def _version_number(version: str) -> tuple[int, str]:
    digits = "".join(ch for ch in version if ch.isdigit())
    return (int(digits) if digits else -1, version)


def newer(a: FileEntry, b: FileEntry) -> bool:
    """Whether ``a`` is a newer version than ``b`` of the same delivery."""
    return _version_number(a.version) > _version_number(b.version)


def spans_of(ds: xr.Dataset) -> dict[str, tuple[str, str]]:
    """Each record axis's first and last time in ``ds`` (ISO text)."""
    spans = {}
    for dim in record_dims(ds):
        bounds = time_bounds(ds.variables[dim].values)
        if bounds is not None:
            spans[dim] = (str(bounds[0]), str(bounds[1]))
    return spans


def _stamp(text: str | None) -> int:
    return int(np.datetime64(text, "ns").view("int64")) if text else _NAT


def _table(root: zarr.Group) -> zarr.Group | None:
    return tables.open_table(root, FILES)


def current(root: zarr.Group, where: str) -> list[FileEntry] | None:
    """The current files of the dataset (each delivery's latest row), in the order they went in; None when the
    group has no provenance table."""
    table = _table(root)
    if table is None:
        return None
    columns = tables.read(table, ("file", "key", "version", "checksum", "size", "records", "spans"), where=where)
    latest = {key: row for row, key in enumerate(columns["key"])}
    return [_entry(columns, row, where) for row in sorted(latest.values())]


def _entry(columns: dict[str, np.ndarray], row: int, where: str, spans_text: str | None = None) -> FileEntry:
    """Row ``row`` of the table's ``columns`` as a :class:`FileEntry` (its spans decoded: ``spans_text``, or the
    row's in ``columns``)."""
    try:
        text = columns["spans"][row] if spans_text is None else spans_text
        spans = {dim: (str(a), str(b)) for dim, (a, b) in json.loads(text).items()}
    except (ValueError, TypeError, AttributeError) as error:
        raise StoreDamagedError(f"{where}: row {row} of its spans is not a span per axis ({error})") from None
    return FileEntry(file=columns["file"][row], key=columns["key"][row], version=columns["version"][row],
                     checksum=columns["checksum"][row], records=int(columns["records"][row]), spans=spans,
                     size=int(columns["size"][row]))


def rank(entry: FileEntry) -> tuple[int, tuple[Any, ...]]:
    """Which of a dataset's files is its newest (its attributes' source): the latest first time, then the order."""
    return (_stamp(entry.spans.get("time", (None, None))[0]), entry.order)


@dataclass(frozen=True)
class KnownFiles:
    """What an ingest needs to know of a dataset's current files, found without decoding every row (an append's
    cost must not grow with the dataset's history): their count and checksums, the current entries of the
    deliveries it brings, and each current file's rank."""

    count: int
    checksums: frozenset[str]
    by_key: dict[str, FileEntry]
    """The current entry of each delivery key asked for that the dataset holds."""
    keys: np.ndarray
    starts: np.ndarray
    versions: np.ndarray
    files: np.ndarray

    @classmethod
    def of(cls, entries: list[FileEntry], keys: set[str]) -> KnownFiles:
        """From a list of current entries (a store of 0.1, moved to the present layout)."""
        return cls(len(entries), frozenset(e.checksum for e in entries), {e.key: e for e in entries if e.key in keys},
                   np.array([e.key for e in entries], dtype=object),
                   np.array([rank(e)[0] for e in entries], dtype=np.int64),
                   np.array([e.version for e in entries], dtype=object),
                   np.array([e.file for e in entries], dtype=object))

    def newest(self, leaving_out: set[str]) -> tuple[int, tuple[Any, ...]] | None:
        """The rank of the newest current file whose key is not in ``leaving_out`` (None: there is none)."""
        kept = ~np.isin(self.keys, list(leaving_out)) if leaving_out else np.ones(len(self.keys), bool)
        if not kept.any():
            return None
        start = int(self.starts[kept].max())
        rows = np.flatnonzero(kept & (self.starts == start))
        return max((start, (self.keys[r], _version_number(self.versions[r]), self.files[r])) for r in rows)


def known_files(root: zarr.Group, where: str, keys: set[str]) -> KnownFiles | None:
    """The dataset's :class:`KnownFiles` for an ingest bringing deliveries ``keys``; None when the group has no
    provenance table. Only the rows of those keys have their spans decoded."""
    table = _table(root)
    if table is None:
        return None
    columns = tables.read(table, ("file", "key", "version", "checksum", "size", "records", "start"), where=where)
    latest = np.array(sorted({key: row for row, key in enumerate(columns["key"])}.values()), dtype=np.int64)
    if not latest.size:
        return KnownFiles.of([], keys)
    rows = [int(r) for r in latest if columns["key"][r] in keys]
    found = {}
    if rows:  # the spans of those rows alone: the chunks from the first to the last of them
        spans = tables.read(table, ("spans",), rows=slice(rows[0], rows[-1] + 1), where=where)["spans"]
        found = {columns["key"][row]: _entry(columns, row, where, spans[row - rows[0]]) for row in rows}
    return KnownFiles(len(latest), frozenset(columns["checksum"][latest].tolist()), found, columns["key"][latest],
                      np.asarray(columns["start"][latest], dtype=np.int64), columns["version"][latest],
                      columns["file"][latest])


def count(root: zarr.Group) -> int:
    """How many files the dataset holds now (one per delivery), from the table's attributes: no row is read."""
    table = _table(root)
    return int(table.attrs.get("current", 0)) if table is not None else 0


def append(root: zarr.Group, entries: list[tuple[FileEntry, str]], at: pd.Timestamp | None,
           current_count: int) -> None:
    """Add a row per (file, what happened to it) after the rows there, all ingested at ``at`` (None: not known);
    ``current_count``: how many files the dataset holds with them."""
    table = _table(root)
    rows = tables.length(table, FILES) if table is not None else 0
    main = "time"
    tables.write(root, FILES, {
        "file": [e.file for e, _ in entries], "key": [e.key for e, _ in entries],
        "version": [e.version for e, _ in entries], "checksum": [e.checksum for e, _ in entries],
        "size": [e.size for e, _ in entries], "records": [e.records for e, _ in entries],
        "start": [_stamp(e.spans.get(main, (None, None))[0]) for e, _ in entries],
        "end": [_stamp(e.spans.get(main, (None, None))[1]) for e, _ in entries],
        "spans": [json.dumps(e.spans, sort_keys=True) for e, _ in entries],
        "ingested": [_NAT if at is None else int(at.as_unit("ns").value)] * len(entries),
        "status": [s for _, s in entries]}, at=rows, layout=LAYOUT)
    root[FILES].attrs["current"] = int(current_count)


def files_frame(root: zarr.Group, where: str, start: np.datetime64 | None = None,
                end: np.datetime64 | None = None) -> pd.DataFrame:
    """Every row of the table (``current``: whether it is its delivery's current version), keeping the files
    whose span overlaps ``start``..``end`` when given."""
    table = _table(root)
    if table is None:
        return pd.DataFrame(columns=[c for c in COLUMNS if c != "spans"] + ["current"])
    columns = tables.read(table, [c for c in COLUMNS if c != "spans"], where=where)
    frame = pd.DataFrame(columns)
    latest = {key: row for row, key in enumerate(columns["key"])}
    frame["current"] = [latest[key] == row for row, key in enumerate(columns["key"])]
    for column in ("start", "end", "ingested"):
        frame[column] = pd.to_datetime(frame[column].where(frame[column] != _NAT), unit="ns")
    return overlapping(frame, start, end)


def overlapping(frame: pd.DataFrame, start: np.datetime64 | None, end: np.datetime64 | None) -> pd.DataFrame:
    """The files of ``frame`` whose span overlaps ``start``..``end`` (either open)."""
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= (frame["end"] >= start).fillna(False).to_numpy()
    if end is not None:
        mask &= (frame["start"] <= end).fillna(False).to_numpy()
    return frame[mask].reset_index(drop=True)
