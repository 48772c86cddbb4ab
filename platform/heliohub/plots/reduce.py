"""Reducing a long time series to what a figure of a given width can show, before anything is drawn or sent.

Lines become their minimum and maximum in each pixel column (the envelope a plot of every point would draw, so no
spike is lost); spectrograms become the mean of each column. Columns without data stay empty, so data gaps show
as gaps, and so do gaps between records at the data's own resolution.
"""

from __future__ import annotations

import numpy as np

GAP_FACTOR = 5
"""A step between records of more than this many times the usual step is a data gap (the line breaks)."""


def _gaps(times: np.ndarray) -> np.ndarray:
    """Indexes i where a gap lies between record i-1 and record i."""
    if times.size < 3:
        return np.empty(0, dtype=np.int64)
    steps = np.diff(times.astype("int64"))
    usual = np.median(steps)
    return np.flatnonzero(steps > GAP_FACTOR * max(usual, 1)) + 1


def _columns(times: np.ndarray, start: np.datetime64, end: np.datetime64, width: int) -> np.ndarray:
    edges = np.linspace(start.astype("datetime64[ns]").astype("int64"), end.astype("datetime64[ns]").astype("int64"),
                        width + 1)
    return np.searchsorted(times.astype("int64"), edges)


def envelope(times: np.ndarray, values: np.ndarray, start: np.datetime64, end: np.datetime64,
             width: int) -> tuple[np.ndarray, np.ndarray]:
    """``times`` and ``values`` (records along the first axis, components along the second) as at most two points
    per pixel column: each column's minimum then maximum. Short series keep every point, with NaN rows in gaps."""
    values = np.asarray(values).reshape(len(times), -1)
    values = values if values.dtype.kind == "f" else values.astype("float64")
    if len(times) <= 2 * width:
        gaps = _gaps(times)
        if not gaps.size:
            return times, values
        return (np.insert(times, gaps, times[gaps - 1] + (times[gaps] - times[gaps - 1]) // 2),
                np.insert(values, gaps, np.nan, axis=0))
    bounds = _columns(times, start, end, width)
    starts, stops = bounds[:-1], bounds[1:]
    filled = stops > starts
    centres = (np.datetime64(start, "ns") + (np.arange(width) + 0.5) * ((np.datetime64(end, "ns")
               - np.datetime64(start, "ns")) / width)).astype("datetime64[ns]")
    lows = np.full((width, values.shape[1]), np.nan)
    highs = np.full((width, values.shape[1]), np.nan)
    if filled.any():
        # reduceat over the non-empty columns only (it would repeat a value for an empty one); fmin/fmax skip NaN
        lows[filled] = np.fmin.reduceat(values, starts[filled], axis=0)[: filled.sum()]
        highs[filled] = np.fmax.reduceat(values, starts[filled], axis=0)[: filled.sum()]
        last = np.flatnonzero(filled)[-1]  # reduceat's last segment runs to the array's end: bound it
        lows[last] = np.fmin.reduce(values[starts[last]:stops[last]], axis=0)
        highs[last] = np.fmax.reduce(values[starts[last]:stops[last]], axis=0)
    out_times = np.repeat(centres, 2)
    out = np.empty((2 * width, values.shape[1]))
    out[0::2], out[1::2] = lows, highs
    return out_times, out


def column_means(times: np.ndarray, values: np.ndarray, start: np.datetime64, end: np.datetime64,
                 width: int) -> tuple[np.ndarray, np.ndarray]:
    """A spectrogram (records by bins) as the mean of each pixel column (NaN skipped; empty columns NaN), with the
    columns' edges in time (``width + 1`` of them). Short series keep every record, each record's column
    ending at the next record (or where a gap starts)."""
    values = np.asarray(values, dtype="float64")
    if len(times) <= width:
        edges = np.empty(len(times) + 1, dtype="datetime64[ns]")
        edges[:-1] = times
        step = np.median(np.diff(times)) if len(times) > 1 else np.timedelta64(1, "s")
        edges[-1] = times[-1] + step
        gaps = _gaps(times)
        if gaps.size:  # a record before a gap covers one usual step, not the gap
            values = np.insert(values, gaps, np.nan, axis=0)
            edges = np.insert(edges, gaps, times[gaps - 1] + step)
        return edges, values
    bounds = _columns(times, start, end, width)
    finite = np.isfinite(values)
    zero = np.zeros((1, *values.shape[1:]))
    sums = np.concatenate([zero, np.cumsum(np.where(finite, values, 0.0), axis=0)])
    counts = np.concatenate([zero, np.cumsum(finite, axis=0)])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums[bounds[1:]] - sums[bounds[:-1]]) / (counts[bounds[1:]] - counts[bounds[:-1]])
    edges = np.linspace(np.datetime64(start, "ns").astype("int64"), np.datetime64(end, "ns").astype("int64"),
                        width + 1).astype("datetime64[ns]")
    return edges, means
