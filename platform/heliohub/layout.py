"""How a dataset is laid out in Zarr: chunking along time, the time coordinate, compression.

The choices and the measurements behind them are in ``docs/store-layout.md`` (``benchmarks/bench_store.py``
re-measures them). In short:

* data variables are chunked along their record axis to about ``CHUNK_BYTES`` of raw values per chunk (whole
  extent along the other axes; one frame per chunk for images), so a one-year scan reads few, large objects and a
  one-hour read fetches one chunk;
* record coordinates (``time`` and other time axes) are stored in chunks of ``TIME_CHUNK_RECORDS`` values (a
  year of 4 s data in 16 chunks); byte shuffling compresses a regular cadence to a few kB. The group attribute
  ``TIME_INDEX`` keeps each chunk's first and last time, so opening a range reads only the time chunks it
  overlaps, not the whole axis (20 years of 4 s data hold 1.3 GB of times);
* numbers are compressed with Blosc (lz4, byte shuffle: 10-25x faster to write than zstd, twice as fast to
  read, as small on measured fields), text with zstd.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import xarray as xr
from zarr.codecs import BloscCodec, BloscShuffle, ZstdCodec

CHUNK_BYTES = 4 << 20
TIME_CHUNK_RECORDS = 1 << 19
TIME_UNITS = "nanoseconds since 1970-01-01"
CALENDAR = "proleptic_gregorian"
_NAT = np.iinfo(np.int64).min
TIME_INDEX = "heliohub_time_chunks"
"""Group attribute: for each record axis, its chunk length, record count, the first and last time of each chunk
(int64 nanoseconds) and its :func:`coverage`, written from the values with every change to the axis (so neither
an open with a range nor the catalog reads the whole axis)."""


def record_dims(ds: xr.Dataset) -> list[str]:
    """The dataset's record axes: dimensions whose coordinate is a time (``time`` first)."""
    dims = [d for d in ds.dims if d in ds.coords and ds.variables[d].dtype.kind == "M" and ds.variables[d].ndim == 1]
    return sorted(dims, key=lambda d: (d != "time", d))


def time_bounds(times: np.ndarray) -> tuple[np.datetime64, np.datetime64] | None:
    """The first and last of ``times`` (datetime64), NaT left out; None when there is no time. Taken as int64
    minimum and maximum (NaT is int64's minimum): numpy's datetime64 min and max are ten times slower."""
    stamps = times.view("int64")
    if stamps.size and stamps.min() == _NAT:
        stamps = stamps[stamps != _NAT]
    if not stamps.size:
        return None
    unit = np.datetime_data(times.dtype)[0]
    return np.datetime64(int(stamps.min()), unit), np.datetime64(int(stamps.max()), unit)


COVERAGE_INTERVALS = 1000
"""At most this many intervals with data per dataset in the catalog (the smallest gaps are closed first)."""
_GAP_FACTOR = 5
_MIN_GAP = np.timedelta64(60, "s").astype("timedelta64[ns]").astype("int64")


Times = np.ndarray | Sequence[np.ndarray]
"""A time axis, whole or as its consecutive parts (the files of a batch; the kept and the new records of a merge):
scanned block by block, so no whole-axis temporary is made (a year of 4 s data is 63 MB of times, and on these
machines fresh memory cost more than the arithmetic on it: up to 0.17 s of a year's ingest)."""
_SCAN = 1 << 19
"""Values the coverage scans at once."""


def pieces(parts: Sequence[np.ndarray], offsets: np.ndarray, start: int, stop: int) -> list[np.ndarray]:
    """The slices of consecutive ``parts`` (part i holding records ``offsets[i]`` on) that hold records ``start``
    to ``stop``."""
    first = int(np.searchsorted(offsets, start, side="right")) - 1
    last = int(np.searchsorted(offsets, stop, side="left"))
    return [parts[i][max(0, start - offsets[i]):stop - offsets[i]] for i in range(first, last)]


def _parts(times: Times) -> tuple[list[np.ndarray], np.ndarray]:
    """The axis as int64 nanoseconds in its non-empty parts, and where each part starts (and the axis ends)."""
    parts = [stamps for part in ([times] if isinstance(times, np.ndarray) else times)
             if (stamps := part.astype("datetime64[ns]", copy=False).view("int64")).size]
    return parts, np.cumsum([0] + [p.size for p in parts])


def _blocks(parts: list[np.ndarray], offsets: np.ndarray, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """The axis in blocks of ``size`` values (the last one shorter), each with its first record's position: a
    view where the block lies in one part, else a copy into one buffer that the next block reuses."""
    buffer = None
    for start in range(0, int(offsets[-1]), size):
        stop = min(int(offsets[-1]), start + size)
        held = pieces(parts, offsets, start, stop)
        if len(held) == 1:
            yield start, held[0]
            continue
        buffer = np.empty(size, np.int64) if buffer is None else buffer
        yield start, np.concatenate(held, out=buffer[:stop - start])


def _take(parts: list[np.ndarray], offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The values at ascending ``positions`` along the axis."""
    cuts = np.searchsorted(positions, offsets)
    taken = [part[positions[a:b] - offset]
             for part, offset, a, b in zip(parts, offsets, cuts[:-1], cuts[1:], strict=False) if b > a]
    return np.concatenate(taken) if taken else np.empty(0, np.int64)


def coverage(times: Times) -> list[list[str]]:
    """When a dataset has data: intervals of records, cut where the step between records is more than five times
    the usual step (and more than a minute), at most ``COVERAGE_INTERVALS`` of them."""
    parts, offsets = _parts(times)
    steps = int(offsets[-1]) - 1
    if steps < 0:
        return []
    # the usual step: the median of at most ~100 000 evenly spread steps (a full median copies them all)
    sample = np.arange(0, steps, max(1, steps // 100_000))
    usual = float(np.median(_take(parts, offsets, sample + 1) - _take(parts, offsets, sample))) if steps else 0.0
    limit = max(_GAP_FACTOR * usual, _MIN_GAP)
    breaks = []
    previous = None
    for start, block in _blocks(parts, offsets, _SCAN):
        gaps = np.diff(block)
        if block.min() == _NAT or (gaps.size and gaps.min() < 0) or (previous is not None and block[0] < previous):
            # NaT (int64's minimum) or records out of order: a stored axis has neither, but any axis is covered
            stamps = np.concatenate(parts)
            return coverage(np.sort(stamps[stamps != _NAT]))
        if previous is not None and block[0] - previous > limit:
            breaks.append(np.array([start - 1]))
        breaks.append(np.flatnonzero(gaps > limit) + start)
        previous = block[-1]
    cuts = np.concatenate(breaks)
    if cuts.size >= COVERAGE_INTERVALS:
        widths = _take(parts, offsets, cuts + 1) - _take(parts, offsets, cuts)
        cuts = np.sort(cuts[np.argsort(widths)[-(COVERAGE_INTERVALS - 1):]])
    firsts = _take(parts, offsets, np.concatenate([[0], cuts + 1])).view("datetime64[ns]")
    lasts = _take(parts, offsets, np.concatenate([cuts, [steps]])).view("datetime64[ns]")
    return [[str(a), str(b)] for a, b in zip(firsts, lasts, strict=True)]


def time_chunk_index(times: Times, chunk: int) -> dict[str, Any] | None:
    """The :data:`TIME_INDEX` entry of a record axis stored in chunks of ``chunk`` values: each chunk's earliest
    and latest time (None when a chunk holds nothing but NaT, or chunks overlap in time: such an axis is read
    whole at open)."""
    parts, offsets = _parts(times)
    if not parts:
        return None
    first, last = [], []
    for _, block in _blocks(parts, offsets, chunk):
        earliest = int(block.min())
        if earliest == _NAT:  # NaT is int64's minimum: a maximum leaves it out, a minimum must be told to
            known = block[block != _NAT]
            if not known.size:  # a chunk of nothing but NaT
                return None
            earliest = int(known.min())
        first.append(earliest)
        last.append(int(block.max()))
    if any(b < a for a, b in zip(last, first[1:], strict=False)):
        return None
    return {"chunk": int(chunk), "records": int(offsets[-1]), "first": first, "last": last,
            "coverage": coverage(times)}


def time_index_entry(attrs: Any, dim: str, records: int, chunk: Any) -> dict[str, Any] | None:
    """The group's :data:`TIME_INDEX` entry of ``dim`` when it describes that axis as stored (``records`` values
    in chunks of ``chunk``, one first and one last time per chunk); None otherwise (no index, or one written by
    something that did not keep it): read the axis itself."""
    entry = (attrs.get(TIME_INDEX) or {}).get(dim)
    if not isinstance(entry, dict) or not records or not chunk or entry.get("records") != records \
            or entry.get("chunk") != chunk:
        return None
    count = -(-records // chunk)
    fits = all(isinstance(entry.get(k), list) and len(entry[k]) == count for k in ("first", "last"))
    return entry if fits and isinstance(entry.get("coverage"), list) else None


def _compressor(dtype: np.dtype) -> Any:
    if dtype.kind in "OUST":
        return ZstdCodec(level=3)
    typesize = max(1, dtype.itemsize)
    return BloscCodec(cname="lz4", clevel=9, shuffle=BloscShuffle.shuffle, typesize=typesize)


def encode_times(ds: xr.Dataset) -> xr.Dataset:
    """Times as int64 nanoseconds since 1970 with their CF attributes, as xarray would write them (NaT is the
    int64 minimum, which xarray reads back as NaT), without xarray's unit inference (a pass over every value)."""
    replaced = {}
    for name, variable in ds.variables.items():
        if variable.dtype.kind == "M":
            values = np.asarray(variable.values).astype("datetime64[ns]", copy=False).view("int64")
            replaced[name] = xr.Variable(variable.dims, values,
                                         {**variable.attrs, "units": TIME_UNITS, "calendar": CALENDAR},
                                         fastpath=True)  # plain int64: xarray's checks would import dask.array
    if not replaced:
        return ds
    return ds.assign_coords({n: v for n, v in replaced.items() if n in ds.coords}).assign(
        {n: v for n, v in replaced.items() if n not in ds.coords})


def encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """The Zarr encoding of every variable of ``ds``."""
    axes = set(record_dims(ds))
    out: dict[str, dict[str, Any]] = {}
    for name, variable in ds.variables.items():
        dtype = variable.dtype
        enc: dict[str, Any] = {"compressors": [_compressor(dtype if dtype.kind != "M" else np.dtype("int64"))]}
        if variable.ndim:
            first = variable.dims[0]
            if first in axes and name == first:
                chunks = [TIME_CHUNK_RECORDS]
            elif first in axes:
                per_record = max(1, int(np.prod(variable.shape[1:], dtype=np.int64)) * max(1, dtype.itemsize))
                chunks = [max(1, CHUNK_BYTES // per_record)]
            else:
                chunks = [max(1, variable.shape[0])]
            enc["chunks"] = tuple(chunks + [max(1, n) for n in variable.shape[1:]])
        out[str(name)] = enc
    return out
