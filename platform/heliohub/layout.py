"""How a dataset is laid out in Zarr: chunking along time, the time coordinate, compression.

The choices and the measurements behind them are in ``docs/store-layout.md`` (``benchmarks/bench_layout.py``
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


def coverage(times: np.ndarray) -> list[list[str]]:
    """When a dataset has data: intervals of records, cut where the step between records is more than five times
    the usual step (and more than a minute), at most ``COVERAGE_INTERVALS`` of them."""
    stamps = times.astype("datetime64[ns]", copy=False).view("int64")
    if stamps.size and stamps.min() == _NAT:  # NaT is int64's minimum (a minimum allocates no mask)
        stamps = stamps[stamps != _NAT]
    if not stamps.size:
        return []
    steps = np.diff(stamps)
    if steps.size and steps.min() < 0:  # a stored time axis is sorted already
        stamps = np.sort(stamps)
        steps = np.diff(stamps)
    # the usual step: the median of at most ~100 000 evenly spread steps (a full median copies them all)
    usual = float(np.median(steps[:: max(1, steps.size // 100_000)])) if steps.size else 0.0
    breaks = np.flatnonzero(steps > max(_GAP_FACTOR * usual, _MIN_GAP))
    if breaks.size >= COVERAGE_INTERVALS:
        breaks = np.sort(breaks[np.argsort(steps[breaks])[-(COVERAGE_INTERVALS - 1):]])
    firsts = np.concatenate([[0], breaks + 1])
    lasts = np.concatenate([breaks, [stamps.size - 1]])
    as_text = [str(t) for t in stamps.view("datetime64[ns]")[np.concatenate([firsts, lasts])]]
    return [[as_text[i], as_text[i + len(firsts)]] for i in range(len(firsts))]


def time_chunk_index(times: np.ndarray, chunk: int) -> dict[str, Any] | None:
    """The :data:`TIME_INDEX` entry of a record axis stored in chunks of ``chunk`` values: each chunk's earliest
    and latest time (None when a chunk holds nothing but NaT, or chunks overlap in time: such an axis is read
    whole at open)."""
    stamps = times.astype("datetime64[ns]", copy=False).view("int64")
    if not stamps.size:
        return None
    starts = np.arange(0, stamps.size, chunk)
    last = np.maximum.reduceat(stamps, starts)  # NaT is int64's minimum: a maximum leaves it out
    first = np.minimum.reduceat(stamps, starts)
    if (first == _NAT).any():  # chunks holding NaT: their earliest time without it
        first = np.minimum.reduceat(np.where(stamps == _NAT, np.iinfo(np.int64).max, stamps), starts)
    if (last == _NAT).any() or (first[1:] < last[:-1]).any():
        return None
    return {"chunk": int(chunk), "records": int(stamps.size), "first": first.tolist(), "last": last.tolist(),
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
