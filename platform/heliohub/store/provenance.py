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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ..errors import StoreDamagedError
from . import tables
from .key_index import KeyIndex, build, key_hash
from .layout import META, record_dims, time_bounds

log = logging.getLogger(__name__)
FILES = f"{META}/files"
LAYOUT = {"text": ["file", "key", "version", "checksum"], "text_details": ["spans", "status"],
          "numbers": ["size", "records", "start", "end", "ingested"]}
"""Who the files are (what an ingest reads of every row) apart from their details (read for the rows it needs).
Tables written before this split hold all text in one array; they are read as their ``columns`` attribute says."""
COLUMNS = ("file", "key", "version", "checksum", "size", "records", "start", "end", "spans", "ingested", "status")
INDEX = f"{META}/files_by_key"
"""The index of the table's delivery keys (:mod:`.key_index`): where an ingest finds the rows of the deliveries it
brings."""
NEWEST = "newest"
"""The table's attribute listing its newest current files ([first time, key, version, file], newest first, at most
:data:`NEWEST_KEPT`): an ingest takes the dataset's attributes from the newest file, and needs to know which that
is without reading every row."""
NEWEST_KEPT = 16
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


Rank = tuple[int, tuple[Any, ...]]


def _ranked(start: int, key: str, version: str, file: str) -> Rank:
    return (int(start), (key, _version_number(version), file))


@dataclass(frozen=True)
class KnownFiles:
    """What an ingest needs to know of a dataset's current files for the deliveries it brings, found without
    reading every row (an append's cost must not grow with the dataset's history): how many there are, the current
    entry of each delivery brought that the dataset holds, and the newest current files."""

    count: int
    by_key: dict[str, FileEntry]
    """The current entry of each delivery key asked for that the dataset holds."""
    ranked: list[Rank]
    """Ranks of current files, newest first: all of them (``complete``), or the newest, among which at least one
    has a key other than those asked for when the dataset holds such a file."""
    complete: bool
    index: KeyIndex | None = field(default=None, compare=False)
    """The table's key index as these were found through it, its chunks kept: the append that follows points the
    keys brought at their new rows without reading those chunks again."""

    @classmethod
    def of(cls, entries: list[FileEntry], keys: set[str]) -> KnownFiles:
        """From a list of current entries (a store of 0.1, moved to the present layout)."""
        return cls(len(entries), {e.key: e for e in entries if e.key in keys},
                   sorted((rank(e) for e in entries), reverse=True), True)

    def newest(self, leaving_out: set[str]) -> Rank | None:
        """The rank of the newest current file whose key is not in ``leaving_out`` (a subset of the keys asked
        for; None: there is none)."""
        return next((r for r in self.ranked if r[1][0] not in leaving_out), None)


def known_files(root: zarr.Group, where: str, keys: set[str]) -> KnownFiles | None:
    """The dataset's :class:`KnownFiles` for an ingest bringing deliveries ``keys``; None when the group has no
    provenance table. The rows of those keys are found through the table's key index (:mod:`.key_index`) and
    read alone, and the newest current files come from the table's :data:`NEWEST` attribute; a table without them
    (written before them) is read whole, as the next append will index it."""
    table = _table(root)
    if table is None:
        return None
    rows = tables.length(table, where)
    index = KeyIndex.open(root, INDEX, rows)
    newest = _newest_attribute(table)
    if index is None or newest is None:
        return _known_by_reading(table, where, keys)
    count = int(table.attrs.get("current", 0))
    try:
        index.prefetch(key_hash(key) for key in keys)
        found = {key: row for key in keys if (row := index.row(key)) is not None}
    except (RuntimeError, ValueError) as error:  # its chunks do not decode: derived data, built again by an append
        log.warning("%s: its key index %s does not read (%s); every row is read instead", where, INDEX, error)
        return _known_by_reading(table, where, keys)
    by_key = _entries_at(table, where, found)
    complete = len(newest) >= count
    if not complete and all(r[1][0] in keys for r in newest):  # the newest are all being brought again
        return _known_by_reading(table, where, keys)
    return KnownFiles(count, by_key, newest, complete, index)


def _newest_attribute(table: zarr.Group) -> list[Rank] | None:
    value = table.attrs.get(NEWEST)
    if not isinstance(value, list):
        return None
    try:
        return sorted((_ranked(*item) for item in value), reverse=True)
    except (TypeError, ValueError):
        return None


def _entries_at(table: zarr.Group, where: str, found: dict[str, int]) -> dict[str, FileEntry]:
    """The entries of rows ``found`` (key: row), read a chunk of rows at a time; a row holding another key (two
    keys of one hash) is left out, said in the log."""
    by_chunk: dict[int, list[tuple[str, int]]] = {}
    for key, row in found.items():
        by_chunk.setdefault(row // tables.ROWS_PER_CHUNK, []).append((key, row))
    names = ("file", "key", "version", "checksum", "size", "records", "spans")

    def one(chunk: int) -> dict[str, FileEntry]:
        first = chunk * tables.ROWS_PER_CHUNK
        columns = tables.read(table, names, rows=slice(first, first + tables.ROWS_PER_CHUNK), where=where)
        out = {}
        for key, row in by_chunk[chunk]:
            if row - first >= len(columns["key"]) or columns["key"][row - first] != key:
                log.warning("%s: the key index points %s at row %d, which holds another key; it is taken as new",
                            where, key, row)
                continue
            out[key] = _entry(columns, row - first, where)
        return out

    return {k: v for part in tables.each(one, sorted(by_chunk)) for k, v in part.items()}


def _known_by_reading(table: zarr.Group, where: str, keys: set[str]) -> KnownFiles:
    """:class:`KnownFiles` from every row's identity (a table without its key index or newest files)."""
    columns = tables.read(table, ("file", "key", "version", "start"), where=where)
    latest = {key: row for row, key in enumerate(columns["key"])}
    ranked = sorted((_ranked(columns["start"][r], columns["key"][r], columns["version"][r], columns["file"][r])
                     for r in latest.values()), reverse=True)
    return KnownFiles(len(latest), _entries_at(table, where, {k: latest[k] for k in keys if k in latest}), ranked,
                      True)


def count(root: zarr.Group) -> int:
    """How many files the dataset holds now (one per delivery), from the table's attributes: no row is read."""
    table = _table(root)
    return int(table.attrs.get("current", 0)) if table is not None else 0


def append(root: zarr.Group, entries: list[tuple[FileEntry, str]], at: pd.Timestamp | None,
           current_count: int, index: KeyIndex | None = None) -> None:
    """Add a row per (file, what happened to it) after the rows there, all ingested at ``at`` (None: not known);
    ``current_count``: how many files the dataset holds with them. Each file becomes its delivery's current one;
    the key index (``index``: as :func:`known_files` read it in this session) and the newest current files
    follow."""
    table = _table(root)
    rows = tables.length(table, FILES) if table is not None else 0
    before = _newest_attribute(table) if table is not None else []
    held_before = int(table.attrs.get("current", 0)) if table is not None else 0
    if index is None or table is None or not index.covers(rows):
        index = KeyIndex.open(root, INDEX, rows) if table is not None else None
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
    table = root[FILES]
    table.attrs["current"] = int(current_count)
    pointed = False
    if index is not None and index.has_room(len(entries)):
        try:
            index.prefetch(key_hash(entry.key) for entry, _ in entries)
            for offset, (entry, _) in enumerate(entries):
                index.point(entry.key, rows + offset)
            pointed = True
        except (RuntimeError, ValueError) as error:  # its chunks do not decode: it is built again
            log.warning("%s: its key index %s does not read (%s); it is built again", FILES, INDEX, error)
    if pointed:
        index.write(rows + len(entries))
    else:
        build(root, INDEX, tables.read(table, ("key",), where=FILES)["key"].tolist())
    newest = None if before is None else _newest_after(before, len(before) >= held_before,
                                                       [rank(e) for e, _ in entries])
    if newest is None or (not newest and current_count):
        newest = _known_by_reading(table, FILES, set()).ranked
    table.attrs[NEWEST] = [[start, key, version[1], file] for start, (key, version, file) in newest[:NEWEST_KEPT]]


def _newest_after(ranked: list[Rank], complete: bool, added: list[Rank]) -> list[Rank]:
    """The newest current files once files of ranks ``added`` become current (each replacing the current file of
    its delivery), from ``ranked``: the newest current files before, newest first (all of them when
    ``complete``). Kept exact: a file leaves when its delivery comes again; one comes in when it is newer than the
    oldest kept (or all are kept), else what lies between is not known and the list stops above it."""
    keys = {r[1][0] for r in added}
    kept = [r for r in ranked if r[1][0] not in keys]
    if not complete:
        added = [r for r in added if kept and r > kept[-1]]
    return sorted([*kept, *added], reverse=True)[:NEWEST_KEPT]


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
