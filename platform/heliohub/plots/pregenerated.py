"""Quicklooks pre-generated into the store for fixed windows (1 h, 6 h, 24 h), as the Cluster Science Archive
keeps them.

They live in each dataset's own repository, in the group ``quicklooks/<period>/<window start>`` (the PNG's bytes
as a ``uint8`` array), so they are published in the same Icechunk commit as the data they show: an ingest
removes and redraws the windows its new records touch in that commit, and a reader never sees a quicklook of data
that is not (or no longer) in the store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import icechunk
import numpy as np
import pandas as pd
import zarr

from ..archive import BRANCH, Archive

GROUP = "quicklooks"
PERIODS = {"1h": pd.Timedelta(hours=1), "6h": pd.Timedelta(hours=6), "24h": pd.Timedelta(days=1)}


def parse_periods(text: str) -> list[str]:
    """``"1h,6h,24h"`` as periods (raises ValueError naming the unknown ones)."""
    periods = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in periods if p not in PERIODS]
    if unknown:
        raise ValueError(f"unknown quicklook period(s) {', '.join(unknown)}: use {', '.join(PERIODS)}")
    return periods


def _key(start: pd.Timestamp) -> str:
    return f"{start:%Y%m%dT%H%M%S}"


def windows(first: pd.Timestamp, last: pd.Timestamp, period: str) -> list[pd.Timestamp]:
    """The starts of the period's windows (aligned to midnight UTC) that overlap ``first`` to ``last``."""
    length = PERIODS[period]
    start = first.floor(length)
    return list(pd.date_range(start, last, freq=length))


def window_of(start: pd.Timestamp, end: pd.Timestamp) -> str | None:
    """The period whose aligned window is exactly ``start`` to ``end``, if any."""
    for period, length in PERIODS.items():
        if end - start == length and start == start.floor(length):
            return period
    return None


def find(store: Archive, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp) -> bytes | None:
    """The stored PNG of exactly this window, or None."""
    period = window_of(start, end)
    if period is None or not store.exists(dataset_id):
        return None
    session = store.repository(dataset_id).readonly_session(branch=BRANCH)
    try:
        array = zarr.open_array(session.store, path=f"{GROUP}/{period}/{_key(start)}", mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.NodeNotFoundError, icechunk.IcechunkError):
        return None
    return bytes(np.asarray(array[:]).tobytes())


def redraw(session: icechunk.Session, dataset_id: str, spans: list[tuple[pd.Timestamp, pd.Timestamp]],
           periods: list[str]) -> int:
    """Remove and redraw, inside ``session``, the windows of ``periods`` that overlap ``spans``; returns how many
    were drawn (windows left with no records are only removed)."""
    from ..access import open_group
    from .figures import quicklook_figure
    from .render import save

    root = zarr.open_group(session.store, mode="a")
    ds = open_group(session, dataset_id, None)
    times = ds["time"].values if "time" in ds.coords else np.array([], dtype="datetime64[ns]")
    drawn = 0
    with tempfile.TemporaryDirectory() as scratch:
        for period in periods:
            group = root.require_group(f"{GROUP}/{period}")
            starts = sorted({w for first, last in spans for w in windows(first, last, period)})
            for start in starts:
                end = start + PERIODS[period]
                key = _key(start)
                if key in group:
                    del group[key]
                inside = (times >= np.datetime64(start)) & (times <= np.datetime64(end))
                if not inside.any():
                    continue
                figure, _ = quicklook_figure([(dataset_id, ds.sel(time=slice(start, end)))], start, end)
                png = save(figure, Path(scratch) / f"{key}.png").read_bytes()
                array = group.create_array(key, shape=(len(png),), dtype="uint8", chunks=(len(png),))
                array[:] = np.frombuffer(png, dtype="uint8")
                array.attrs.update({"start": str(start), "end": str(end), "format": "png"})
                drawn += 1
    return drawn
