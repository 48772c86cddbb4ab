"""The quicklook and inventory figures and their files (see :mod:`heliohub.plots`)."""

from __future__ import annotations

import fnmatch
import functools
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import holoviews as hv
import icechunk
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ..errors import TimeRangeError
from ..missions import aux_position_id
from ..store.access import TimeLike, cached_catalog, coverage, not_found, open_dataset, open_group, timestamp
from ..store.location import StoreLocation
from . import pregenerated
from .panels import MAX_PANELS, panels_for
from .positions import Track, track_of, with_track
from .render import element, save, style


def _ids(dataset_ids: Iterable[str] | str | None, store: StoreLocation) -> list[str]:
    """The IDs asked for, with ``*`` and ``?`` matched against the catalog (in the order given)."""
    known_ids = list(cached_catalog(store)["dataset_id"])
    wanted = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids or ["*"])
    found: list[str] = []
    for pattern in wanted:
        matches = sorted(i for i in known_ids if fnmatch.fnmatchcase(i, pattern))
        if not matches:
            raise not_found(store, pattern)
        found += [m for m in matches if m not in found]
    return found


def _range(ids: list[str], store: StoreLocation, start: TimeLike, end: TimeLike) -> tuple[np.datetime64, np.datetime64]:
    frame = cached_catalog(store).set_index("dataset_id")
    first, last = timestamp(start, "start"), timestamp(end, "end")
    known = [(frame.at[i, "start"], frame.at[i, "end"]) for i in ids if pd.notna(frame.at[i, "start"])]
    if first is None:
        first = min((np.datetime64(a, "ns") for a, _ in known), default=None)
    if last is None:
        last = max((np.datetime64(b, "ns") for _, b in known), default=None)
    if first is None or last is None:
        raise TimeRangeError(f"{', '.join(ids)} hold(s) no records, so there is no coverage to draw: give start and "
                             "end to draw that range")
    if last <= first:
        last = first + np.timedelta64(1, "s")
    return first, last


def quicklook_figure(datasets: list[tuple[str, xr.Dataset | None]], start: Any, end: Any,
                     max_panels: int = MAX_PANELS, track: Track | None = None) -> tuple[hv.Layout, int]:
    """The stacked panels of datasets already opened over ``start`` to ``end`` (None: no records there), and how
    many panels there are. The spacecraft's position (``track``, else the first a dataset carries) is written
    under the bottom panel's time axis."""
    start, end = np.datetime64(pd.Timestamp(start), "ns"), np.datetime64(pd.Timestamp(end), "ns")
    elements = []
    for dataset_id, ds in datasets:
        panels = panels_for(dataset_id, ds, max_panels) if ds is not None else panels_for(dataset_id, xr.Dataset())
        elements += [element(panel, index, ds, start, end) for index, panel in enumerate(panels)]
    track = track or next(filter(None, (track_of(dataset_id, ds) for dataset_id, ds in datasets)), None)
    if track is not None and elements and not isinstance(elements[-1], hv.HoloMap):
        elements[-1] = with_track(elements[-1], track)
    return style(style(hv.Layout(elements).cols(1), "bokeh"), "matplotlib"), len(elements)


def _track(opened: list[tuple[str, xr.Dataset | None]], store: StoreLocation, start: np.datetime64,
           end: np.datetime64) -> Track | None:
    """The first position a dataset carries, else one from a Cluster spacecraft's AUX dataset in the store."""
    own = next(filter(None, (track_of(dataset_id, ds) for dataset_id, ds in opened)), None)
    if own is not None:
        return own
    known = set(cached_catalog(store)["dataset_id"])
    for dataset_id, _ in opened:
        aux = aux_position_id(dataset_id)
        if aux in known and aux != dataset_id:
            try:
                return track_of(aux, open_dataset(aux, start, end, archive=store))
            except TimeRangeError:
                continue
    return None


def quicklook(dataset_ids: Iterable[str] | str, start: TimeLike = None, end: TimeLike = None, *,
              archive: str | StoreLocation | None = None, max_panels: int | None = None) -> hv.Layout:
    """A quicklook of one or more datasets over a time range, as a holoviews layout.

    Each dataset's key variables are chosen from its metadata: vectors as labelled components and magnitude,
    spectra as spectrograms (log scales where the archive says so), images as frames with a time slider drawn as
    sunpy draws them, light curves as lines (on a log axis when they span decades); fill values are gaps. The
    spacecraft's position, where the dataset or its AUX dataset gives it, is written under the time axis. Several
    IDs (wildcards allowed: ``"C?_CP_FGM_SPIN"``) stack on one linked time axis. A long range is reduced on the
    server side to the figure's width (minimum and maximum per pixel), so a year of 4 s data draws as fast as an
    hour. ``start``/``end`` default to the datasets' coverage.
    ``max_panels`` per dataset: up to four for one dataset, its key panel only for each of several.
    """
    store = StoreLocation.resolve(archive)
    ids = _ids(dataset_ids, store)
    first, last = _range(ids, store, start, end)
    opened: list[tuple[str, xr.Dataset | None]] = []
    for dataset_id in ids:
        try:
            opened.append((dataset_id, open_dataset(dataset_id, first, last, archive=store)))
        except TimeRangeError:
            opened.append((dataset_id, None))
    figure, _ = quicklook_figure(opened, first, last, max_panels or (MAX_PANELS if len(ids) == 1 else 1),
                                 _track(opened, store, first, last))
    return figure


def save_figure(figure: Any, out: str | Path) -> Path:
    """Write a quicklook or inventory to ``out``: ``.png`` (matplotlib) or ``.html`` (bokeh, resources inline)."""
    return save(figure, Path(out))


def save_quicklook(dataset_ids: Iterable[str] | str, start: TimeLike, end: TimeLike, out: str | Path, *,
                   archive: str | StoreLocation | None = None) -> Path:
    """Write the quicklook of ``dataset_ids`` to ``out`` (PNG or HTML). A PNG of one dataset for exactly one of the
    store's pre-generated windows (1 h, 6 h, 24 h, aligned to midnight UTC) is the stored one."""
    out = Path(out)
    store = StoreLocation.resolve(archive)
    ids = _ids(dataset_ids, store)
    if len(ids) == 1 and out.suffix.lower() == ".png" and start is not None and end is not None:
        stored = pregenerated.find(store, ids[0], pd.Timestamp(timestamp(start, "start")),
                                   pd.Timestamp(timestamp(end, "end")))
        if stored is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            scratch = out.with_name(f".{out.name}.part")
            scratch.write_bytes(stored)
            scratch.replace(out)
            return out
    return save_figure(quicklook(ids, start, end, archive=store), out)


def inventory(dataset_ids: Iterable[str] | str | None = None, start: TimeLike = None, end: TimeLike = None, *,
              archive: str | StoreLocation | None = None) -> hv.Overlay:
    """When each dataset has data, as bars on one time axis, from the catalog and each dataset's time index (no
    chunk of data is read).

    ``dataset_ids`` accepts wildcards (all datasets when omitted); ``start``/``end`` default to their coverage.
    """
    store = StoreLocation.resolve(archive)
    ids = _ids(dataset_ids, store)
    first, last = _range(ids, store, start, end)
    least = (last - first) / 500  # a single frame still shows
    time = hv.Dimension("time", label="Time (UTC)", range=(first, last))
    row_dim = hv.Dimension("dataset", label="dataset", range=(-0.6, len(ids) - 0.4))
    bars = []
    for row, dataset_id in enumerate(reversed(ids)):
        intervals = coverage(dataset_id, archive=store)
        points: list[tuple[np.datetime64, float]] = []
        for a, b in intervals or []:
            a, b = np.datetime64(a, "ns"), np.datetime64(b, "ns")
            if b < first or a > last:
                continue
            if b - a < least:
                a, b = a - least / 2, b + least / 2
            points += [(max(a, first), row), (min(b, last), row), (min(b, last), np.nan)]  # NaN: the line breaks
        bars.append(hv.Curve(points or [(first, np.nan)], kdims=[time], vdims=[row_dim]))
    ticks = [(row, dataset_id) for row, dataset_id in enumerate(reversed(ids))]
    height = 60 + 28 * len(ids)
    inches = (12, 1.2 + 0.3 * len(ids))
    title = "Inventory: when each dataset has data"
    overlay = hv.Overlay(bars).opts(title=title, yticks=ticks, backend="bokeh").opts(
        title=title, yticks=ticks, fig_inches=inches, aspect=inches[0] / inches[1], backend="matplotlib")
    return overlay.opts({"Curve": {"color": "#30739c", "line_width": 14, "width": 1000, "height": height,
                                   "tools": ["hover"], "show_grid": False}}, backend="bokeh").opts(
        {"Curve": {"color": "#30739c", "linewidth": 9, "show_grid": False, "xformatter": _dates()}},
        backend="matplotlib")


def _dates() -> Any:
    import matplotlib.dates as mdates

    return mdates.ConciseDateFormatter(mdates.AutoDateLocator())


def redraw_quicklooks(session: icechunk.Session, dataset_id: str, spans: list[tuple[pd.Timestamp, pd.Timestamp]],
           periods: list[str]) -> int:
    """Remove and redraw, inside ``session``, the windows of ``periods`` that overlap ``spans``; returns how many
    were drawn (windows left with no records are only removed)."""
    root = zarr.open_group(session.store, mode="a")
    ds = open_group(session, dataset_id, None)
    times = ds["time"].values if "time" in ds.coords else np.array([], dtype="datetime64[ns]")
    drawn = 0
    with tempfile.TemporaryDirectory() as scratch:
        for period in periods:
            group = root.require_group(f"{pregenerated.GROUP}/{period}")
            starts = sorted({w for first, last in spans for w in pregenerated.windows(first, last, period)})
            for start in starts:
                end = start + pregenerated.PERIODS[period]
                key = pregenerated.key(start)
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


def quicklook_redrawer(periods: list[str]) -> Callable[[icechunk.Session, str, list[tuple[pd.Timestamp, pd.Timestamp]]],
                                                        None]:
    """An ingest's ``before_commit`` that redraws the pre-generated quicklooks of ``periods`` where new records
    fall, in the commit of those records."""
    return functools.partial(_redraw_hook, periods=periods)


def _redraw_hook(session: icechunk.Session, dataset_id: str, spans: list[tuple[pd.Timestamp, pd.Timestamp]], *,
                 periods: list[str]) -> None:
    redraw_quicklooks(session, dataset_id, spans, periods)
