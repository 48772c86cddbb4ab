"""Quicklooks pre-generated into the store for fixed windows (1 h, 6 h, 24 h), as the Cluster Science Archive
keeps them.

They live in each dataset's own repository, in the group ``quicklooks/<period>/<window start>`` (the PNG's bytes
as a ``uint8`` array), so they are published in the same Icechunk commit as the data they show: an ingest
removes and redraws the windows its new records touch in that commit, and a reader never sees a quicklook of data
that is not (or no longer) in the store.
"""

from __future__ import annotations

import icechunk
import numpy as np
import pandas as pd
import zarr

from ..store.location import BRANCH, StoreLocation

GROUP = "quicklooks"
PERIODS = {"1h": pd.Timedelta(hours=1), "6h": pd.Timedelta(hours=6), "24h": pd.Timedelta(days=1)}


def parse_periods(text: str) -> list[str]:
    """``"1h,6h,24h"`` as periods (raises ValueError naming the unknown ones)."""
    periods = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in periods if p not in PERIODS]
    if unknown:
        raise ValueError(f"unknown quicklook period(s) {', '.join(unknown)}: use {', '.join(PERIODS)}")
    return periods


def key(start: pd.Timestamp) -> str:
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


def find(store: StoreLocation, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp) -> bytes | None:
    """The stored PNG of exactly this window, or None."""
    period = window_of(start, end)
    if period is None or not store.exists(dataset_id):
        return None
    session = store.repository(dataset_id).readonly_session(branch=BRANCH)
    try:
        array = zarr.open_array(session.store, path=f"{GROUP}/{period}/{key(start)}", mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.NodeNotFoundError, icechunk.IcechunkError):
        return None
    return bytes(np.asarray(array[:]).tobytes())
