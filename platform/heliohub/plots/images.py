"""Solar image frames drawn as sunpy draws them (``sunpy.map.Map.plot``), as holoviews elements.

Each frame goes back to a ``sunpy.map.Map`` (:func:`heliohub.solar.frame_to_map`), so the instrument's own
colormap and normalisation come from sunpy's map sources (``Map.plot_settings``: EIT, LASCO, MDI, SWAP, ...), and
the axes are helioprojective longitude and latitude in arcsec from the frame's WCS. A frame that is rotated on the
sky is turned north up first (``Map.rotate``), so that its pixels line up with those axes.

The normalisation is applied here, before the element is made: the element holds each pixel's normalised value
(0 to 1, what sunpy's norm gives before the colormap) and its value in the data's units. Both backends then map
0..1 linearly onto the colormap, which draws what ``Map.plot()`` draws (bokeh has no power or asinh colour mapper),
and the colour bar is labelled in the data's units. A series of frames shares one set of limits, so that its
brightness can be compared from frame to frame.

Coronagraph frames (LASCO) have the solar disc and the occulter's edge drawn on them.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from ..solar import frame_to_map

log = logging.getLogger(__name__)

HPLN = hv.Dimension("hpln", label="Helioprojective Longitude (Solar-X)", unit="arcsec")
HPLT = hv.Dimension("hplt", label="Helioprojective Latitude (Solar-Y)", unit="arcsec")
OCCULTER_RSUN = {"C1": 1.1, "C2": 1.5, "C3": 3.7}
"""The inner edge of each LASCO coronagraph's field of view, in solar radii: 1.1, 1.5 and 3.7 R_sun (Brueckner et
al. 1995, Solar Physics 162, 357, table 1, the instrument paper)."""
COLORBAR_TICKS = 5
FRAME_PIXELS = 380
"""The width of a frame in a notebook or HTML file (bokeh), in screen pixels."""
FRAME = "Frame"
"""The group of a frame drawn with marks on it (its overlay is styled as an image, not as lines)."""
MARKS = "dashed: solar disc (white), occulter's edge (yellow)"


@dataclass
class Frame:
    """One frame as it is drawn: north up, rows from the bottom (south) up."""

    normalised: np.ndarray
    """Each pixel through the instrument's norm: 0 to 1 between the limits, NaN where there is no value."""
    values: np.ndarray
    bounds: tuple[float, float, float, float]
    """Left, bottom, right and top edges in arcsec."""
    title: str
    rsun: float
    """The solar radius seen from the observer, in arcsec."""
    occulter: float | None
    """The occulter's edge in arcsec (coronagraphs), else None."""


@dataclass
class Look:
    """What a series of frames shares: colormap, norm (with its limits), and the colour bar's ticks."""

    cmap: Any
    norm: Any
    ticks: list[float]
    labels: list[str]


def _pixels_apart(smap: Any) -> float:
    """How far (in pixels) the frame's rotation on the sky moves its farthest corner from where it would be."""
    matrix = np.asarray(smap.rotation_matrix, dtype="float64")
    angle = np.arctan2(matrix[1, 0], matrix[0, 0])
    half_diagonal = float(np.hypot(*smap.data.shape)) / 2
    return abs(2 * np.sin(angle / 2)) * half_diagonal


def map_of(ds: xr.Dataset, name: str, index: int, pixels: int) -> Any:
    """Frame ``index`` of ``ds[name]`` as a sunpy map, at most ``pixels`` across (mean of blocks), north up."""
    import astropy.units as u

    with quiet_sunpy():
        smap = frame_to_map(ds, index) if name == "image" else frame_to_map(ds.rename({name: "image"}), index)
        step = int(np.ceil(max(smap.data.shape) / pixels))
        if step > 1:
            smap = smap.superpixel([step, step] * u.pix, func=np.nanmean)
        if _pixels_apart(smap) > 0.5:
            smap = smap.rotate(order=1, missing=np.nan)
    return smap


@contextlib.contextmanager
def quiet_sunpy() -> Iterator[None]:
    """sunpy's notes about a frame's missing metadata (observer, solar radius) left out while it is drawn: they are
    sunpy's to say when the user makes the map (``heliohub.solar.frame_to_map``), not at every quicklook."""
    from sunpy import log as sunpy_log
    from sunpy.util.exceptions import SunpyMetadataWarning, SunpyUserWarning

    def errors_only(record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING  # sunpy logs its metadata warnings too

    sunpy_log.addFilter(errors_only)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SunpyUserWarning)
            warnings.simplefilter("ignore", SunpyMetadataWarning)
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)  # superpixels outside the FOV
            yield
    finally:
        sunpy_log.removeFilter(errors_only)


def _title(dataset_id: str, smap: Any) -> str:
    seen = f"{smap.wavelength.to_value('angstrom'):g} Å" if smap.wavelength is not None else smap.measurement
    what = " ".join(str(part) for part in (smap.nickname or smap.instrument, seen) if part)
    return f"{dataset_id}: {what} {smap.date.isot[:19].replace('T', ' ')}"


def frame_of(dataset_id: str, smap: Any, look: Look) -> Frame:
    """A map as it is drawn with ``look``."""
    values = np.asarray(smap.data, dtype="float64")
    with np.errstate(invalid="ignore"):
        normalised = np.ma.filled(np.ma.asarray(look.norm(np.ma.masked_invalid(values)), dtype="float64"), np.nan)
    left, bottom = (float(c.to_value("arcsec")) for c in (smap.bottom_left_coord.Tx, smap.bottom_left_coord.Ty))
    right, top = (float(c.to_value("arcsec")) for c in (smap.top_right_coord.Tx, smap.top_right_coord.Ty))
    rsun = float(smap.rsun_obs.to_value("arcsec"))
    detector = str(smap.detector or "").upper()
    occulter = OCCULTER_RSUN.get(detector) if str(smap.instrument or "").upper().startswith("LASCO") else None
    return Frame(normalised, values, (left, bottom, right, top), _title(dataset_id, smap), rsun,
                 occulter * rsun if occulter else None)


def look_of(maps: list[Any]) -> Look:
    """The colormap and norm of the first map's instrument (``Map.plot_settings``), with limits over all frames:
    those the instrument sets (a magnetogram's symmetric limits), else the frames' minimum and maximum, as
    matplotlib sets them for ``Map.plot()``."""
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    settings = maps[0].plot_settings
    norm = copy.deepcopy(settings.get("norm")) or Normalize()
    lows, highs = [], []
    for smap in maps:
        data = np.ma.masked_invalid(np.asarray(smap.data, dtype="float64"))
        own = smap.plot_settings.get("norm")
        lows.append(own.vmin if own is not None and own.vmin is not None else data.min())
        highs.append(own.vmax if own is not None and own.vmax is not None else data.max())
    finite = [(a, b) for a, b in zip(lows, highs, strict=True) if a is not np.ma.masked and b is not np.ma.masked]
    norm.vmin, norm.vmax = (float(min(a for a, _ in finite)), float(max(b for _, b in finite))) if finite else (0, 1)
    if norm.vmax <= norm.vmin:
        norm.vmax = norm.vmin + 1
    ticks = [float(t) for t in MaxNLocator(COLORBAR_TICKS).tick_values(norm.vmin, norm.vmax)
             if norm.vmin <= t <= norm.vmax]
    positions = np.ma.filled(np.ma.asarray(norm(np.array(ticks, dtype="float64")), dtype="float64"), np.nan)
    return Look(maps[0].cmap, norm, [float(p) for p in np.ravel(positions)], [f"{t:g}" for t in ticks])


def image_element(frame: Frame, look: Look, label: str, units: str) -> Any:
    """A frame as a holoviews overlay: the image (colour: the normalised value; hover: the value in ``units``),
    and on a coronagraph the solar disc and the occulter's edge."""
    from bokeh.models import FixedTicker
    from matplotlib.ticker import FixedFormatter

    rows, columns = frame.values.shape
    left, bottom, right, top = frame.bounds
    xs = left + (np.arange(columns) + 0.5) * (right - left) / columns
    ys = bottom + (np.arange(rows) + 0.5) * (top - bottom) / rows
    shown = hv.Dimension("normalised", label=f"{label} ({units})" if units else label, range=(0, 1))
    value = hv.Dimension("value", label=label or "value", unit=units or None)
    image = hv.Image((xs, ys, frame.normalised, frame.values), kdims=[HPLN, HPLT], vdims=[shown, value])
    common = {"cmap": look.cmap, "clim": (0.0, 1.0), "colorbar": True, "title": frame.title}
    size = {"frame_width": FRAME_PIXELS, "frame_height": round(FRAME_PIXELS * (top - bottom) / (right - left))}
    image = image.opts(**common, **size, colorbar_opts={
        "ticker": FixedTicker(ticks=look.ticks),
        "major_label_overrides": dict(zip(look.ticks, look.labels, strict=True))}, backend="bokeh")
    image = image.opts(**common, colorbar_opts={"ticks": look.ticks, "format": FixedFormatter(look.labels)},
                       backend="matplotlib")
    if frame.occulter is None:
        return image
    marks = [_circle(frame.rsun, "white", "solar disc"), _circle(frame.occulter, "#ffcc00", "occulter")]
    title = f"{frame.title}\n{MARKS}"
    return hv.Overlay([image, *marks], group=FRAME).opts(title=title, **size, backend="bokeh").opts(
        title=title, backend="matplotlib")


def _circle(radius: float, color: str, label: str) -> Any:
    turn = np.linspace(0, 2 * np.pi, 181)
    circle = hv.Curve((radius * np.cos(turn), radius * np.sin(turn)), kdims=[HPLN], vdims=[HPLT], label=label)
    return circle.opts(color=color, line_dash="dashed", line_width=1, backend="bokeh").opts(
        color=color, linestyle="--", linewidth=1, backend="matplotlib")
