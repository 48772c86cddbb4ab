"""Merging a batch of files into one dataset's Zarr group, inside an Icechunk session (committed by the caller).

The group stays time-sorted with no duplicate records along each record axis (see :func:`layout.record_dims`).
New records are merged in by rewriting the stored records from the first chunk they touch to the end, so
appending later data rewrites only the last chunk, while a file that lands in the middle rewrites what follows it.
Records of a replaced file version are removed over that file's span before the new version goes in.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr
import zarr

from . import time_index
from .chunks import set_whole_chunks
from .layout import TIME_UNITS, encode_times, encoding, lazily_converted, record_dims
from .tables import each
from .time_index import pieces


class Incompatible(ValueError):
    """A file's dataset cannot join the stored one (the message says why and what to do)."""


def check_compatible(stored: xr.Dataset, new: xr.Dataset, dataset_id: str) -> None:
    """Refuse a file whose fixed (non-record) parts differ from the stored dataset's."""
    axes = set(record_dims(stored)) | set(record_dims(new))
    for dim, size in new.sizes.items():
        if dim not in axes and dim in stored.sizes and stored.sizes[dim] != size:
            raise Incompatible(f"its dimension {dim} has {size} values where {dataset_id} in the store has "
                               f"{stored.sizes[dim]}; ingest it under another ID with --dataset-id")
    for name, variable in new.variables.items():
        if name not in stored.variables:
            raise Incompatible(f"it has a variable {name!r} that {dataset_id} in the store lacks; ingest it under "
                               "another ID with --dataset-id")
        old = stored.variables[name]
        if old.dims != variable.dims:
            raise Incompatible(f"its variable {name!r} has dimensions {variable.dims}, the store's {old.dims}")
        if variable.dtype != old.dtype and not (variable.dtype.kind in "OUST" and old.dtype.kind in "OUST"):
            raise Incompatible(f"its variable {name!r} is {variable.dtype}, the store's is {old.dtype}")
        if not (set(variable.dims) & axes) and not variable.equals(old.load() if hasattr(old, "load") else old):
            raise Incompatible(f"its constant variable {name!r} differs from the store's (for example new "
                               "energy bins); ingest it under another ID with --dataset-id")
    missing = [name for name in stored.data_vars if name not in new.variables]
    if missing:
        raise Incompatible(f"it lacks the variable(s) {', '.join(missing)} that {dataset_id} in the store has")


def origin(dim: str) -> str:
    """The temporary variable numbering, along ``dim``, the file each record came from (the store's: -1)."""
    return f"__heliohub_origin_{dim}"


def combine(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Concatenate a batch's datasets (given oldest file first) along every record axis, time-sorted, with
    records repeated from one file to another (same time, same values) kept once. A file's own records are kept
    as they are, repeated times included (event lists such as DWP's have them)."""
    first = datasets[0]
    axes = record_dims(first)
    parts = {}
    for dim in axes:
        # One numpy concatenation per variable: xr.concat of a year of daily files costs 2-3x more (it builds,
        # aligns and copies an xarray object per file). The readers' values are plain numpy arrays in heliohub's
        # convention already: xarray's fastpath (its checks would import dask.array).
        variables = {
            name: xr.Variable(variable.dims, np.concatenate([d.variables[name].values for d in datasets])
                              if len(datasets) > 1 else variable.values, variable.attrs, fastpath=True)
            for name, variable in first.variables.items() if variable.dims and variable.dims[0] == dim}
        origins = np.repeat(np.arange(len(datasets), dtype=np.int32), [d.sizes[dim] for d in datasets])
        coords = {name: v for name, v in variables.items() if name in first.coords}
        data_vars = {name: v for name, v in variables.items() if name not in coords}
        joined = xr.Dataset({**data_vars, origin(dim): xr.Variable((dim,), origins, fastpath=True)}, coords=coords)
        parts[dim] = sorted_unique(joined, dim)
    fixed = first.drop_vars([n for n, v in first.variables.items() if v.dims and v.dims[0] in axes])
    merged = xr.merge([fixed, *parts.values()], compat="override", join="outer", combine_attrs="override")
    return merged[[*first.variables, *map(origin, axes)]].assign_attrs(datasets[-1].attrs)


def sorted_unique(ds: xr.Dataset, dim: str) -> xr.Dataset:
    """``ds`` (with an origin variable along ``dim``) stably sorted by ``dim``, dropping each record that a
    record of a later origin repeats exactly."""
    times = ds[dim].values
    if times.size < 2:
        return ds
    steps = times[1:] > times[:-1]
    if steps.all():  # already sorted with no repeated time (the usual case): skip the sort
        return ds
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    keep = np.ones(order.size, dtype=bool)
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if same.size:
        origins = ds[origin(dim)].values[order]
        names = [n for n, v in ds.variables.items()
                 if v.dims and v.dims[0] == dim and n not in (dim, origin(dim))]
        rows = {n: ds[n].values[order] for n in names}
        for start, stop in _runs(same):
            for i in range(start, stop + 1):
                for j in range(i + 1, stop + 1):
                    if origins[j] != origins[i] and all(_equal(rows[n][i], rows[n][j]) for n in names):
                        keep[i] = False
                        break
    if keep.all() and np.array_equal(order, np.arange(order.size)):
        return ds
    return ds.isel({dim: order[keep]})


def _runs(same: np.ndarray) -> list[tuple[int, int]]:
    """Runs of equal neighbours: ``same`` holds each i where element i equals i+1; yields (first, last)."""
    runs = []
    start = previous = int(same[0])
    for index in same[1:]:
        if index != previous + 1:
            runs.append((start, previous + 1))
            start = int(index)
        previous = int(index)
    runs.append((start, previous + 1))
    return runs


def _equal(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    if a.dtype.kind == "M":
        return bool(np.array_equal(a.view("int64"), b.view("int64")))
    return bool(np.array_equal(a, b))


def write_new(store: Any, datasets: list[xr.Dataset], attrs: dict[str, Any],
              variable_attrs: dict[str, dict[str, Any]]) -> None:
    """The first write of a dataset (a batch's datasets, oldest file first) into an empty group, with the group's
    ``attrs`` and its variables' ``variable_attrs`` (the latest file's, as every later write takes them), and the
    index of its time axes.

    Consecutive files (:func:`consecutive`: the usual batch) are streamed: xarray creates the group and its arrays
    from the first file cut to no records (half the cost of writing its records) and every chunk is then written
    whole from slices of the files' own arrays (:func:`stream_after`): merging the batch in memory first copies
    every value once more, which cost as much as reading the files (most of it the kernel mapping the fresh
    memory). Otherwise the batch is merged in memory (:func:`combine`).
    """
    first = datasets[0]
    axes = record_dims(first)
    if len(axes) != 1 or len(datasets) < 2 or not consecutive(datasets, axes[0]):
        ds = combine(datasets)
        ds = ds.drop_vars([origin(d) for d in record_dims(ds)], errors="ignore")
        encode_times(_attributed(ds, attrs, variable_attrs)).to_zarr(
            store, mode="w", encoding=encoding(ds), consolidated=False, zarr_format=3, write_empty_chunks=True)
        group = zarr.open_group(store, mode="r+")
        for dim in record_dims(ds):
            time_index.update(group, group[dim], dim, 0, 0, [ds.variables[dim].values])
        return
    (dim,) = axes
    encode_times(_attributed(first.isel({dim: slice(0, 0)}), attrs, variable_attrs)).to_zarr(
        store, mode="w", encoding=encoding(first), consolidated=False, zarr_format=3, write_empty_chunks=True)
    group = zarr.open_group(store, mode="r+")
    stream_after(group, datasets, dim)
    time_index.update(group, group[dim], dim, 0, 0, [d.variables[dim].values for d in datasets])


def _attributed(ds: xr.Dataset, attrs: dict[str, Any], variable_attrs: dict[str, dict[str, Any]]) -> xr.Dataset:
    """``ds`` with ``attrs`` for its attributes and ``variable_attrs`` for those of the variables it names (in
    place of theirs, not added to them: the stored attributes are the latest file's, however the files came)."""
    ds = ds.copy(deep=False)
    ds.attrs = dict(attrs)
    for name, values in variable_attrs.items():
        if name in ds.variables:
            ds.variables[name].attrs = dict(values)
    return ds


def consecutive(datasets: list[xr.Dataset], dim: str) -> bool:
    """Whether the files' records along ``dim``, one file after the other, are time-sorted with no repeated or
    missing time, none of the files is empty, and every variable along ``dim`` is numeric: such files are
    streamed into the store chunk by chunk rather than merged."""
    along = [name for name, v in datasets[0].variables.items() if v.dims and v.dims[0] == dim]
    if not all(d.sizes.get(dim) for d in datasets) or any(
            datasets[0].variables[n].dtype.kind not in "fiu" for n in along if n != dim):
        return False
    times = [d.variables[dim].values for d in datasets]  # NaT compares False: sorted means none either
    return not np.isnat(times[0][0]) and all(bool((t[1:] > t[:-1]).all()) for t in times) and all(
        bool(a[-1] < b[0]) for a, b in itertools.pairwise(times))


def stream_after(group: zarr.Group, datasets: list[xr.Dataset], dim: str) -> None:
    """Write the records of ``datasets`` (:func:`consecutive`, later than every stored record) after the group's
    records along ``dim``, every chunk whole from slices of the files' own arrays (:func:`set_whole_chunks`); an
    array's stored last chunk, when partial, is read back and written whole again with the first new records."""
    def jobs(name: str) -> list[tuple[zarr.Array, int, list[np.ndarray]]]:
        array = writable(group[name])
        return record_jobs(array, [record_values(d, name, dim, array) for d in datasets], int(array.shape[0]))

    # the arrays opened and their partial last chunks read back side by side
    set_whole_chunks([job for part in each(jobs, along(datasets[0], dim)) for job in part])


def along(ds: xr.Dataset, dim: str) -> list[str]:
    """The names of the variables of ``ds`` along the record axis ``dim``."""
    return [name for name, variable in ds.variables.items() if variable.dims and variable.dims[0] == dim]


def writable(array: zarr.Array) -> zarr.Array:
    """``array`` as heliohub writes it: chunks of nothing but the fill value are written too (here, in
    set_whole_chunks and in every write of ours): Zarr's check for them doubles the cost of its write path on
    measured data, and they compress to almost nothing."""
    return array.with_config({"write_empty_chunks": True})


def record_values(ds: xr.Dataset, name: str, dim: str, array: zarr.Array) -> np.ndarray:
    """A file's values of ``name`` as the store's array holds them (times as int64 nanoseconds)."""
    values = ds.variables[name].values
    return _encoded_times(values, array.attrs) if name == dim else values


def record_jobs(array: zarr.Array, values: list[np.ndarray], at: int, chunks: range | None = None,
                length: int | None = None) -> list[tuple[zarr.Array, int, list[np.ndarray]]]:
    """The whole chunks (for :func:`set_whole_chunks`) that put ``values`` (consecutive parts along the record
    axis, the first at record ``at``) into ``array``, resized to ``length`` records (where the parts end, when
    None): those of ``chunks`` (chunk indices along the record axis; all the parts reach when None), which the
    parts must cover. Records the array holds before ``at`` in the first of them are read back. An array cut in
    several chunks across a record is written here and gives no job."""
    chunk = int(array.chunks[0])
    offsets = np.cumsum([at, *(len(v) for v in values)])
    total = int(offsets[-1])
    chunks = chunks if chunks is not None else range(at // chunk, -(-total // chunk))
    begin, end = chunks.start * chunk, min(total, chunks.stop * chunk)
    if begin < at:
        values, offsets = [array[begin:at], *values], np.concatenate([[begin], offsets])
    length = total if length is None else length
    if array.shape[0] != length:
        array.resize((length, *array.shape[1:]))
    if array.chunks[1:] != array.shape[1:]:  # several chunks across a record (an empty axis)
        array[begin:end] = np.concatenate(pieces(values, offsets, begin, end))
        return []
    return [(array, index, pieces(values, offsets, index * chunk, min(total, (index + 1) * chunk)))
            for index in chunks]


Stream = Callable[[zarr.Group, list[xr.Dataset], str], None]
"""How :func:`merge_into` writes records that come after every stored one: :func:`stream_after` (here), or on a
cluster (:class:`heliohub.store.distributed.ClusterStream`)."""


def merge_into(store: Any, stored: xr.Dataset, datasets: list[xr.Dataset],
               removals: dict[str, list[tuple[str, str]]], attrs: dict[str, Any],
               variable_attrs: dict[str, dict[str, Any]] | None, stream: Stream = stream_after) -> None:
    """Merge the records of ``datasets`` (a batch's files, oldest first) into the stored group (``stored``: opened
    lazily, by :func:`open_for_merge`), after removing stored records in ``removals`` spans.

    Only the stored records from the first chunk a change touches on are read and written again, found through
    the group's time index (:mod:`.time_index`); the index is recomputed from that chunk on. Files that only add
    records after every stored one (:func:`consecutive`, the stored group's variables, no removal: a daily ingest,
    or the next batch of a long one) are streamed in chunk by chunk by ``stream``; otherwise the batch is combined
    in memory and merged into the stored records it touches.
    """
    group = zarr.open_group(store, mode="r+")
    axes = record_dims(stored)
    counts = {dim: int(group[dim].shape[0]) for dim in axes}
    if after_the_end(stored, datasets, removals):
        (dim,) = axes
        stream(group, datasets, dim)
        group = zarr.open_group(store, mode="r+")  # as the stream left it (on a cluster: merged in)
        time_index.update(group, group[dim], dim, counts[dim], counts[dim], [d.variables[dim].values for d in datasets])
        _publish(group, attrs, variable_attrs)
        return
    new = combine(datasets)
    for dim in axes:
        names = [n for n, v in stored.variables.items() if v.dims and v.dims[0] == dim]
        incoming = new[[*names, origin(dim)]] if dim in new.dims and new.sizes[dim] else None
        spans = [(np.datetime64(start, "ns"), np.datetime64(end, "ns")) for start, end in removals.get(dim, [])]
        moments = [start for start, _ in spans] + ([incoming[dim].values[0]] if incoming is not None else [])
        if not moments:
            continue
        chunk = min(group[n].chunks[0] for n in names)
        bounds = time_index.read_bounds(group, dim, counts[dim], int(group[dim].chunks[0]))
        begin = _position(group[dim], bounds, min(moments)) // chunk * chunk
        tail = stored[names].isel({dim: slice(begin, None)})
        kept_times = tail[dim].values
        remove = np.zeros(kept_times.size, dtype=bool)
        for start, end in spans:
            remove |= (kept_times >= start) & (kept_times <= end)
        if incoming is None and not remove.any():
            continue
        tail = tail.isel({dim: ~remove}).load().set_xindex(dim)  # as the incoming records have
        tail = tail.assign({origin(dim): xr.Variable((dim,), np.full(tail.sizes[dim], -1), fastpath=True)})
        merged = tail if incoming is None else sorted_unique(
            xr.concat([tail, incoming], dim=dim, data_vars="all", coords="minimal", compat="override",
                      join="override", combine_attrs="override"), dim)
        end = begin + merged.sizes[dim]
        for name in names:
            array = group[name]
            if array.shape[0] < end:
                array.resize((end, *array.shape[1:]))
        if merged.sizes[dim]:
            region = merged.drop_vars([n for n in merged.variables if n not in names or n == dim])
            encode_times(region.drop_attrs(deep=True)).drop_attrs(deep=True).to_zarr(
                store, region={dim: slice(begin, end)}, mode="r+", consolidated=False, write_empty_chunks=True)
            # xarray leaves index coordinates out of region writes, so the time axis is written here, in the
            # encoding layout.encoding gave it (int64 nanoseconds since 1970).
            group[dim][begin:end] = _encoded_times(merged[dim].values, group[dim].attrs)
        for name in names:
            array = group[name]
            if array.shape[0] > end:
                array.resize((end, *array.shape[1:]))
        time_index.update(group, group[dim], dim, counts[dim], begin, [merged[dim].values])
    _publish(group, attrs, variable_attrs)


def open_for_merge(store: Any) -> xr.Dataset:
    """A stored dataset as a merge reads it: lazily, with no index built on its time axes (which would read them
    whole: 1.3 GB of times for 20 years of 4 s data), and no value read: times as heliohub stores them are viewed
    as ``datetime64[ns]`` (:func:`_as_times`) where xarray's decoding reads each time variable's first and last
    value to choose its type (on S3, requests for chunks the merge may not need)."""
    # durations stay as stored (numbers with their units): xarray's default since 2025.08, asked for explicitly
    durations = xr.coders.CFTimedeltaCoder(decode_via_units=False)
    ds = xr.open_zarr(store, consolidated=False, chunks=None, create_default_indexes=False, decode_times=False,
                      decode_timedelta=durations)
    ours = {name for name, v in ds.variables.items() if v.attrs.get("units") == TIME_UNITS and v.dtype == np.int64}
    if any("since" in str(v.attrs.get("units", "")) for name, v in ds.variables.items() if name not in ours):
        # times in other units (a group another tool wrote): xarray decodes them
        return xr.open_zarr(store, consolidated=False, chunks=None, create_default_indexes=False,
                            decode_timedelta=durations)
    variables = {name: _as_times(v) if name in ours else v for name, v in ds.variables.items()}
    coords = xr.Coordinates({name: variables[name] for name in ds.coords}, indexes={})  # no index: nothing read
    return xr.Dataset({name: variables[name] for name in ds.data_vars}, coords=coords, attrs=ds.attrs)


def _as_times(stored: xr.Variable) -> xr.Variable:
    """A time variable as heliohub stores it (int64 nanoseconds since 1970, NaT as int64's minimum:
    :func:`layout.encode_times`) as xarray decodes it, lazily: ``datetime64[ns]`` values, units and calendar in its
    encoding."""
    attrs = {k: v for k, v in stored.attrs.items() if k not in ("units", "calendar")}
    encoding = {**stored.encoding, "units": TIME_UNITS, "calendar": stored.attrs.get("calendar"),
                "dtype": np.dtype("int64")}
    return lazily_converted(stored, "datetime64[ns]", lambda values: values.view("datetime64[ns]"), attrs, encoding)


def _position(times: zarr.Array, bounds: tuple[np.ndarray, np.ndarray] | None, moment: np.datetime64) -> int:
    """Where ``moment`` goes in a stored time axis (its first record at or after it, NaT counting as the latest):
    read in the one chunk the axis's index (each chunk's first and last time) points to, or whole without one."""
    if bounds is None:
        return int(np.searchsorted(times[:].view("datetime64[ns]"), moment, side="left"))
    length = int(times.chunks[0])
    last = bounds[1]
    at = min(int(np.searchsorted(last, moment.astype("datetime64[ns]").view("int64"))), len(last) - 1)
    block = times[at * length:(at + 1) * length].view("datetime64[ns]")
    return at * length + int(np.searchsorted(block, moment, side="left"))


def after_the_end(stored: xr.Dataset, datasets: list[xr.Dataset], removals: dict[str, list[tuple[str, str]]]) -> bool:
    """Whether ``datasets`` only add records after every stored one, along the one record axis, with the stored
    group's variables along it, and remove none (see :func:`merge_into`)."""
    axes = record_dims(stored)
    if len(axes) != 1 or any(removals.values()) or any(record_dims(d) != axes for d in datasets):
        return False
    (dim,) = axes
    along = {name for name, v in stored.variables.items() if v.dims and v.dims[0] == dim}
    if any({name for name, v in d.variables.items() if v.dims and v.dims[0] == dim} != along for d in datasets):
        return False
    # the last stored record only (NaT, which sorts last, is later than anything)
    return consecutive(datasets, dim) and (not stored.sizes[dim] or bool(
        stored[dim].isel({dim: -1}).values < datasets[0].variables[dim].values[0]))


def _publish(group: zarr.Group, attrs: dict[str, Any], variable_attrs: dict[str, dict[str, Any]] | None) -> None:
    """The group's attributes, and, when given, its variables' (each array's metadata written only when they
    change: a daily file usually brings the same ones)."""
    if group.attrs.asdict() != attrs:
        group.attrs.put(attrs)
    arrays = dict(group.arrays())
    for name, values in (variable_attrs or {}).items():
        if name in arrays:
            set_variable_attrs(arrays[name], values)


def _encoded_times(values: np.ndarray, attrs: Any) -> np.ndarray:
    if attrs.get("units") != TIME_UNITS:
        raise ValueError(f"time axis stored in {attrs.get('units')!r}, not {TIME_UNITS!r}")
    return values.astype("datetime64[ns]", copy=False).view("int64")


def set_variable_attrs(array: zarr.Array, values: dict[str, Any]) -> None:
    """Replace an array's attributes, keeping those xarray's encoding put there (fill value, time units)."""
    encoded = {k: v for k, v in array.attrs.items() if k in _ENCODING_ATTRS}
    if " since " not in str(encoded.get("units", "")):
        encoded.pop("units", None)
    wanted = {**values, **encoded}
    if json.loads(json.dumps(wanted, default=str)) != array.attrs.asdict():
        array.attrs.put(wanted)


_ENCODING_ATTRS = {"units", "calendar", "_FillValue", "_ARRAY_DIMENSIONS", "coordinates"}
