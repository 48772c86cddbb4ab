"""Which variables of a dataset a quicklook shows, and how, chosen from the dataset's own metadata only.

* images ``image(time, y, x)`` (SOHO, PROBA2 SWAP): frames;
* vectors (a record axis and one of 2 to 4 components): the labelled components and their magnitude;
* spectra (a record axis and 5 or more bins): a spectrogram over the bins' coordinate, log scales where the
  archive says (``SCALETYP``) or the values span decades;
* scalars: lines, those of one unit in one panel (LYRA's four channels), on a log axis where the values span
  decades (decided when they are read: :mod:`heliohub.plots.render`);
* a dataset with records but nothing numeric to draw (event lists, time ranges): its record times.

Vector axes name the archive's frame (``COORDINATE_SYSTEM``: GSE, GSM, ...). The spacecraft's position (a vector in
km or Earth radii named as a position) is not a panel but extra tick labels under the time axis, as on the CSA's
summary plots (:func:`heliohub.missions.position_of`), unless it is all the dataset holds.

Support data (ISTP ``VAR_TYPE``, CEF ``PARAMETER_TYPE``) and quality flags are left out; so are variables of more
than two dimensions besides images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..missions import position_of
from ..store.layout import record_dims

MAX_PANELS = 4
"""Panels of a dataset's quicklook; each of several stacked datasets shows its first (key) panel only."""
_SUPPORT = ("support", "metadata", "ignore")


@dataclass
class Panel:
    """One panel of a quicklook: what it draws and how its axes are labelled."""

    kind: str
    """``lines``, ``spectrogram``, ``image``, ``events`` or ``empty``."""
    dataset_id: str
    variables: list[str] = field(default_factory=list)
    label: str = ""
    """The value axis' label (the archive's ``LABLAXIS``, else its long name)."""
    units: str = ""
    components: list[str] = field(default_factory=list)
    """Lines: one label per line (vector components, then ``|X|``; or one per scalar)."""
    magnitude: bool = False
    bins: str | None = None
    """Spectrograms: the bins' coordinate."""
    bins_label: str = ""
    log_bins: bool = False
    log_values: bool = False


def _attr(variable: xr.Variable | xr.DataArray, *names: str) -> str:
    upper = {k.upper(): v for k, v in variable.attrs.items()}
    for name in names:
        value = upper.get(name.upper())
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        if value not in (None, "", "None"):
            return str(value).strip()
    return ""


def is_support(variable: xr.DataArray) -> bool:
    kind = _attr(variable, "VAR_TYPE", "PARAMETER_TYPE").lower()
    return kind.startswith(_SUPPORT) or "quality" in variable.name.lower() or "flag" in variable.name.lower()


def label_of(variable: xr.DataArray) -> str:
    return _attr(variable, "LABLAXIS", "FIELDNAM", "long_name") or str(variable.name)


def units_of(variable: xr.DataArray) -> str:
    return _attr(variable, "units", "UNITS", "SI_conversion")


def component_labels(ds: xr.Dataset, variable: xr.DataArray) -> list[str]:
    """The labels of a vector's components: its label coordinate (CEF ``LABEL_1``, CDF ``LABL_PTR_1``, then
    ``REPRESENTATION_1``), else ``name[i]``."""
    dim = variable.dims[1]
    pointer = _attr(variable, "LABL_PTR_1")
    names = [f"{variable.name}_LABEL_1", pointer, f"{variable.name}_REPRESENTATION_1"]
    names += [n for n, c in ds.coords.items() if c.dims == (dim,) and c.dtype.kind in "OUT"]
    for name in names:
        if name and name in ds.variables and ds[name].dims == (dim,):
            labels = [str(v).strip() for v in np.asarray(ds[name].values)]
            if len(set(labels)) == len(labels) and all(labels):
                return labels
    return [f"{label_of(variable)}[{i}]" for i in range(variable.shape[1])]


def _log_scale(variable: xr.DataArray) -> bool:
    return _attr(variable, "SCALETYP", "SCALE_TYPE").lower().startswith("log")


def panels_for(dataset_id: str, ds: xr.Dataset, max_panels: int = MAX_PANELS) -> list[Panel]:
    """The panels that show ``ds`` (no values are read: shapes, dtypes and attributes only)."""
    axes = record_dims(ds)
    if not axes or ds.sizes[axes[0]] == 0:
        return [Panel("empty", dataset_id)]
    axis = axes[0]
    numeric = [v for v in ds.data_vars.values()
               if v.dims and v.dims[0] == axis and v.dtype.kind in "fiu" and not is_support(v)]
    images = [v for v in numeric if v.ndim == 3 and v.dims[1:] == ("y", "x")]
    if images:
        image = images[0]
        return [Panel("image", dataset_id, [str(image.name)], label_of(image), units_of(image))]
    vectors: list[Panel] = []
    scalars: dict[str, Panel] = {}
    spectra: list[Panel] = []
    for variable in numeric:
        name, label, units = str(variable.name), label_of(variable), units_of(variable)
        if variable.ndim == 1:
            group = scalars.setdefault(units, Panel("lines", dataset_id, label=label, units=units))
            group.variables.append(name)
            group.components.append(label)
            many = len(group.components) > 2  # their names are in the legend
            group.label = f"{len(group.components)} variables" if many else ", ".join(group.components)
        elif variable.ndim == 2 and 2 <= variable.shape[1] <= 4:
            frame = frame_of(variable)
            axis_label = label if not frame or frame.lower() in label.lower() else f"{label} {frame}"
            vectors.append(Panel("lines", dataset_id, [name], axis_label, units,
                                 [*component_labels(ds, variable), f"|{label}|"], magnitude=True))
        elif variable.ndim == 2 and variable.shape[1] >= 5:
            dim = variable.dims[1]
            bins = dim if dim in ds.coords and ds[dim].dtype.kind in "fiu" else None
            positive_bins = bins is not None and bool(np.all(np.asarray(ds[bins].values) > 0))
            spectra.append(Panel(
                "spectrogram", dataset_id, [name], label, units, bins=bins,
                bins_label=(f"{label_of(ds[bins])} [{units_of(ds[bins])}]" if bins else dim),
                log_bins=bool(positive_bins and (_log_scale(ds[bins]) or spans_decades(ds[bins].values))),
                log_values=_log_scale(variable)))
    panels = sorted([*vectors, *scalars.values(), *spectra], key=lambda p: _is_position(ds, p))
    if not panels:
        return [Panel("events", dataset_id, label="records")]
    position = position_of(ds)
    if position is not None and len(panels) > 1:  # drawn as tick labels under the time axis instead
        panels = [p for p in panels if p.variables != [position]]
    return panels[:max_panels]


def _is_position(ds: xr.Dataset, panel: Panel) -> bool:
    """Ephemeris (the spacecraft's position) comes after the measurements."""
    return any("pos" in name.lower() for name in panel.variables) or panel.units.lower() in ("km", "re", "au")


def frame_of(variable: xr.DataArray) -> str:
    """The name of the frame a vector is given in (``GSE`` of the CSA's ``GSE>Geocentric Solar Ecliptic``)."""
    return _attr(variable, "COORDINATE_SYSTEM", "REFERENCE_FRAME").split(">")[0].strip()


def spans_decades(values: np.ndarray) -> bool:
    """Whether the values are all positive and span two decades or more (then they are drawn on a log axis)."""
    finite = np.asarray(values, dtype="float64")
    finite = finite[np.isfinite(finite)]
    return bool(finite.size > 1 and finite.min() > 0 and finite.max() / finite.min() >= 100)
