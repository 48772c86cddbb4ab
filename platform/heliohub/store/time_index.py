"""The index of a dataset's time axes: each time chunk's first and last time and its gaps.

It is kept in the dataset's group as small arrays, ``heliohub/time/<axis>`` (see :data:`~.layout.META`): a table
``chunks`` (``first``, ``last``: int64 nanoseconds; ``gaps``: how many gaps the chunk holds) and a table ``gaps``
(``before``, ``after``: the times on either side of each gap, chunk after chunk), with the axis's chunk length and
record count as the group's attributes. Opening a range reads ``first`` and ``last`` only, and then only the time
chunks the range overlaps; an append reads the last chunk's ``last`` and rewrites the index from the first chunk it
changes; only an inventory reads the gaps (:func:`read_coverage`). None of it grows with how many files or commits
the dataset has had.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import zarr

from ..errors import StoreDamagedError
from . import tables
from .layout import META, TIME_CHUNK_RECORDS

log = logging.getLogger(__name__)
_NAT = np.iinfo(np.int64).min


def index_path(dim: str) -> str:
    """Where the index of time axis ``dim`` is kept in the dataset's group."""
    return f"{META}/time/{dim}"


COVERAGE_INTERVALS = 1000
"""At most this many intervals with data per time axis in its coverage (the narrowest gaps are closed first)."""
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


def summarize(times: Times, chunk: int, previous: int | None = None) -> list[tuple[int, int, list[list[int]]]] | None:
    """Each chunk's earliest and latest time and gaps (see :func:`_chunk`) of an axis stored in chunks of ``chunk``
    values, ``previous`` being the latest time of the chunks before it; None when a chunk holds nothing but NaT or
    chunks overlap in time (such an axis is read whole at open)."""
    parts, offsets = _parts(times)
    out: list[tuple[int, int, list[list[int]]]] = []
    for block in _blocks(parts, offsets, chunk):
        summary = _chunk(block, out[-1][1] if out else previous)
        if summary is None or summary[0] < (out[-1][1] if out else previous if previous is not None else _NAT):
            return None
        out.append(summary)
    return out


def time_chunk_index(times: Times, chunk: int, kept: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The whole index of a record axis stored in chunks of ``chunk``, in memory: each chunk's earliest and latest
    time and its gaps (see :func:`_chunk`), and the axis's coverage; None when a chunk holds nothing but NaT or
    chunks overlap in time.

    ``kept``: the index of the axis before a change, cut to the chunks the change left alone (see
    :func:`index_prefix`); ``times`` then holds the records from the first chunk after them on.
    """
    first, last, gaps = ([*kept["first"]], [*kept["last"]], [*kept["gaps"]]) if kept else ([], [], [])
    parts, offsets = _parts(times)
    if not first and not parts:
        return None
    new = summarize(times, chunk, last[-1] if last else None)
    if new is None:
        return None
    first += [s[0] for s in new]
    last += [s[1] for s in new]
    gaps += [s[2] for s in new]
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




def _table(root: zarr.Group, dim: str) -> zarr.Group | None:
    return tables.open_table(root, index_path(dim))


def read_bounds(root: zarr.Group, dim: str, records: int, chunk: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Each time chunk's first and last time (int64 nanoseconds) of axis ``dim`` as stored (``records`` values in
    chunks of ``chunk``), from its index; None when it has none, or one that does not describe the axis as stored
    (then read the axis itself)."""
    group = _table(root, dim)
    if group is None or not records:
        return None
    where = f"the time index of {dim}"
    if group.attrs.get("records") != records or group.attrs.get("chunk") != chunk:
        log.info("%s describes %s records in chunks of %s, the axis has %d in chunks of %d: not used", where,
                 group.attrs.get("records"), group.attrs.get("chunk"), records, chunk)
        return None
    try:
        chunks = tables.open_table(group, "chunks")
        columns = tables.read(chunks, ("first", "last"), where=where) if chunks is not None else None
    except StoreDamagedError as error:  # an open does not need the index: the axis is read instead
        log.warning("%s; the time axis is read whole instead", error)
        return None
    if columns is None:
        return None
    if len(columns["first"]) != -(-records // chunk) or len(columns["last"]) != len(columns["first"]):
        log.info("%s has %d chunks where the axis has %d: not used", where, len(columns["first"]),
                 -(-records // chunk))
        return None
    return columns["first"], columns["last"]


def write(root: zarr.Group, dim: str, chunk: int, records: int, at: int,
          summaries: list[tuple[int, int, list[list[int]]]] | None) -> None:
    """Keep the index of axis ``dim`` (``records`` values in chunks of ``chunk``) with its chunks from chunk ``at``
    on summarized anew (:func:`summarize`), the chunks before kept; ``summaries`` None: the axis gets no index
    (it is read whole at open)."""
    path = index_path(dim)
    if summaries is None:
        if path in root:
            del root[path]
        return
    group = root.require_group(path)
    chunks = tables.open_table(group, "chunks")
    counts = tables.read(chunks, ("gaps",), slice(0, at))["gaps"] if chunks is not None and at else np.zeros(0)
    tables.write(group, "chunks", {"first": [s[0] for s in summaries], "last": [s[1] for s in summaries],
                                   "gaps": [len(s[2]) for s in summaries]}, at=at,
                 layout={"numbers": ["first", "last", "gaps"]})
    flat = [gap for s in summaries for gap in s[2]]
    tables.write(group, "gaps", {"before": np.array([g[0] for g in flat], dtype=np.int64),
                                 "after": np.array([g[1] for g in flat], dtype=np.int64)}, at=int(np.sum(counts)),
                 layout={"numbers": ["before", "after"]})
    group.attrs.update({"chunk": int(chunk), "records": int(records)})


def update(root: zarr.Group, times: zarr.Array, dim: str, before: int, begin: int, new: list[np.ndarray]) -> None:
    """The index of a stored axis of ``before`` records whose records from ``begin`` on were just written (``new``,
    also written to ``times``): the chunks before the one holding ``begin`` are kept, the rest summarized from the
    stored times of that chunk before ``begin`` and ``new``. An axis with no usable index (written before there was
    one, or by something else) is indexed whole, once."""
    length, records = int(times.chunks[0]), int(times.shape[0])
    if not records:
        write(root, dim, length, records, 0, None)
        return
    at = begin // length
    bounds = read_bounds(root, dim, before, length) if at else None
    if at and bounds is None:
        write(root, dim, length, records, 0, summarize(times[:], length))
        return
    previous = int(bounds[1][at - 1]) if at else None
    write(root, dim, length, records, at, summarize([times[at * length:begin], *new], length, previous))


def read_coverage(root: zarr.Group, dim: str) -> list[list[str]] | None:
    """When axis ``dim`` has data (see :func:`coverage`), from its index alone; None when it has no index."""
    group = _table(root, dim)
    if group is None:
        return None
    where = f"the time index of {dim}"
    chunks, gaps = tables.open_table(group, "chunks"), tables.open_table(group, "gaps")
    if chunks is None or gaps is None:
        raise StoreDamagedError(f"{where} lacks its chunks or gaps table")
    columns = tables.read(chunks, ("first", "last", "gaps"), where=where)
    cuts = tables.read(gaps, ("before", "after"), where=where)
    if not len(columns["first"]):
        return []
    if int(columns["gaps"].sum()) != len(cuts["before"]):
        raise StoreDamagedError(f"{where}: its chunks count {int(columns['gaps'].sum())} gaps, it holds "
                                f"{len(cuts['before'])}")
    per_chunk = np.split(np.column_stack([cuts["before"], cuts["after"]]), np.cumsum(columns["gaps"])[:-1])
    return _coverage(int(columns["first"][0]), int(columns["last"][-1]), [p.tolist() for p in per_chunk])
