"""The spacecraft's position as extra tick labels under a quicklook's time axis, as the CSA's summary plots show it:
under each time, the position's X, Y and Z in Earth radii, in the frame the archive gives (GSE for Cluster).

The position comes from the dataset itself (Cluster FGM carries ``sc_pos_xyz_gse``) or, for a Cluster dataset
without one, from that spacecraft's AUX position dataset when the store holds it (``C<n>_CP_AUX_POSGSE_1M``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..missions import EARTH_RADIUS_KM, position_of
from .panels import frame_of, units_of
from .reduce import GAP_FACTOR

log = logging.getLogger(__name__)

MAX_POINTS = 400
"""Points of the position kept for the labels (a position changes slowly: the labels are interpolated)."""


@dataclass
class Track:
    """A spacecraft's position over a quicklook's range, in Earth radii."""

    times: np.ndarray
    """datetime64[ns]"""
    xyz: np.ndarray
    """(records, 3), Earth radii"""
    rows: list[str]
    """The three rows' labels (``X GSE``, ...)."""
    who: str
    """Whose position (the dataset it comes from)."""

    @property
    def gap(self) -> float:
        """Nanoseconds between two points beyond which the track has a gap (nothing is interpolated across it)."""
        steps = np.diff(self.times.astype("int64"))
        return float(GAP_FACTOR * max(np.median(steps), 1))

    def at(self, when: np.ndarray) -> np.ndarray:
        """The position at ``when`` (datetime64[ns]), NaN outside the track and inside its gaps."""
        t = self.times.astype("int64").astype("float64")
        x = np.asarray(when, dtype="datetime64[ns]").astype("int64").astype("float64")
        xyz = np.stack([np.interp(x, t, self.xyz[:, i], left=np.nan, right=np.nan) for i in range(3)], axis=-1)
        after = np.clip(np.searchsorted(t, x), 1, len(t) - 1)
        xyz[(t[after] - t[after - 1]) > self.gap] = np.nan
        return xyz

    def label(self, when: np.datetime64) -> str:
        """The rows under one tick: each coordinate to 0.1 Earth radius (blank outside the track)."""
        xyz = self.at(np.array([when]))[0]
        return "\n".join("" if np.isnan(v) else f"{v:.1f}" for v in xyz)


def track_of(dataset_id: str, ds: xr.Dataset | None) -> Track | None:
    """The position a dataset carries, over its records (None when it has none)."""
    name = position_of(ds) if ds is not None else None
    if name is None:
        return None
    variable = ds[name]
    times = np.asarray(ds[variable.dims[0]].values, dtype="datetime64[ns]")
    values = np.asarray(variable.values, dtype="float64")
    keep = np.isfinite(values).all(axis=1) & ~np.isnat(times)
    if keep.sum() < 2:
        return None
    times, values = times[keep], values[keep]
    step = max(1, len(times) // MAX_POINTS)
    times, values = times[::step], values[::step]
    if units_of(variable).lower() == "km":
        values = values / EARTH_RADIUS_KM
    frame = frame_of(variable)
    rows = [f"{axis} {frame}".strip() for axis in ("X", "Y", "Z")]
    return Track(times, values, rows, dataset_id)


def with_track(element: Any, track: Track) -> Any:
    """``element`` (the bottom panel) with the track's positions under its time ticks, in both backends."""
    return element.opts(hooks=[_bokeh_hook(track)], backend="bokeh").opts(
        hooks=[_matplotlib_hook(track)], backend="matplotlib")


def _legend(track: Track) -> str:
    return f"{track.who} position (Earth radii): " + ", ".join(track.rows)


def _matplotlib_hook(track: Track) -> Any:
    import matplotlib.dates as mdates
    from matplotlib.ticker import Formatter

    epoch = np.datetime64(mdates.get_epoch(), "ns")

    def when(x: float) -> np.datetime64:
        return epoch + np.timedelta64(round(x * 86400e9), "ns")

    class WithPosition(Formatter):
        """The time formatter holoviews set, with the position's rows under each label."""

        def __init__(self, dates: Formatter) -> None:
            self.dates = dates

        def set_axis(self, axis: Any) -> None:
            super().set_axis(axis)
            self.dates.set_axis(axis)

        def format_ticks(self, values: list[float]) -> list[str]:
            return [f"{text}\n{track.label(when(x))}" for text, x in zip(self.dates.format_ticks(values), values,
                                                                          strict=True)]

        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{self.dates(x, pos)}\n{track.label(when(x))}"

        def get_offset(self) -> str:
            return self.dates.get_offset()

    def hook(plot: Any, element: Any) -> None:
        axis = plot.handles["axis"]
        axis.xaxis.set_major_formatter(WithPosition(axis.xaxis.get_major_formatter()))
        size = axis.xaxis.get_ticklabels()[0].get_fontsize() if axis.xaxis.get_ticklabels() else "small"
        axis.annotate("UT\n" + "\n".join(track.rows), xy=(0, 0), xycoords="axes fraction", xytext=(-8, -3.5),
                      textcoords="offset points", ha="right", va="top", fontsize=size)
        axis.set_xlabel(f"Time (UTC); under it: {_legend(track)}")

    return hook


_TICKS_JS = """
const pad = (n) => String(n).padStart(2, "0");
const d = new Date(tick);
let text = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
if (d.getUTCSeconds() || d.getUTCMilliseconds()) { text += `:${pad(d.getUTCSeconds())}`; }
if (!d.getUTCHours() && !d.getUTCMinutes() && !d.getUTCSeconds()) { text = d.toISOString().slice(0, 10); }
if (tick < t[0] || tick > t[t.length - 1]) { return text + "\\n\\n\\n"; }
let hi = 1;
while (hi < t.length - 1 && t[hi] < tick) { hi++; }
if (t[hi] - t[hi - 1] > gap) { return text + "\n\n\n"; }
const f = (tick - t[hi - 1]) / ((t[hi] - t[hi - 1]) || 1);
const rows = [x, y, z].map((v) => (v[hi - 1] + f * (v[hi] - v[hi - 1])).toFixed(1));
return [text, ...rows].join("\\n");
"""


def _bokeh_hook(track: Track) -> Any:
    def hook(plot: Any, element: Any) -> None:
        from bokeh.models import CustomJSTickFormatter

        milliseconds = (track.times.astype("int64") / 1e6).tolist()
        columns = {name: track.xyz[:, i].round(3).tolist() for i, name in enumerate("xyz")}
        axis = plot.state.xaxis[0]
        axis.formatter = CustomJSTickFormatter(args={"t": milliseconds, "gap": track.gap / 1e6, **columns},
                                               code=_TICKS_JS)
        axis.axis_label = f"Time (UTC); under it: {_legend(track)}"

    return hook
