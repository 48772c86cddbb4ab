"""How a dataset is laid out in Zarr: chunking along time, the time coordinate, compression.

The choices and the measurements behind them are in ``docs/store-layout.md`` (``benchmarks/bench_store.py``
re-measures them). In short:

* data variables are chunked along their record axis to about ``CHUNK_BYTES`` of raw values per chunk (whole
  extent along the other axes; one frame per chunk for images), so a one-year scan reads few, large objects and a
  one-hour read fetches one chunk;
* record coordinates (``time`` and other time axes) are stored in chunks of ``TIME_CHUNK_RECORDS`` values (a
  year of 4 s data in 16 chunks); byte shuffling compresses a regular cadence to a few kB. The group attribute
  ``TIME_INDEX`` keeps each chunk's first and last time and its gaps, so opening a range reads only the time
  chunks it overlaps, and an append only those it changes, not the whole axis (20 years of 4 s data hold 1.3 GB
  of times);
* numbers are compressed with Blosc (lz4, byte shuffle: 6-19x faster to write than zstd, 1.5-2.3x faster to
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
"""Group attribute: for each record axis, its chunk length, record count, the first and last time and the gaps of
each chunk (int64 nanoseconds) and the axis's :func:`coverage`, written with every change to the axis from the
chunks it changed (so neither an open with a range, nor the catalog, nor an append reads the whole axis)."""


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
"""At most this many intervals with data per dataset in the catalog (the narrowest gaps are closed first)."""
_GAP_FACTOR = 5
_MIN_GAP = np.timedelta64(60, "s").astype("timedelta64[ns]").astype("int64")


Times = np.ndarray | Sequence[np.ndarray]
"""A time axis (datetime64, or int64 nanoseconds as stored), whole or as its consecutive parts (the files of a
batch; the kept and the new records of a merge): scanned a chunk at a time, so no whole-axis temporary is made (a
year of 4 s data is 63 MB of times, and on these machines fresh memory cost more than the arithmetic on it)."""


def pieces(parts: Sequence[np.ndarray], offsets: np.ndarray, start: int, stop: int) -> list[np.ndarray]:
    """The slices of consecutive ``parts`` (part i holding records ``offsets[i]`` on) that hold records ``start``
    to ``stop``."""
    first = int(np.searchsorted(offsets, start, side="right")) - 1
    last = int(np.searchsorted(offsets, stop, side="left"))
    return [parts[i][max(0, start - offsets[i]):stop - offsets[i]] for i in range(first, last)]


def _parts(times: Times) -> tuple[list[np.ndarray], np.ndarray]:
    """The axis as int64 nanoseconds in its non-empty parts, and where each part starts (and the axis ends)."""
    parts = [part.view("int64") if part.dtype == np.int64 else part.astype("datetime64[ns]", copy=False).view("int64")
             for part in ([times] if isinstance(times, np.ndarray) else times) if part.size]
    return parts, np.cumsum([0] + [p.size for p in parts])


def _blocks(parts: list[np.ndarray], offsets: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """The axis in blocks of ``size`` values (the last one shorter): a view where the block lies in one part,
    else a copy into one buffer that the next block reuses."""
    buffer = None
    for start in range(0, int(offsets[-1]), size):
        held = pieces(parts, offsets, start, min(int(offsets[-1]), start + size))
        if len(held) == 1:
            yield held[0]
            continue
        buffer = np.empty(size, np.int64) if buffer is None else buffer
        yield np.concatenate(held, out=buffer[:sum(len(p) for p in held)])


def _chunk(block: np.ndarray, previous: int | None) -> tuple[int, int, list[list[int]]] | None:
    """A time chunk's earliest and latest time and its gaps, its times taken in order without NaT (None when it
    holds nothing but NaT). A gap is a step, from the time before it (``previous``: the latest time of the chunks
    before) or within it, wider than five times the chunk's usual step (the median of at most ~100 000 evenly
    spread steps) and than a minute; at most the ``COVERAGE_INTERVALS - 1`` widest (the earliest of equal ones)."""
    steps = np.diff(block)
    if block.min() == _NAT or (steps.size and steps.min() < 0):  # NaT is int64's minimum
        block = np.sort(block[block != _NAT])
        if not block.size:
            return None
        steps = np.diff(block)
    into = [] if previous is None else [int(block[0]) - previous]
    stride = max(1, (len(into) + steps.size) // 100_000)
    sample = np.concatenate([into, steps[stride - 1::stride]]) if into else steps[::stride]
    limit = max(_GAP_FACTOR * float(np.median(sample)), _MIN_GAP) if sample.size else float("inf")
    at = np.flatnonzero(steps > limit)
    befores, afters = block[at], block[at + 1]
    if into and into[0] > limit:
        befores, afters = np.concatenate([[previous], befores]), np.concatenate([block[:1], afters])
    if befores.size >= COVERAGE_INTERVALS:
        keep = np.lexsort((befores, befores - afters))[:COVERAGE_INTERVALS - 1]  # widest first, then earliest
        befores, afters = np.sort(befores[keep]), np.sort(afters[keep])
    return int(block[0]), int(block[-1]), [[int(a), int(b)] for a, b in zip(befores, afters, strict=True)]


def _coverage(first: int, last: int, gaps: list[list[list[int]]]) -> list[list[str]]:
    """Intervals from ``first`` to ``last`` cut at the ``COVERAGE_INTERVALS - 1`` widest of the chunks' gaps (the
    earliest of equal ones), as ISO text."""
    cuts = [gap for chunk in gaps for gap in chunk]
    if len(cuts) >= COVERAGE_INTERVALS:
        cuts = sorted(sorted(cuts, key=lambda g: (g[0] - g[1], g[0]))[:COVERAGE_INTERVALS - 1])
    edges = [first, *(t for gap in cuts for t in gap), last]
    text = [str(t) for t in np.array(edges, dtype="int64").view("datetime64[ns]")]
    return [[text[i], text[i + 1]] for i in range(0, len(text), 2)]


def time_chunk_index(times: Times, chunk: int, kept: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The :data:`TIME_INDEX` entry of a record axis stored in chunks of ``chunk`` values: each chunk's earliest
    and latest time and its gaps (see :func:`_chunk`), and the axis's :func:`coverage`; None when a chunk holds
    nothing but NaT or chunks overlap in time (such an axis is read whole at open).

    ``kept``: the entry of the axis before a change, cut to the chunks the change left alone (see
    :func:`index_prefix`); ``times`` then holds the records from the first chunk after them on.
    """
    parts, offsets = _parts(times)
    first, last, gaps = ([*kept["first"]], [*kept["last"]], [*kept["gaps"]]) if kept else ([], [], [])
    if not first and not parts:
        return None
    for block in _blocks(parts, offsets, chunk):
        summary = _chunk(block, last[-1] if last else None)
        if summary is None or (last and summary[0] < last[-1]):
            return None
        first.append(summary[0])
        last.append(summary[1])
        gaps.append(summary[2])
    return {"chunk": int(chunk), "records": (int(kept["records"]) if kept else 0) + int(offsets[-1]),
            "first": first, "last": last, "gaps": gaps, "coverage": _coverage(first[0], last[-1], gaps)}


def index_prefix(entry: dict[str, Any] | None, chunks: int) -> dict[str, Any] | None:
    """``entry`` (a :data:`TIME_INDEX` entry as :func:`time_index_entry` gives it) cut to its first ``chunks``
    chunks, all whole, for :func:`time_chunk_index`; None when it keeps no gaps (written before they were kept):
    then the axis is indexed anew, whole."""
    if entry is None or not isinstance(entry.get("gaps"), list) or len(entry["gaps"]) != len(entry["first"]):
        return None
    return {"records": chunks * int(entry["chunk"]), "first": entry["first"][:chunks],
            "last": entry["last"][:chunks], "gaps": entry["gaps"][:chunks]}


def coverage(times: Times, chunk: int = TIME_CHUNK_RECORDS) -> list[list[str]]:
    """When a dataset has data: intervals of records, cut where the step between records is more than five times
    the usual step of its time chunk (``chunk`` records) and more than a minute, at most ``COVERAGE_INTERVALS`` of
    them (the narrowest gaps closed first); an axis whose chunks overlap in time is covered as if sorted."""
    entry = time_chunk_index(times, chunk)
    if entry is None:
        parts, _ = _parts(times)
        stamps = np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        stamps = stamps[stamps != _NAT]
        entry = time_chunk_index(stamps, chunk) if stamps.size else None
    return entry["coverage"] if entry else []


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
