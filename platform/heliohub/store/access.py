"""Dataset IDs to lazy xarray datasets, and the catalog as a search: what users touch on the platform.

Everything here reads the archive store that ``HELIOHUB_ARCHIVE`` and the ``AWS_*`` variables point at (the
platform sets them in every user environment), so a notebook needs no paths, endpoints or credentials.
"""

from __future__ import annotations

import collections
import difflib
import threading
import warnings
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ..errors import (
    ArchiveError,
    CaveatWarning,
    DatasetNotFoundError,
    HeliohubError,
    StoreDamagedError,
    TimeRangeError,
)
from . import catalog, legacy, provenance, time_index
from .caveats import caveats
from .layout import TIME_UNITS, VARIABLE_ORDER, lazily_converted, record_dims, time_bounds
from .location import BRANCH, CATALOG, StoreLocation, check_dataset_id, forget_repositories, opened_repository
from .versions import pinned_session

TimeLike = str | datetime | date | np.datetime64 | pd.Timestamp | None
_NAT = np.iinfo(np.int64).min

TIME_AXES_CACHE_BYTES = 512 << 20
"""The most decoded time axes kept between opens (the least recently used go first)."""

_lock = threading.Lock()
# Keyed by the store's identity (URL, endpoint and credentials: two users' keys in one process are two caches) and
# snapshots, so never stale.
_catalogs: dict[tuple[str, ...], tuple[str, pd.DataFrame]] = {}
_time_axes: collections.OrderedDict[tuple[Any, ...], np.ndarray] = collections.OrderedDict()
OPENED_GROUPS = 64
"""The most opened groups (lazy: their metadata and time index, no values) kept between opens."""
_groups: collections.OrderedDict[tuple[Any, ...], tuple[xr.Dataset, Any]] = collections.OrderedDict()
_cautioned: set[tuple[Any, ...]] = set()
"""The (store, dataset) pairs whose caveats this process has warned of (once each)."""


def clear_caches() -> None:
    """Forget the repositories, catalogs and time axes kept between calls (they are keyed by the store's
    snapshots, so they are never stale; this only frees memory)."""
    forget_repositories()
    with _lock:
        _catalogs.clear()
        _time_axes.clear()
        _groups.clear()
        _cautioned.clear()


def _cached_axis(key: tuple[Any, ...]) -> np.ndarray | None:
    with _lock:
        values = _time_axes.get(key)
        if values is not None:
            _time_axes.move_to_end(key)
        return values


def _keep_axis(key: tuple[Any, ...], values: np.ndarray) -> None:
    """Keep a decoded time axis, dropping the least recently used past :data:`TIME_AXES_CACHE_BYTES`."""
    if values.nbytes > TIME_AXES_CACHE_BYTES:
        return
    with _lock:
        _time_axes[key] = values
        while sum(v.nbytes for v in _time_axes.values()) > TIME_AXES_CACHE_BYTES:
            _time_axes.popitem(last=False)


def _repository(store: StoreLocation, name: str) -> icechunk.Repository | None:
    """The repository (opened once per process and reused: once opened, the store is not asked again whether it
    exists, a request at every warm open and search; see :func:`_removed_since`), or None when the store has no
    such repository."""
    kept = opened_repository(store, name)
    if kept is not None:
        return kept
    try:
        if not store.exists(name):
            return None
        return store.repository(name)
    except (icechunk.IcechunkError, OSError) as error:  # the endpoint unreachable, or refusing
        raise store.error(f"cannot read {name!r}", error) from None


def _removed_since(store: StoreLocation, name: str, error: icechunk.IcechunkError) -> None:
    """After ``error`` from a repository this process opened: returns when the store no longer has it (removed
    since it was opened; it is forgotten), else raises the store's error."""
    forget_repositories(store, name)
    try:
        if not store.exists(name):
            return
    except (icechunk.IcechunkError, OSError):
        pass
    raise store.error(f"cannot read {name!r}", error) from None


def _session(store: StoreLocation, name: str) -> icechunk.Session | None:
    repo = _repository(store, name)
    if repo is None:
        return None
    try:
        return repo.readonly_session(branch=BRANCH)
    except icechunk.IcechunkError as error:
        _removed_since(store, name, error)
        return None


def cached_catalog(store: StoreLocation) -> pd.DataFrame:
    """The catalog's searched columns (see :func:`.catalog.read_frame`), re-read only when the catalog changed
    (one small request to see whether it did)."""
    repo = _repository(store, CATALOG)
    if repo is None:
        return _frame(catalog.read_frame(store, None))
    try:
        snapshot = repo.lookup_branch(BRANCH)
    except icechunk.IcechunkError as error:
        _removed_since(store, CATALOG, error)
        return _frame(catalog.read_frame(store, None))
    cached = _catalogs.get(store.identity)
    if cached is not None and cached[0] == snapshot:
        return cached[1]
    try:
        frame = _frame(catalog.read_frame(store, repo.readonly_session(snapshot_id=snapshot)))
    except (icechunk.IcechunkError, OSError) as error:
        raise store.error("cannot read the catalog", error) from None
    _catalogs[store.identity] = (snapshot, frame)
    return frame


def _frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(size=frame["stored_bytes"].where(frame["stored_bytes"].notna(), frame["nbytes"]))
    frame = frame[["dataset_id", "title", "mission", "spacecraft", "instrument", "start", "end", "records", "size"]]
    text = frame[["dataset_id", "title", "mission", "spacecraft", "instrument"]].fillna("").astype(str)
    frame.attrs["_haystack"] = np.array([" ".join(row).lower() for row in text.itertuples(index=False)], dtype=object)
    return frame


def not_found(store: StoreLocation, dataset_id: str) -> DatasetNotFoundError:
    ids = sorted(cached_catalog(store)["dataset_id"])
    by_lower = {i.lower(): i for i in ids}
    close = [by_lower[m] for m in difflib.get_close_matches(dataset_id.lower(), list(by_lower), n=5, cutoff=0.5)]
    if not close:
        close = [i for i in ids if dataset_id.lower() in i.lower()][:5]
    hint = f"closest: {', '.join(close)}" if close else f"the store holds {len(ids)} dataset(s); see heliohub.search()"
    return DatasetNotFoundError(f"no dataset {dataset_id!r} in the archive store {store.url} ({hint})")


def timestamp(value: TimeLike, what: str) -> np.datetime64 | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as error:
        raise TimeRangeError(f"{what}={value!r} is not a time (use ISO text such as '2001-07-06T21:00', a "
                             "datetime or a numpy datetime64)") from error
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.as_unit("ns").asm8, "ns")


def open_dataset(dataset_id: str, start: TimeLike = None, end: TimeLike = None, *,
                 variables: Iterable[str] | str | None = None, chunks: Any = None,
                 version: str | pd.Timestamp | None = None,
                 archive: str | StoreLocation | None = None) -> xr.Dataset:
    """A dataset of the archive store, by the archive's dataset ID, lazily.

    Only metadata and the time axis are read here (with a range, only the time axis's chunks that the range
    overlaps); values are read when used, and only the chunks that cover them.

    Parameters
    ----------
    dataset_id:
        The archive's dataset ID, for example ``"C1_CP_FGM_SPIN"`` or ``"SOHO_EIT_195"``.
    start, end:
        The time range (inclusive), as ISO text, datetimes or numpy datetimes; open-ended when omitted.
    variables:
        The variables to keep (with their coordinates); all when omitted.
    chunks:
        As in ``xarray.open_dataset``: None for lazy numpy-backed variables, ``{}`` for dask arrays in the
        stored chunks, or a dict of chunk sizes.
    version:
        The dataset as it was: a release tag (``heliohub.tag_release``), an Icechunk snapshot ID, or a time (the
        last ingest at or before it); the latest when omitted. ``heliohub.versions(ID)`` lists them. The opened
        dataset's ``heliohub_snapshot`` attribute says which snapshot it is, for ``heliohub.cite``.
    archive:
        The archive store; ``HELIOHUB_ARCHIVE`` (set on the platform) when omitted.
    """
    store = StoreLocation.resolve(archive)
    session = _dataset_session(store, dataset_id, version)
    try:
        ds, coverage = _open_range(session, store.identity, dataset_id, chunks, start, end)
    except (icechunk.IcechunkError, OSError) as error:  # the store did not answer, or refused
        raise store.error(f"cannot open {dataset_id!r}", error) from None
    ds = _select(ds, dataset_id, start, end, coverage)
    if variables is not None:
        wanted = [variables] if isinstance(variables, str) else list(variables)
        missing = [v for v in wanted if v not in ds.variables]
        if missing:
            raise HeliohubError(f"{dataset_id} has no variable(s) {', '.join(missing)}; it has: "
                                f"{', '.join(map(str, ds.data_vars))}")
        ds = ds[wanted]
    ds.attrs["heliohub_snapshot"] = session.snapshot_id
    found = caveats(ds.attrs, [str(n) for n in ds.variables])
    if found:
        ds.attrs["caveats"] = found
        with _lock:
            first_time = (store.identity, dataset_id) not in _cautioned
            _cautioned.add((store.identity, dataset_id))
        if first_time:
            warnings.warn(CaveatWarning(
                f"{dataset_id} has {len(found)} caveat(s) from its archive, e.g. {found[0][:160]!r}: all are in "
                f"ds.attrs['caveats'] and heliohub.describe({dataset_id!r})"), stacklevel=2)
    return ds


def open_group(session: icechunk.Session, dataset_id: str, chunks: Any) -> xr.Dataset:
    """The group of a writable session (uncommitted changes included) as :func:`open_dataset` opens a snapshot,
    its time axes decoded and not kept."""
    return _open_range(session, None, dataset_id, chunks, None, None)[0]


def _open_range(session: icechunk.Session, identity: tuple[str, ...] | None, dataset_id: str, chunks: Any,
                start: TimeLike, end: TimeLike) -> tuple[xr.Dataset, tuple[np.datetime64, np.datetime64] | None]:
    """The group as xarray would open it, with the time axes decoded here and kept per snapshot of the store of
    that ``identity`` (None: not kept, for a writable session's uncommitted changes).

    xarray would read each time axis three times at every open (its first value, its last, then all of it, to
    check and then build the index); heliohub stores times as int64 nanoseconds since 1970 (see layout.py), so
    decoding is a view, and a time axis already read for this snapshot is not read again. When a range is given
    and the main time axis of this snapshot is not kept in memory, only the time chunks the range overlaps (found
    from the group's :data:`~heliohub.store.layout.TIME_INDEX`) are read, and the dataset is cut to their records
    (lazily: nothing else is read). Also returns the main time axis's coverage when the index gives it (None: take
    it from the axis)."""
    ds, bounds = _opened_group(session, identity, dataset_id, chunks)
    times, axes, main = _stored_times(ds)
    coverage = (np.datetime64(int(bounds[0][0]), "ns"), np.datetime64(int(bounds[1][-1]), "ns")) if bounds else None
    cut = None
    if bounds and (start is not None or end is not None) and \
            (identity is None or _cached_axis((identity, dataset_id, session.snapshot_id, main)) is None):
        cut = _records_for(bounds, int(ds[main].encoding["chunks"][0]), ds.sizes[main], start, end)
        if cut is not None:
            ds = ds.isel({main: cut})
    decoded = {}
    for name in axes:
        key = (identity, dataset_id, session.snapshot_id, name)
        keep = identity is not None and not (name == main and cut is not None)
        values = _cached_axis(key) if keep else None
        if values is None:
            values = np.asarray(ds[name].values).view("datetime64[ns]")
            if keep:
                _keep_axis(key, values)
        # fastpath: values are datetime64[ns] already, and xarray's checks would import dask.array (and scipy
        # through it: ~0.5 s of a fresh process's first open) just to ask whether this numpy array is a dask one
        decoded[name] = xr.Variable((name,), values, _time_attrs(ds[name].attrs), ds[name].encoding, fastpath=True)
    others = [name for name in times if name not in axes]
    if others:
        cf = xr.decode_cf(ds[others].drop_vars([n for n in ds[others].coords if n in axes]),
                          decode_times=True)
        decoded.update({name: cf[name].variable for name in others})
    for name, variable in ds.variables.items():
        if variable.dtype.kind == "T":
            decoded[name] = _text_as_objects(variable)
    coords = {n: v for n, v in decoded.items() if n in ds.coords}
    ds = ds.assign(**{n: v for n, v in decoded.items() if n not in coords}).assign_coords(coords)
    for dim in ds.dims:  # the other dimension coordinates (energy bins, ...) get their indexes as usual
        if dim in ds.coords and dim not in ds.xindexes:
            ds = ds.set_xindex(dim)
    return ds, coverage


def _opened_group(session: icechunk.Session, identity: tuple[str, ...] | None, dataset_id: str,
                  chunks: Any) -> tuple[xr.Dataset, Any]:
    """The group opened lazily as xarray opens it (times as stored), and its main time axis's index (each chunk's
    first and last time, or None): kept per snapshot of the store of that ``identity`` (None: not kept), so a warm
    open reads nothing but what its range needs. A shallow copy is handed out: attributes set on it stay its own."""
    key = (identity, dataset_id, session.snapshot_id, repr(chunks))
    with _lock:
        kept = _groups.get(key) if identity is not None else None
        if kept is not None:
            _groups.move_to_end(key)
    if kept is None:
        ds = _in_source_order(xr.open_zarr(session.store, consolidated=False, chunks=chunks, decode_times=False,
                                           create_default_indexes=False))
        main = _stored_times(ds)[2]
        bounds = None
        if main is not None:
            chunk = ds[main].encoding.get("chunks", (None,))[0]
            bounds = time_index.read_bounds(zarr.open_group(session.store, mode="r"), main, ds.sizes[main], chunk) \
                if not legacy.is_legacy(ds.attrs) else legacy.bounds(ds.attrs, main, ds.sizes[main], chunk)
        for name in legacy.ATTRIBUTES:
            ds.attrs.pop(name, None)
        kept = ds, bounds
        if identity is not None:
            with _lock:
                _groups[key] = kept
                while len(_groups) > OPENED_GROUPS:
                    _groups.popitem(last=False)
    return kept[0].copy(deep=False), kept[1]


def _stored_times(ds: xr.Dataset) -> tuple[list[str], set[str], str | None]:
    """The group's time variables (as stored), those that are time axes, and its main time axis."""
    times = [name for name, v in ds.variables.items() if v.attrs.get("units") == TIME_UNITS]
    axes = {name for name in times if ds[name].dims == (name,)}
    return times, axes, min(axes, key=lambda d: (d != "time", d), default=None)


def _text_as_objects(variable: xr.Variable) -> xr.Variable:
    """The text variable as the readers give text (object arrays of str; Zarr 3 and xarray hand back numpy's
    StringDType for Zarr's string type): lazily when it is not a dask array, as dask when it is."""
    if variable.chunks is not None:
        return variable.astype(object)
    return lazily_converted(variable, object, lambda values: values.astype(object), variable.attrs,
                            {k: v for k, v in variable.encoding.items() if k != "dtype"})


def _records_for(bounds: tuple[np.ndarray, np.ndarray], chunk: int, records: int, start_given: TimeLike,
                 end_given: TimeLike) -> slice | None:
    """The records of whole chunks that hold everything ``start``..``end`` can select (xarray's selection, run
    on the chunks' first and last times), or None for the whole axis. A range :func:`_select` refuses (outside
    the coverage, start after end) gives few or no records here; it is refused there."""
    start, end = timestamp(start_given, "start"), timestamp(end_given, "end")
    first, last = bounds
    edges = pd.DatetimeIndex(np.column_stack([first, last]).ravel().view("datetime64[ns]"))
    inside = edges.slice_indexer(*_given(start_given, start, end_given, end))
    a, b = inside.start or 0, len(edges) if inside.stop is None else inside.stop
    if a < b:
        chunks = (a // 2, (b - 1) // 2)
    elif a % 2:  # the range lies inside one chunk, between its first and last time
        chunks = (a // 2, a // 2)
    else:  # between two chunks: no record; an empty cut at the boundary
        return slice(a // 2 * chunk, a // 2 * chunk)
    rows = slice(chunks[0] * chunk, min(records, (chunks[1] + 1) * chunk))
    return None if rows == slice(0, records) else rows


def _given(start_given: TimeLike, start: np.datetime64 | None, end_given: TimeLike,
           end: np.datetime64 | None) -> list[Any]:
    """The range as xarray's ``sel`` gets it: text kept (pandas' partial-string semantics), the rest as times."""
    return [v if isinstance(v, str) else t for v, t in ((start_given, start), (end_given, end))]


def _in_source_order(ds: xr.Dataset) -> xr.Dataset:
    """The variables in the order the group's :data:`~heliohub.store.merge.VARIABLE_ORDER` gives (a group written before
    it existed: by name), so the dataset opens the same every time."""
    listed = [str(n) for n in ds.attrs.pop(VARIABLE_ORDER, [])]
    rank = {name: index for index, name in enumerate(listed)}
    names = sorted(map(str, ds.variables), key=lambda n: (rank.get(n, len(rank)), n))
    coords = xr.Coordinates({n: ds.variables[n] for n in names if n in ds.coords}, indexes={})
    return xr.Dataset({n: ds.variables[n] for n in names if n not in ds.coords}, coords=coords, attrs=ds.attrs)


def _time_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k not in ("units", "calendar")}


def _select(ds: xr.Dataset, dataset_id: str, start_given: TimeLike, end_given: TimeLike,
            coverage: tuple[np.datetime64, np.datetime64] | None = None) -> xr.Dataset:
    """The range, checked against the coverage (the main time axis's first and last time; taken from the axis when
    not given), selected as xarray does (text with pandas' partial-string semantics: ``end="2001-07-08T13:00"``
    takes the whole minute)."""
    start, end = timestamp(start_given, "start"), timestamp(end_given, "end")
    if start is None and end is None:
        return ds
    if start is not None and end is not None and start > end:
        raise TimeRangeError(f"start {start} is after end {end}")
    axes = record_dims(ds)
    if not axes:
        raise TimeRangeError(f"{dataset_id} has no time axis to select a range on")
    bounds = coverage or time_bounds(ds[axes[0]].values)
    if bounds is None:
        raise TimeRangeError(f"{dataset_id} holds no records, so no range can be selected")
    first, last = bounds
    if (start is not None and start > last) or (end is not None and end < first):
        raise TimeRangeError(f"{dataset_id} covers {first} to {last}; the range asked for "
                             f"({start or '...'} to {end or '...'}) lies outside it")
    rows = _sorted_rows(ds[axes[0]].values, start_given, start, end_given, end)
    if rows is None:  # not sorted, or a bound pandas reads another way: xarray selects
        return ds.sel({axes[0]: slice(*_given(start_given, start, end_given, end))})
    return ds.isel({axes[0]: rows})


def _sorted_rows(times: np.ndarray, start_given: TimeLike, start: np.datetime64 | None, end_given: TimeLike,
                end: np.datetime64 | None) -> slice | None:
    """The records of ``times`` from ``start`` to ``end`` as xarray's ``sel`` selects them (text with pandas'
    partial-string semantics: the end takes the whole period its text names), found by binary search; None when
    the axis is not sorted, holds NaT, or a bound is text with a time zone (xarray then selects).

    xarray's ``sel`` hands the slice to pandas, which builds a hash table of the whole index first when it holds
    fewer than a million values (more, and it searches a sorted index); one time chunk of 4 s data (524,288
    records) is just under that (the cost is in docs/store-layout.md).
    """
    if times.dtype != np.dtype("datetime64[ns]"):
        return None
    stamps = times.view("int64")
    if stamps.size and (stamps[0] == _NAT or not (stamps[1:] >= stamps[:-1]).all()):
        return None
    bounds = []
    for given, stamp, side in ((start_given, start, "start"), (end_given, end, "end")):
        if isinstance(given, str):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # pandas warns where it drops a time zone
                try:
                    if pd.Timestamp(given).tzinfo is not None:
                        return None
                    period = pd.Period(given)
                except (ValueError, TypeError, Warning):
                    return None
            stamp = (period.start_time if side == "start" else period.end_time).as_unit("ns").asm8
        bounds.append(None if stamp is None else np.datetime64(stamp, "ns").view("int64"))
    first = 0 if bounds[0] is None else int(np.searchsorted(stamps, bounds[0], "left"))
    last = len(stamps) if bounds[1] is None else int(np.searchsorted(stamps, bounds[1], "right"))
    return slice(first, max(first, last))


def search(text: str | None = None, *, mission: str | None = None, spacecraft: str | None = None,
           instrument: str | None = None, start: TimeLike = None, end: TimeLike = None,
           archive: str | StoreLocation | None = None) -> pd.DataFrame:
    """Datasets of the archive store matching all that is given, as a DataFrame (ID, title, coverage, size).

    ``text`` matches words of the ID, title, mission, spacecraft and instrument, case-insensitively;
    ``mission``, ``spacecraft`` and ``instrument`` match those fields (case-insensitively, as substrings);
    ``start`` and ``end`` keep datasets with data in that range. The catalog is cached and re-read only when it
    changes, so this is fast enough to call on every keystroke.
    """
    store = StoreLocation.resolve(archive)
    frame = cached_catalog(store)
    mask = np.ones(len(frame), dtype=bool)
    if text:
        haystack = frame.attrs.get("_haystack", np.array([], dtype=object))
        for word in text.lower().split():
            mask &= np.array([word in h for h in haystack], dtype=bool)
    for column, wanted in (("mission", mission), ("spacecraft", spacecraft), ("instrument", instrument)):
        if wanted:
            mask &= frame[column].fillna("").str.lower().str.contains(wanted.lower(), regex=False).to_numpy()
    first, last = timestamp(start, "start"), timestamp(end, "end")
    if first is not None:
        mask &= (frame["end"] >= first).fillna(False).to_numpy()
    if last is not None:
        mask &= (frame["start"] <= last).fillna(False).to_numpy()
    result = frame[mask].reset_index(drop=True)
    result.attrs = {}
    return result


class Description(dict):
    """A dataset's catalog row, printed as a readable summary (with its files when asked for)."""

    def __str__(self) -> str:
        lines = [f"{self['dataset_id']}: {self.get('title') or ''}",
                 f"  mission {self.get('mission')}, spacecraft {self.get('spacecraft')}, "
                 f"instrument {self.get('instrument')}",
                 f"  coverage {self.get('start')} to {self.get('end')}, {self.get('records')} records, "
                 f"{self.get('files')} file(s), version {self.get('version')}, last ingest {self.get('last_ingest')}",
                 "  variables:"]
        for variable in self.get("variables", []):
            units = f" [{variable['units']}]" if variable.get("units") else ""
            about = variable.get("description") or ""
            lines.append(f"    {variable['name']} {tuple(variable['shape'])}{units}: {about}")
        lines.append(f"  acknowledgement: {self.get('acknowledgement')}")
        if self.get("caveats"):
            lines.append("  caveats:")
            lines += [f"    {caveat}" for caveat in self["caveats"]]
        if self.get("file_table") is not None:
            lines.append("  files:")
            lines += [f"    {line}" for line in self["file_table"].to_string(index=False).splitlines()]
        return "\n".join(lines)

    __repr__ = __str__


def describe(dataset_id: str, *, files: bool = False, start: TimeLike = None, end: TimeLike = None,
             archive: str | StoreLocation | None = None) -> Description:
    """Variables (names, shapes, units, descriptions), coverage, file count, version and acknowledgement of a
    dataset, from the catalog; with ``files=True`` also the files it came from (see :func:`files`), those whose
    span overlaps ``start``..``end`` when given, as ``file_table``."""
    store = StoreLocation.resolve(archive)
    try:
        check_dataset_id(dataset_id)
        row = catalog.read_row(store, dataset_id)
    except StoreDamagedError:
        raise
    except ArchiveError as error:
        raise DatasetNotFoundError(str(error)) from None
    if row is None:
        raise not_found(store, dataset_id)
    described = Description(row)
    ds, _ = _opened_group(_dataset_session(store, dataset_id), store.identity, dataset_id, None)
    described["caveats"] = caveats(ds.attrs, [str(n) for n in ds.variables])
    if files:
        described["file_table"] = file_table(dataset_id, start, end, archive=store)
    return described


def file_table(dataset_id: str, start: TimeLike = None, end: TimeLike = None, *,
               version: str | pd.Timestamp | None = None, archive: str | StoreLocation | None = None) -> pd.DataFrame:
    """The files a dataset came from, one row per file that went in, in the order they went in (name, version,
    size, SHA-256, records, first and last time, when it went in, ``ingested`` or ``replaced``, and whether it is
    its delivery's ``current`` version); with ``start``/``end``, the files whose span overlaps that range; with
    ``version``, as the dataset was then (see :func:`open_dataset`)."""
    store = StoreLocation.resolve(archive)
    first, last = timestamp(start, "start"), timestamp(end, "end")
    root = _root(store, dataset_id, version)
    if legacy.is_legacy(root.attrs):
        entries = legacy.read_provenance(root.attrs, f"dataset {dataset_id}")
        frame = pd.DataFrame([{"file": e.file, "key": e.key, "version": e.version, "checksum": e.checksum,
                               "size": None, "records": e.records,
                               "start": pd.Timestamp(e.spans["time"][0]) if "time" in e.spans else pd.NaT,
                               "end": pd.Timestamp(e.spans["time"][1]) if "time" in e.spans else pd.NaT,
                               "ingested": pd.NaT, "status": "ingested", "current": True} for e in entries],
                             columns=[*[c for c in provenance.COLUMNS if c != "spans"], "current"])
        return provenance.overlapping(frame, first, last)
    return provenance.files_frame(root, f"the provenance table of {dataset_id}", first, last)


def coverage(dataset_id: str, *,
             archive: str | StoreLocation | None = None) -> list[tuple[np.datetime64, np.datetime64]]:
    """When a dataset has data: intervals of its main time axis, cut at its widest gaps (at most
    ``time_index.COVERAGE_INTERVALS``), from its time index (no chunk of data is read)."""
    store = StoreLocation.resolve(archive)
    root = _root(store, dataset_id)
    ds = _in_source_order(xr.open_zarr(root.store, consolidated=False, chunks=None, decode_times=False,
                                       create_default_indexes=False))
    axes = [n for n, v in ds.variables.items() if v.attrs.get("units") == TIME_UNITS and v.dims == (n,)]
    if not axes:
        return []
    main = min(axes, key=lambda d: (d != "time", d))
    if legacy.is_legacy(root.attrs):
        intervals = (root.attrs.get(legacy.TIME_INDEX) or {}).get(main, {}).get("coverage")
    else:
        intervals = time_index.read_coverage(root, main)
    if intervals is None:  # an axis with no index (chunks overlapping in time): from the axis itself
        intervals = time_index.coverage(np.asarray(ds[main].values).view("datetime64[ns]"))
    return [(np.datetime64(a, "ns"), np.datetime64(b, "ns")) for a, b in intervals]


def _dataset_session(store: StoreLocation, dataset_id: str,
                     version: str | pd.Timestamp | None = None) -> icechunk.Session:
    """A read-only session of the dataset's latest snapshot (or of ``version``: see :func:`open_dataset`), or
    DatasetNotFoundError naming the closest IDs."""
    try:
        check_dataset_id(dataset_id)
    except ArchiveError as error:
        raise DatasetNotFoundError(str(error)) from None
    if version is not None:
        repo = _repository(store, dataset_id)
        if repo is None:
            raise not_found(store, dataset_id)
        try:
            return pinned_session(repo, dataset_id, version)
        except icechunk.IcechunkError as error:
            raise store.error(f"cannot read {dataset_id!r} at version {version!r}", error) from None
    session = _session(store, dataset_id)
    if session is None:
        raise not_found(store, dataset_id)
    return session


def _root(store: StoreLocation, dataset_id: str, version: str | pd.Timestamp | None = None) -> zarr.Group:
    """The dataset's group in the latest snapshot (or at ``version``)."""
    session = _dataset_session(store, dataset_id, version)
    try:
        return zarr.open_group(session.store, mode="r")
    except (zarr.errors.GroupNotFoundError, FileNotFoundError):
        raise not_found(store, dataset_id) from None
