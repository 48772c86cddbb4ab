"""Merging a batch of files into one dataset's Zarr group, inside an Icechunk session (committed by the caller).

The group stays time-sorted with no duplicate records along each record axis (see :func:`layout.record_dims`).
New records are merged in by rewriting the stored records from the first chunk they touch to the end, so
appending later data rewrites only the last chunk, while a file that lands in the middle rewrites what follows it.
Records of a replaced file version are removed over that file's span before the new version goes in.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.codec_pipeline import fill_value_or_default
from zarr.core.sync import sync

from .layout import (
    TIME_INDEX,
    TIME_UNITS,
    encode_times,
    encoding,
    index_prefix,
    pieces,
    record_dims,
    time_bounds,
    time_chunk_index,
    time_index_entry,
)

PROVENANCE = "heliohub_provenance"
VARIABLE_ORDER = "heliohub_variables"
"""The group attribute listing the variables in their source file's order: Icechunk lists a group's arrays in no
fixed order, and a dataset should open with its variables as the archive file has them, every time."""


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


def read_provenance(attrs: Any) -> list[FileEntry]:
    """The provenance recorded in a dataset's (group's) attributes."""
    raw = attrs.get(PROVENANCE)
    if not raw:
        return []
    return [FileEntry(**{**item, "spans": {k: tuple(v) for k, v in item["spans"].items()}})
            for item in json.loads(raw)]


def provenance_attr(entries: list[FileEntry]) -> str:
    # vars, not dataclasses.asdict: the same JSON without a deep copy of each entry first (6x faster)
    return json.dumps([vars(e) for e in sorted(entries, key=lambda e: e.order)], sort_keys=True)


def spans_of(ds: xr.Dataset) -> dict[str, tuple[str, str]]:
    spans = {}
    for dim in record_dims(ds):
        bounds = time_bounds(ds.variables[dim].values)
        if bounds is not None:
            spans[dim] = (str(bounds[0]), str(bounds[1]))
    return spans


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
    ``attrs`` and its variables' ``variable_attrs`` (the latest file's, as every later write takes them).

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
        plan = encoding(ds)
        attrs = with_time_index(attrs, {d: time_chunk_index(ds.variables[d].values, plan[d]["chunks"][0])
                                        for d in record_dims(ds)})
        encode_times(_attributed(ds, attrs, variable_attrs)).to_zarr(
            store, mode="w", encoding=plan, consolidated=False, zarr_format=3, write_empty_chunks=True)
        return
    (dim,) = axes
    plan = encoding(first)
    attrs = with_time_index(attrs, {dim: time_chunk_index([d.variables[dim].values for d in datasets],
                                                          plan[dim]["chunks"][0])})
    encode_times(_attributed(first.isel({dim: slice(0, 0)}), attrs, variable_attrs)).to_zarr(
        store, mode="w", encoding=plan, consolidated=False, zarr_format=3, write_empty_chunks=True)
    stream_after(zarr.open_group(store, mode="r+"), datasets, dim)


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
    whole: list[tuple[zarr.Array, int, list[np.ndarray]]] = []
    for name, variable in datasets[0].variables.items():
        if not variable.dims or variable.dims[0] != dim:
            continue
        # Chunks of nothing but the fill value are written too (here, in set_whole_chunks and in every write of
        # ours): Zarr's check for them doubles the cost of its write path on measured data, and they compress to
        # almost nothing.
        array = group[name].with_config({"write_empty_chunks": True})
        chunk, stored = array.chunks[0], array.shape[0]
        begin = stored // chunk * chunk
        values = [array[begin:stored]] if stored > begin else []
        values += ([_encoded_times(d.variables[dim].values, array.attrs) for d in datasets] if name == dim
                   else [d.variables[name].values for d in datasets])
        offsets = np.cumsum([begin, *(len(v) for v in values)])
        total = int(offsets[-1])
        array.resize((total, *array.shape[1:]))
        if array.chunks[1:] != array.shape[1:]:  # several chunks across a record (an empty axis)
            array[begin:total] = np.concatenate(pieces(values, offsets, begin, total))
            continue
        whole += [(array, index, pieces(values, offsets, index * chunk, min(total, (index + 1) * chunk)))
                  for index in range(begin // chunk, -(-total // chunk))]
    set_whole_chunks(whole)


def set_whole_chunks(chunks: list[tuple[zarr.Array, int, list[np.ndarray]]]) -> None:
    """Encode and store whole chunks, each given as (array, index along the first axis, its values in one or more
    consecutive parts), for arrays held in one chunk along their other axes, with each array's own codecs. The
    last chunk of an array may be given short: it is padded with the fill value, as Zarr pads it.

    ``array[a:b] = values`` does this and more: it indexes every chunk of the selection, reads the chunks it
    fills in part and merges each chunk into a new fill-valued array before encoding, which cost twice the CPU
    of the encoding itself on a year of FGM data. Here the parts are copied into reused buffers and several
    chunks are copied and encoded at once, in threads that let go of the GIL, at most two per core.
    """
    if not chunks:
        return
    prototype = default_buffer_prototype()
    limit = asyncio.Semaphore(2 * (os.cpu_count() or 1))
    free: dict[tuple[Any, ...], list[np.ndarray]] = defaultdict(list)

    def assemble(spec: Any, parts: list[np.ndarray], buffer: np.ndarray) -> np.ndarray:
        if len(parts) == 1 and parts[0].shape == spec.shape and parts[0].dtype == buffer.dtype \
                and parts[0].flags.c_contiguous:
            return parts[0]
        filled = np.concatenate(parts, out=buffer[:sum(len(p) for p in parts)])
        if len(filled) < len(buffer):
            buffer[len(filled):] = fill_value_or_default(spec)
        return buffer

    async def one(array: zarr.Array, index: int, parts: list[np.ndarray]) -> None:
        inner = array.async_array
        coords = (index, *[0] * (array.ndim - 1))
        async with limit:
            spec = inner.metadata.get_chunk_spec(coords, inner.config, prototype)
            key = (spec.shape, array.dtype)
            buffer = free[key].pop() if free[key] else np.empty(spec.shape, dtype=array.dtype)
            block = await asyncio.to_thread(assemble, spec, parts, buffer)
            [encoded] = await inner.codec_pipeline.encode([(prototype.nd_buffer.from_numpy_array(block), spec)])
            await (inner.store_path / inner.metadata.encode_chunk_key(coords)).set(encoded)
            if inner.codec_pipeline.bytes_bytes_codecs:  # else the stored bytes may be a view of the buffer
                free[key].append(buffer)

    async def every() -> None:
        await asyncio.gather(*(one(*chunk) for chunk in chunks))

    sync(every())


def merge_into(store: Any, stored: xr.Dataset, datasets: list[xr.Dataset],
               removals: dict[str, list[tuple[str, str]]], attrs: dict[str, Any],
               variable_attrs: dict[str, dict[str, Any]] | None) -> None:
    """Merge the records of ``datasets`` (a batch's files, oldest first) into the stored group (``stored``: opened
    lazily, by :func:`open_for_merge`), after removing stored records in ``removals`` spans.

    Only the stored records from the first chunk a change touches on are read and written again, found through
    the group's time index; the index is recomputed from that chunk on. Files that only add records after every
    stored one (:func:`consecutive`, the stored group's variables, no removal: a daily ingest, or the next batch of
    a long one) are streamed in chunk by chunk (:func:`stream_after`); otherwise the batch is combined in memory
    and merged into the stored records it touches.
    """
    group = zarr.open_group(store, mode="r+")
    axes = record_dims(stored)
    index = {dim: time_index_entry(stored.attrs, dim, group[dim].shape[0], group[dim].chunks[0]) for dim in axes}
    if _after_the_end(stored, datasets, removals):
        (dim,) = axes
        count = group[dim].shape[0]
        stream_after(group, datasets, dim)
        index[dim] = _index_after(group[dim], index[dim], count, [d.variables[dim].values for d in datasets])
        _publish(group, attrs, index, variable_attrs)
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
        begin = _position(group[dim], index[dim], min(moments)) // chunk * chunk
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
        index[dim] = _index_after(group[dim], index[dim], begin, [merged[dim].values])
    _publish(group, attrs, index, variable_attrs)


def open_for_merge(store: Any) -> xr.Dataset:
    """A stored dataset as a merge reads it: lazily, with no index built on its time axes (which would read them
    whole: 1.3 GB of times for 20 years of 4 s data)."""
    return xr.open_zarr(store, consolidated=False, chunks=None, create_default_indexes=False)


def _position(times: zarr.Array, entry: dict[str, Any] | None, moment: np.datetime64) -> int:
    """Where ``moment`` goes in a stored time axis (its first record at or after it, NaT counting as the latest):
    read in the one chunk the axis's index points to, or whole when it has no index."""
    if entry is None:
        return int(np.searchsorted(times[:].view("datetime64[ns]"), moment, side="left"))
    length = int(entry["chunk"])
    at = min(int(np.searchsorted(entry["last"], moment.astype("datetime64[ns]").view("int64"))), len(entry["last"]) - 1)
    block = times[at * length:(at + 1) * length].view("datetime64[ns]")
    return at * length + int(np.searchsorted(block, moment, side="left"))


def _index_after(times: zarr.Array, entry: dict[str, Any] | None, begin: int, new: list[np.ndarray]
                 ) -> dict[str, Any] | None:
    """The time index of a stored axis whose records from ``begin`` on were just written (``new``, also written to
    ``times``): the chunks before the one holding ``begin`` are kept from ``entry``, the rest is computed from the
    stored times of that chunk before ``begin`` and ``new``; an axis whose index keeps no gaps is indexed whole."""
    length = times.chunks[0]
    kept = index_prefix(entry, begin // length)
    start = begin // length * length if kept is not None else 0
    return time_chunk_index([times[start:begin], *new], length, kept)


def _after_the_end(stored: xr.Dataset, datasets: list[xr.Dataset], removals: dict[str, list[tuple[str, str]]]) -> bool:
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


def _publish(group: zarr.Group, attrs: dict[str, Any], index: dict[str, dict[str, Any] | None],
             variable_attrs: dict[str, dict[str, Any]] | None) -> None:
    """The group's attributes, with ``index`` (each record axis's time index as it now is) and, when given, its
    variables' attributes."""
    group.attrs.clear()
    group.attrs.update(with_time_index(attrs, index))
    for name, values in (variable_attrs or {}).items():
        if name in group:
            set_variable_attrs(group[name], values)


def with_time_index(attrs: dict[str, Any], index: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """``attrs`` with the :data:`~heliohub.layout.TIME_INDEX` of the record axes that have one (entries of
    :func:`~heliohub.layout.time_chunk_index`); an axis without an index is read whole at open."""
    entries = {dim: entry for dim, entry in index.items() if entry is not None}
    return {**{k: v for k, v in attrs.items() if k != TIME_INDEX}, **({TIME_INDEX: entries} if entries else {})}


def _encoded_times(values: np.ndarray, attrs: Any) -> np.ndarray:
    if attrs.get("units") != TIME_UNITS:
        raise ValueError(f"time axis stored in {attrs.get('units')!r}, not {TIME_UNITS!r}")
    return values.astype("datetime64[ns]", copy=False).view("int64")


def set_variable_attrs(array: zarr.Array, values: dict[str, Any]) -> None:
    """Replace an array's attributes, keeping those xarray's encoding put there (fill value, time units)."""
    encoded = {k: v for k, v in array.attrs.items() if k in _ENCODING_ATTRS}
    if " since " not in str(encoded.get("units", "")):
        encoded.pop("units", None)
    array.attrs.clear()
    array.attrs.update({**values, **encoded})


_ENCODING_ATTRS = {"units", "calendar", "_FillValue", "_ARRAY_DIMENSIONS", "coordinates"}
