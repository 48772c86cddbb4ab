"""Writing a dataset of the store as a file other tools read: CDF (ISTP attributes, through pycdfpp), NetCDF-4
(through xarray and h5netcdf), CSV (through pandas) and CEF-2.0 (:mod:`heliohub.serving.cef_writer`).

Values are the stored ones: floats the store holds as NaN where the archive had fill values are written back as the
variable's ``FILLVAL`` in CDF (as ISTP readers expect), left NaN in NetCDF and CSV; times are TT2000 in CDF (to the
nanosecond). Attributes are the stored ones; in CDF, ``FILLVAL``, ``VALIDMIN``, ``VALIDMAX``, ``SCALEMIN`` and
``SCALEMAX`` are written in the variable's own type (the ISTP rule), other attributes as text or numbers, and a text
attribute the readers flattened from several entries (``"['a', 'b']"``) as those entries again.

What each format cannot hold:

* CDF: a variable attribute named as a global one (FITS keywords are both) is written once, global; text is
  fixed-width, so trailing blanks of text values (a FITS header's cards) do not come back, and an empty text comes
  back as one NUL; a dimension without a coordinate of its own has no name (readers call it
  ``<variable>_dim<i>``).
* NetCDF-4: text cannot hold NUL characters (CDF pads text with them): they are left out; truth values are written
  as text (attributes) or 0 and 1 (values).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .attributes import NOT_EXPORTED, attribute_entries
from .cef_writer import write_cef

log = logging.getLogger(__name__)

TYPED_ATTRIBUTES = ("FILLVAL", "VALIDMIN", "VALIDMAX", "SCALEMIN", "SCALEMAX")
SUFFIXES = {"cdf": ".cdf", "netcdf": ".nc", "csv": ".csv", "cef": ".cef"}


def _variable_entry(value: Any) -> Any:
    """A variable attribute as CDF's one entry: a number, numbers (an array), or text."""
    if isinstance(value, list | tuple) and value and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                         for v in value):
        return np.asarray(value)
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else str(value)


def _typed(value: Any, dtype: np.dtype) -> Any:
    """An ISTP numeric attribute in the variable's type (text that is not a number stays text); a time's fill
    (year 9999, past what nanoseconds hold) is TT2000's own fill value."""
    import pycdfpp

    try:
        if np.issubdtype(dtype, np.datetime64):
            text = str(value)
            return pycdfpp.tt2000_t(np.iinfo(np.int64).min) if text.startswith("9999-12-31") else \
                np.datetime64(text.rstrip("Z"), "ns")
        return np.array([float(value)]).astype(dtype)[0] if np.issubdtype(dtype, np.number) else value
    except (TypeError, ValueError, OverflowError):
        return value


def _time_axes(ds: xr.Dataset) -> list[str]:
    return [d for d in ds.dims if d in ds.variables and np.issubdtype(ds[d].dtype, np.datetime64)]


def _cdf_names(ds: xr.Dataset) -> dict[str, str]:
    """The name each time axis had in the archive's file (what variables' DEPEND_0 say), else Epoch."""
    names = {}
    for axis in _time_axes(ds):
        given = [str(v.attrs["DEPEND_0"]) for v in ds.data_vars.values()
                 if v.dims[:1] == (axis,) and isinstance(v.attrs.get("DEPEND_0"), str)]
        kept = ds[axis].attrs.get("archive_name")
        name = str(kept) if kept else given[0] if given else axis
        # a CEF time range variable is both the records' times and a variable of its own: the axis is Epoch
        names[axis] = "Epoch" if name in ds.data_vars or name == "time" else name
    return names


def write_cdf(ds: xr.Dataset, path: Path, name: str) -> None:
    """``ds`` as the CDF file ``name`` at ``path`` (version 3, uncompressed, row major)."""
    import pycdfpp

    cdf = pycdfpp.CDF()
    global_names = set()
    for key, value in ds.attrs.items():
        if key not in NOT_EXPORTED:
            cdf.add_attribute(key, attribute_entries(value))
            global_names.add(key)
    axes = _cdf_names(ds)
    for name, variable in ds.variables.items():
        name = str(name)
        written = axes.get(name, name)
        if name in ds.dims and name not in axes and name not in ds.data_vars and not variable.attrs:
            continue  # an index xarray made for a dimension: not in the file
        values = variable.values
        attrs: dict[str, Any] = {}
        for key, value in variable.attrs.items():
            if key in global_names:
                continue  # a CDF attribute name has one scope (FITS keywords are global and per image)
            if key in TYPED_ATTRIBUTES and isinstance(value, list | tuple):  # one per component (CEF allows it)
                typed = [_typed(v, values.dtype) for v in value]
                attrs[key] = np.asarray(typed) if all(isinstance(v, np.generic) for v in typed) else [str(value)]
            elif key in TYPED_ATTRIBUTES:
                attrs[key] = [_typed(value, values.dtype)]
            else:
                entry = _variable_entry(value)
                attrs[key] = entry if isinstance(entry, np.ndarray) else [entry]
        record_varying = bool(variable.dims) and variable.dims[0] in axes
        if variable.dims and variable.dims[0] in axes and name not in axes:
            attrs["DEPEND_0"] = [axes[variable.dims[0]]]
        kind = None
        if values.dtype.kind == "M":
            values, kind = values.astype("datetime64[ns]"), pycdfpp.DataType.CDF_TIME_TT2000
        elif values.dtype.kind == "O" or values.dtype.kind == "U":
            text = [("" if v is None else str(v)).encode() for v in values.ravel().tolist()]
            width = max([len(t) for t in text] + [1])
            values = np.array(text, dtype=f"S{width}").reshape(values.shape)
        elif values.dtype.kind == "b":
            values = values.astype(np.uint8)
        elif values.dtype.kind == "f" and "FILLVAL" in attrs:
            fill = attrs["FILLVAL"][0]
            if isinstance(fill, np.floating | float) and np.isfinite(fill):
                values = np.where(np.isnan(values), fill, values).astype(values.dtype)
        if not record_varying:
            values = values[np.newaxis, ...]
        cdf.add_variable(written, values, kind, is_nrv=not record_varying, attributes=attrs)
    pycdfpp.save(cdf, str(path))


def _netcdf_attribute(value: Any) -> Any:
    """An attribute NetCDF-4 holds: text without NUL characters (HDF5's variable-length strings cannot hold them;
    CDF pads text with them), a truth value as text (NetCDF has no boolean)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    return value.replace("\x00", "") if isinstance(value, str) else value


def write_netcdf(ds: xr.Dataset, path: Path, name: str) -> None:
    """``ds`` as the NetCDF-4 file ``name`` at ``path`` (xarray and h5netcdf; the store's Zarr encodings left
    behind)."""
    ds = ds.copy()
    ds.attrs = {k: _netcdf_attribute(v) for k, v in ds.attrs.items() if k not in NOT_EXPORTED}
    for variable in ds.variables.values():
        variable.encoding = {}
        variable.attrs = {k: _netcdf_attribute(v) for k, v in variable.attrs.items()}
        if variable.dtype.kind == "O":  # text: NetCDF-4 variable-length strings
            variable.encoding["dtype"] = str
        elif variable.dtype.kind == "b":  # NetCDF has no boolean: 0 and 1
            variable.encoding["dtype"] = "i1"
        elif variable.dtype.kind == "M":  # one unit for times and their bounds, exact to the nanosecond
            variable.encoding.update(units="nanoseconds since 1970-01-01", dtype="int64")
    ds.to_netcdf(path, engine="h5netcdf")


def csv_columns(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """The variables along ``time`` as CSV columns: time first (ISO, nanoseconds, Z), arrays one column each
    element (``name[i]``, ``name[i,j]``, the last index fastest)."""
    columns: dict[str, np.ndarray] = {"time": np.char.add(np.datetime_as_string(ds["time"].values, unit="ns"), "Z")}
    for name, variable in ds.data_vars.items():
        if not variable.dims or variable.dims[0] != "time":
            continue
        values = variable.values
        if values.dtype.kind == "M":
            values = np.char.add(np.datetime_as_string(values, unit="ns"), "Z")
        flat = values.reshape(len(values), -1)
        indices = list(np.ndindex(*values.shape[1:])) or [()]
        for k, index in enumerate(indices):
            label = f"{name}[{','.join(map(str, index))}]" if index else str(name)
            columns[label] = flat[:, k]
    return columns


def write_csv(ds: xr.Dataset, path: Path, name: str) -> None:
    """``ds``'s variables along ``time`` as the CSV file ``name`` at ``path`` (RFC 4180, a header row, NaN for fill)."""
    pd.DataFrame(csv_columns(ds)).to_csv(path, index=False, na_rep="NaN", lineterminator="\n")


WRITERS = {"cdf": write_cdf, "netcdf": write_netcdf, "csv": write_csv, "cef": write_cef}
"""Each export format's writer: ``writer(ds, path, name)`` writes ``ds`` at ``path`` as the file ``name``."""
