"""Panels as holoviews elements, styled for bokeh (notebooks, HTML) and matplotlib (PNG without a browser).

The values are read here, only for the variables a panel shows and only over the range asked for, and reduced to
the figure's width (:mod:`heliohub.plots.reduce`) before any element is made.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh
import holoviews.plotting.mpl
import numpy as np
import xarray as xr

from .panels import Panel, spans_decades
from .reduce import column_means, envelope

WIDTH = 1000
"""Pixel columns of a quicklook: the reduction's resolution and the bokeh figures' width."""
MAX_FRAMES = 24
STATIC_FRAMES = 4
IMAGE_PIXELS = 512
TIME = hv.Dimension("time", label="Time (UTC)")
COLOURS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b"]
"""Lines in a panel: blue, green, red for x, y, z (then more); a vector's magnitude is black."""
LAYOUT = {"sublabel_format": "", "fig_inches": 12, "vspace": 0.35, "hspace": 0.3}
"""A matplotlib layout: no panel letters, 12 inches wide."""


def _titled(obj: Any, title: str) -> Any:
    return obj.opts(title=title, backend="bokeh").opts(title=title, backend="matplotlib")


def _value(panel: Panel, index: int) -> hv.Dimension:
    # a name per panel, so that stacked panels share their time axis but not their value axes
    return hv.Dimension(f"{panel.dataset_id}:{index}", label=panel.label or " ", unit=panel.units or None)


def element(panel: Panel, index: int, ds: xr.Dataset | None, start: np.datetime64, end: np.datetime64) -> Any:
    """The holoviews element of one panel over ``start`` to ``end`` (``ds`` already selected to that range)."""
    title = panel.dataset_id
    if panel.kind == "empty" or ds is None or ds.sizes.get("time", 0) == 0:
        return _note(panel, index, f"{panel.dataset_id}: no records from {_day(start)} to {_day(end)}", start, end)
    times = ds["time"].values
    if panel.kind == "events":
        return _titled(hv.Spikes(times, kdims=[TIME], label="records"), f"{title}: record times").redim.range(
            **{TIME.name: (start, end)})
    if panel.kind == "image":
        return _frames(panel, ds, times)
    if panel.kind == "spectrogram":
        return _spectrogram(panel, index, ds, times, start, end)
    columns = [_floats(ds[name].values).reshape(len(times), -1) for name in panel.variables]
    values = np.concatenate(columns, axis=1) if len(columns) > 1 else columns[0]
    if panel.magnitude:  # a component that is fill makes the magnitude unknown (NaN)
        values = np.concatenate([values, np.sqrt(np.einsum("ij,ij->i", values, values))[:, None]], axis=1)
    reduced_times, reduced = envelope(times, values, start, end, WIDTH)
    if np.isnan(reduced).all():
        return _note(panel, index, f"{panel.label}: no valid values (all fill) from {_day(start)} to {_day(end)}",
                     start, end)
    vdim = _value(panel, index)
    # one line needs no legend (and holoviews' matplotlib backend misdraws a curve labelled as its value axis)
    labels = panel.components if len(panel.components) > 1 else [""]
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(labels))]
    if panel.magnitude:
        colours[-1] = "black"
    curves = [_coloured(hv.Curve((reduced_times, reduced[:, i]), kdims=[TIME], vdims=[vdim], label=label), colour)
              for i, (label, colour) in enumerate(zip(labels, colours, strict=True))]
    log = bool(spans_decades(reduced))
    overlay = hv.Overlay(curves).opts(logy=log, backend="bokeh").opts(logy=log, backend="matplotlib")
    return _titled(overlay, title).redim.range(**{TIME.name: (start, end)})


def _coloured(curve: hv.Curve, colour: str) -> hv.Curve:
    return curve.opts(color=colour, backend="bokeh").opts(color=colour, backend="matplotlib")


def _floats(values: np.ndarray) -> np.ndarray:
    """Values as floats, without copying those stored as floats (float32 is what the archive's files hold)."""
    values = np.asarray(values)
    return values if values.dtype.kind == "f" else values.astype("float64")


def _spectrogram(panel: Panel, index: int, ds: xr.Dataset, times: np.ndarray, start: np.datetime64,
                 end: np.datetime64) -> Any:
    (name,) = panel.variables
    values = np.asarray(ds[name].values, dtype="float64")
    if not np.isfinite(values).any() or (panel.log_values and not (values > 0).any()):
        return _note(panel, index, f"{panel.label}: no valid values (all fill) from {_day(start)} to {_day(end)}",
                     start, end)
    edges, means = column_means(times, values, start, end, WIDTH)
    centres = np.asarray(ds[panel.bins].values, dtype="float64") if panel.bins else np.arange(values.shape[1])
    order = np.argsort(centres)
    centres, means = centres[order], means[:, order]
    bins = _edges(centres, log=panel.log_bins)
    if panel.log_values:
        means = np.where(means > 0, means, np.nan)
    vdim = _value(panel, index)
    mesh = hv.QuadMesh((edges, bins, means.T), kdims=[TIME, hv.Dimension(f"{name}:bins", label=panel.bins_label)],
                       vdims=[vdim])
    mesh = mesh.opts(logy=panel.log_bins, logz=panel.log_values, colorbar=True, cmap="viridis", backend="bokeh")
    mesh = mesh.opts(logy=panel.log_bins, logz=panel.log_values, colorbar=True, cmap="viridis", backend="matplotlib")
    return _titled(mesh, panel.dataset_id).redim.range(**{TIME.name: (start, end)})


def _edges(centres: np.ndarray, log: bool) -> np.ndarray:
    axis = np.log10(centres) if log else centres
    if axis.size == 1:
        inner = np.array([axis[0] - 0.5, axis[0] + 0.5])
    else:
        middle = (axis[1:] + axis[:-1]) / 2
        inner = np.concatenate([[2 * axis[0] - middle[0]], middle, [2 * axis[-1] - middle[-1]]])
    return 10**inner if log else inner


def _frames(panel: Panel, ds: xr.Dataset, times: np.ndarray) -> hv.HoloMap:
    from .images import frame_of, image_element, look_of, map_of, quiet_sunpy

    (name,) = panel.variables
    picks = np.unique(np.linspace(0, len(times) - 1, min(len(times), MAX_FRAMES)).round().astype(int))
    with quiet_sunpy():
        maps = [map_of(ds, name, int(i), IMAGE_PIXELS) for i in picks]
        look = look_of(maps)
        frames = {str(np.datetime_as_string(times[i], unit="s")): image_element(
            frame_of(panel.dataset_id, smap, look), look, panel.label, panel.units)
            for i, smap in zip(picks, maps, strict=True)}
    return hv.HoloMap(frames, kdims=[hv.Dimension("frame", label="Time (UTC)")], label=panel.dataset_id)


def _note(panel: Panel, index: int, text: str, start: np.datetime64, end: np.datetime64) -> Any:
    """A panel that says why there is nothing to draw, on the same time axis as the others."""
    mid = start + (end - start) // 2
    note = hv.Text(mid, 0.5, text, kdims=[TIME, hv.Dimension(f"{panel.dataset_id}:{index}", label=" ")])
    return _titled(note, panel.dataset_id).redim.range(**{TIME.name: (start, end)})


def _day(stamp: np.datetime64) -> str:
    return str(np.datetime_as_string(np.datetime64(stamp, "s"), unit="s")).replace("T", " ")


def style(obj: Any, backend: str) -> Any:
    """A quicklook's sizes and tools for a backend (holoviews keeps options per backend)."""
    if backend == "bokeh":
        options = {
            "Curve": {"width": WIDTH, "height": 220, "tools": ["hover"], "show_grid": True, "line_width": 1},
            "Overlay": {"legend_position": "right", "width": WIDTH, "height": 220},
            "QuadMesh": {"width": WIDTH, "height": 260, "tools": ["hover"]},
            "Spikes": {"width": WIDTH, "height": 140, "yaxis": None},
            "Text": {"width": WIDTH, "height": 120, "yaxis": None},
            "Image": {"tools": ["hover"]},  # sized by images.image_element
            "Overlay.Frame": {"width": None, "height": None, "show_legend": False},
        }
    else:
        import matplotlib.dates as mdates

        dates = mdates.ConciseDateFormatter(mdates.AutoDateLocator())
        options = {
            "Curve": {"aspect": 4.5, "show_grid": True, "linewidth": 0.8, "xformatter": dates},
            "Overlay": {"legend_position": "right", "aspect": 4.5, "xformatter": dates},
            "QuadMesh": {"aspect": 4.5, "xformatter": dates},
            "Spikes": {"aspect": 9, "yaxis": None, "xformatter": dates},
            "Text": {"aspect": 9, "yaxis": None, "xformatter": dates},
            "Image": {"aspect": "equal"},
            "Overlay.Frame": {"aspect": "equal", "show_legend": False},
            "Layout": LAYOUT,
        }
    return obj.opts(options, backend=backend)


def static(obj: Any) -> Any:
    """The figure for a file that cannot hold a slider (PNG): up to four frames of each image series, side by side."""
    if isinstance(obj, hv.HoloMap):
        keys = list(obj.keys())
        picks = sorted({keys[round(i)] for i in np.linspace(0, len(keys) - 1, min(len(keys), STATIC_FRAMES))})
        return hv.Layout([obj[k] for k in picks]).cols(STATIC_FRAMES)
    if isinstance(obj, hv.Layout):
        parts = [static(item) for item in obj]
        flat = []
        for part in parts:
            flat.extend(part if isinstance(part, hv.Layout) else [part])
        frames = max((len(p) for p in parts if isinstance(p, hv.Layout)), default=1)
        return hv.Layout(flat).cols(frames)
    return obj


def matplotlib_figure(obj: Any) -> Any:
    """The matplotlib figure a PNG of ``obj`` shows (sliders become up to four frames side by side)."""
    figure = static(obj)
    if isinstance(figure, hv.Layout):
        figure = figure.opts(**LAYOUT, backend="matplotlib")
    return hv.renderer("matplotlib").get_plot(figure).state  # hv.render would build the whole plot twice


def save(obj: Any, out: Path) -> Path:
    """Write ``obj`` to ``out`` (``.png`` with matplotlib, ``.html`` with bokeh and inline resources), replacing
    it only once it is whole."""
    suffix = out.suffix.lower()
    if suffix not in (".png", ".html"):
        from ..errors import HeliohubError

        raise HeliohubError(f"{out}: a quicklook is written as .png or .html")
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=suffix, dir=out.parent)
    os.close(handle)
    try:
        if suffix == ".png":
            matplotlib_figure(obj).savefig(scratch, format="png", dpi=100, bbox_inches="tight")
        else:
            from bokeh.resources import INLINE

            hv.save(obj, scratch, backend="bokeh", resources=INLINE, title=out.stem)
        os.replace(scratch, out)
    finally:
        Path(scratch).unlink(missing_ok=True)
    return out
