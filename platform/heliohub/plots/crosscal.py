"""Cross-calibration plots as the CSA publishes them: one quantity from several spacecraft (or instruments) in one
panel, each in its mission's colour (Cluster: C1 black, C2 red, C3 green, C4 blue), and below it each one's
difference from their mean, on the first one's times (:func:`heliohub.open_constellation`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import holoviews as hv
import numpy as np

from ..analysis.constellation import constellation_ids, open_constellation
from ..errors import HeliohubError
from ..missions import CLUSTER_COLOURS, spacecraft_of
from ..store.access import TimeLike
from ..store.location import StoreLocation
from .reduce import envelope
from .render import COLOURS, TIME, WIDTH, style

log = logging.getLogger(__name__)


def cross_calibration(dataset_ids: str | Iterable[str], variable: str, start: TimeLike = None, end: TimeLike = None,
                      *, component: int | None = None, archive: str | StoreLocation | None = None) -> hv.Layout:
    """``variable`` (its common name: ``"B_mag"``; a vector's ``component`` index, or its magnitude when None) of
    each dataset of ``dataset_ids`` (``"C?_CP_FGM_SPIN"``) over ``start`` to ``end``, in one panel, and below it
    each one's difference from their mean, all on the first dataset's times."""
    store = StoreLocation.resolve(archive)
    ids = constellation_ids(dataset_ids, store)
    ds = open_constellation(ids, start, end, on=spacecraft_of(ids[0]) or ids[0], variables=[variable], archive=store)
    if variable not in ds:
        raise HeliohubError(f"cross_calibration: no variable {variable!r} in {', '.join(ds.attrs['dataset_ids'])}")
    values = np.asarray(ds[variable].values, dtype="float64")
    label = str(ds[variable].attrs.get("LABLAXIS") or variable)
    if values.ndim == 3:
        values = np.linalg.norm(values, axis=-1) if component is None else values[..., component]
        label = f"|{label}|" if component is None else f"{label}[{component}]"
    units = str(ds[variable].attrs.get("units") or ds[variable].attrs.get("UNITS") or "")
    times = ds["time"].values
    first, last = times[0], times[-1]
    mean = np.nanmean(values, axis=0)
    names = [str(n) for n in ds["spacecraft"].values]
    value_dim = hv.Dimension("crosscal:value", label=label, unit=units or None)
    difference_dim = hv.Dimension("crosscal:difference", label=f"{label} − mean", unit=units or None)
    curves, differences = [], []
    for i, name in enumerate(names):
        colour = CLUSTER_COLOURS.get(name, COLOURS[i % len(COLOURS)])
        for panel, dim, series in ((curves, value_dim, values[i]), (differences, difference_dim, values[i] - mean)):
            shown_times, shown = envelope(times, series[:, None], first, last, WIDTH)
            curve = hv.Curve((shown_times, shown[:, 0]), kdims=[TIME], vdims=[dim], label=name)
            panel.append(curve.opts(color=colour, backend="bokeh").opts(color=colour, backend="matplotlib"))
    title = f"Cross-calibration: {label}, {', '.join(ds.attrs['dataset_ids'])}"
    top = hv.Overlay(curves).opts(title=title, backend="bokeh").opts(title=title, backend="matplotlib")
    bottom = hv.Overlay(differences).opts(title=f"difference from the mean of {len(names)}", backend="bokeh").opts(
        title=f"difference from the mean of {len(names)}", backend="matplotlib")
    layout = hv.Layout([top, bottom]).cols(1)
    return style(style(layout, "bokeh"), "matplotlib")

