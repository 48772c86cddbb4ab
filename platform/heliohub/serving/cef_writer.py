"""Writing a dataset of the store as a CEF-2.0 file, laid out as the Cluster Science Archive lays out its merged
deliveries: the header (``FILE_NAME``, ``FILE_FORMAT_VERSION``, the global ``META`` blocks, one ``VARIABLE`` block
per variable), ``DATA_UNTIL = "END_OF_DATA"``, one record per line with the time tag first, ``!RECORDS= N`` and the
end line. Records are written in blocks, so a file of any length is made with flat memory and can be streamed.

What the file holds, and how it reads back through ``heliohub.read_file``:

* values exactly: floats in the shortest text that gives back the same float of their type, times to the finest of
  milliseconds, microseconds or nanoseconds the values need, fill values (NaN, NaT) as the variable's ``FILLVAL``;
* the variables' and the dataset's attributes, with ``SIZES`` and ``VALUE_TYPE`` as the values are (a dataset from
  a CDF gains them); label lists (``LABEL_1 = "Bx", "By", "Bz"``) again as lists; ``FILE_NAME``,
  ``LOGICAL_FILE_ID`` and ``FILE_TIME_SPAN`` describe this file;
* what CEF cannot hold: one record axis per file (variables along another time axis are left out, named in a
  comment and a warning); integers are ``INT`` (32 bits) or ``BYTE`` (a wider value is an ``ExportError``), truth
  values become 0 and 1; text holding both kinds of quote has its double quotes turned into single ones, line
  breaks in text become spaces and NUL characters (CDF pads text with them) are left out; every variable has a
  ``FILLVAL`` (CEF requires one: a variable without gets its type's usual one); empty attributes are left out;
  attribute names are read back in upper case (CEF keywords are case-insensitive), so the CF ``units`` of a FITS
  image comes back as ``UNITS``; a dimension without a coordinate of its own has no name (``<variable>_dim<i>``);
* a dataset from a CDF or FITS file gains the CEF metadata its normalised attributes came from (``DATASET_ID``,
  ``MISSION``, ``DATASET_TITLE``, ...), so the file reads back as the same dataset.

The CSA's own reader, CESR CEFLIB, has fixed limits (``CEFLIB_LIMITS``); past them it stops on an assertion or
overruns a buffer. A file written here stays within them: a variable whose text values or record shape would not
fit, and global attributes past CEFLIB's count or length, are left out, named in a comment and a warning, and a
record line past CEFLIB's line length is an ``ExportError``. CEFLIB is not on the package registries the tests can
reach; docs/conventions.md says how exported files were checked with it.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ExportError, HeliohubWarning
from ..readers.assemble import cf_attrs
from .attributes import NOT_EXPORTED, attribute_entries

log = logging.getLogger(__name__)

RECORDS_PER_BLOCK = 20_000
NORMALISED = {"dataset_id": "DATASET_ID", "mission": "MISSION", "observatory": "OBSERVATORY",
              "instrument": "INSTRUMENT_NAME", "dataset_version": "DATASET_VERSION", "file_version": "VERSION_NUMBER",
              "logical_file_id": "LOGICAL_FILE_ID", "title": "DATASET_TITLE", "acknowledgement": "ACKNOWLEDGEMENT",
              "source_file": None, "source_format": None}
"""heliohub's normalised global attributes and the CEF metadata each comes from (written only when the dataset
lacks that metadata, as one from a CDF does)."""
DESCRIBE_THIS_FILE = {"FILE_NAME", "FILE_FORMAT_VERSION", "LOGICAL_FILE_ID", "FILE_TIME_SPAN"}
RECOMPUTED = {"SIZES", "VALUE_TYPE", "DATA", "archive_name", "bounds"}
REFERENCES = re.compile(r"^(DEPEND_\d+|DELTA_PLUS|DELTA_MINUS|LABEL_\d+|REPRESENTATION_\d+|LABL_PTR_\d+)$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
CEFLIB_LIMITS = {"variables": 100, "meta": 100, "sizes": 5, "value_bytes": 1023, "line_bytes": (1 << 20) - 1}
"""The most CESR CEFLIB 1.8.5 takes: variables and metadata blocks in a file (``MAX_VARS``, ``MAX_META`` in
C/src/CEF.c), sizes of a record's value (``MAX_SIZES``, C/inc/CEF.h), bytes of one value or attribute entry
(``STR_SIZE`` - 1, C/src/CEF.c), bytes of one line with its newline (the read buffer, ``BUF_SIZE`` in
LIB/src/ZZLIB.c)."""
ESSENTIAL_META = {"MISSION", "OBSERVATORY", "INSTRUMENT_NAME", "DATASET_ID", "DATASET_TITLE", "DATASET_VERSION",
                  "VERSION_NUMBER", "ACKNOWLEDGEMENT", "LOGICAL_FILE_ID", "FILE_TIME_SPAN", "DATASET_CAVEATS",
                  "CAVEATS", "MISSION_CAVEATS", "INSTRUMENT_CAVEATS"}
"""Metadata kept first when a dataset has more global attributes than CEFLIB reads."""
FITS_LAYOUT = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "CHECKSUM", "DATASUM"}
"""FITS keywords that describe the FITS file's own layout, not the data: left out first."""
ONE_RECORD_AXIS = "CEF holds one record axis"
TOO_LONG = f"CEFLIB reads entries of at most {CEFLIB_LIMITS['value_bytes']} bytes"
_FILLS = {"INT": -2147483648, "BYTE": -128, "FLOAT": -1.0e31, "DOUBLE": -1.0e31, "ISO_TIME": "9999-12-31T23:59:59Z",
          "ISO_TIME_RANGE": "9999-12-31T23:59:59Z/9999-12-31T23:59:59Z", "CHAR": ""}


def _quoted(text: str) -> str:
    text = text.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return '"' + text.replace('"', "'") + '"'


class _Bare(str):
    """A metadata entry written as it is, unquoted (the reader then types it as the archive's file did)."""


def _value_text(value: Any, reference: bool = False) -> str:
    if isinstance(value, _Bare):
        return str(value)
    if isinstance(value, bool | np.bool_):
        return _quoted(str(bool(value)))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, np.datetime64):
        return f"{np.datetime_as_string(value, unit='ns')}Z"
    text = str(value)
    return text if reference and _NAME.match(text) else _quoted(text)


def _value_type(name: str, values: np.ndarray) -> str:
    kind = values.dtype.kind
    if kind == "M":
        return "ISO_TIME_RANGE" if values.ndim == 2 and values.shape[-1] == 2 and name != "time" else "ISO_TIME"
    if kind == "f":
        return "DOUBLE" if values.dtype.itemsize > 4 else "FLOAT"
    if values.dtype == np.int8:
        return "BYTE"
    if kind in "iub":
        if values.size and kind != "b":
            low, high = int(values.min()), int(values.max())
            if low < -(2 ** 31) or high >= 2 ** 31:
                raise ExportError(f"{name} holds integers from {low} to {high}: CEF's INT holds 32 bits; export "
                                  "it as CDF or NetCDF")
        return "INT"
    return "CHAR"


def _time_unit(values: np.ndarray) -> str:
    ticks = values[~np.isnat(values)].astype("int64")
    for unit, step in (("ms", 1_000_000), ("us", 1_000)):
        if not (ticks % step).any():
            return unit
    return "ns"


def _texts(values: np.ndarray, value_type: str, fill: Any) -> np.ndarray:
    """Each value as the text a record holds; fill values as ``fill``."""
    if value_type == "ISO_TIME_RANGE":
        starts, ends = _texts(values[..., 0], "ISO_TIME", None), _texts(values[..., 1], "ISO_TIME", None)
        out = np.char.add(np.char.add(starts, "/"), ends)
        missing = np.isnat(values).any(axis=-1)
    elif value_type == "ISO_TIME":
        out = np.char.add(np.datetime_as_string(values, unit=_time_unit(values)), "Z")
        missing = np.isnat(values)
    elif value_type == "CHAR":
        return np.array([_quoted("" if v is None else str(v)) for v in values.ravel().tolist()],
                        dtype=object).reshape(values.shape)
    elif values.dtype.kind == "f":
        out = values.astype(str)
        missing = np.isnan(values)
        if missing.any():
            fills = np.broadcast_to(np.asarray(fill, dtype=values.dtype), values.shape[-1:] if values.ndim > 1
                                    and np.ndim(fill) else ())
            out = np.where(missing, np.broadcast_to(fills.astype(str), values.shape), out)
        return out
    else:
        return values.astype(np.int64 if values.dtype.kind == "b" else values.dtype).astype(str)
    if missing.any():
        out = np.where(missing, str(fill), out)
    return out


class _Plan:
    """What goes where: the time variable, the record variables in order, the fixed ones, and what is left out."""

    def __init__(self, ds: xr.Dataset, dataset_id: str) -> None:
        self.ds = ds
        time = ds["time"] if "time" in ds.variables else None
        bounds = time.attrs.get("bounds") if time is not None else None
        self.time = bounds if isinstance(bounds, str) and bounds in ds.variables else "time"
        archive_name = time.attrs.get("archive_name") if time is not None else None
        self.time_name = self.time if self.time != "time" else \
            str(archive_name) if archive_name else f"time_tags__{dataset_id}"
        self.labels: dict[str, dict[str, str]] = {}
        for name, variable in ds.variables.items():
            for key, value in variable.attrs.items():
                label = ds.variables.get(value) if isinstance(value, str) and value == f"{name}_{key}" else None
                if label is not None and label.ndim == 1 and label.dtype.kind == "O" and re.match(
                        r"^(LABEL|REPRESENTATION)_\d+$", key):
                    self.labels.setdefault(str(name), {})[key] = value
        label_variables = {v for keys in self.labels.values() for v in keys.values()}
        self.bins = {str(v.attrs[key]) for v in ds.variables.values() for key in ("DELTA_PLUS", "DELTA_MINUS")
                     if isinstance(v.attrs.get(key), str)}
        """Variables that are other variables' bin widths: their dimensions are named after those variables."""
        time_axes = {str(d) for d in ds.dims if d in ds.variables and ds[d].dtype.kind == "M"}
        self.records: list[str] = []
        self.fixed: list[str] = []
        self.left_out: dict[str, list[str]] = {}
        """Variables left out, by the reason why."""
        self.attributes_left_out: dict[str, list[str]] = {}
        """Attributes left out (``KEY`` global, ``variable.KEY``), by the reason why."""
        for name, variable in ds.variables.items():
            name = str(name)
            if name in label_variables or name in (self.time, "time"):
                continue
            if name in ds.dims and name not in ds.data_vars and not variable.attrs:
                continue  # an index xarray made for a dimension
            if variable.dims[:1] and variable.dims[0] in time_axes and variable.dims[0] != "time":
                self._leave_out(name, ONE_RECORD_AXIS)
            elif (variable.ndim - (variable.dims[:1] == ("time",))) > CEFLIB_LIMITS["sizes"]:
                self._leave_out(name, f"CEFLIB reads at most {CEFLIB_LIMITS['sizes']} sizes a value")
            elif 3 * int(np.prod(variable.shape[variable.dims[:1] == ("time",):])) > CEFLIB_LIMITS["line_bytes"]:
                self._leave_out(name, f"CEFLIB reads lines of at most {CEFLIB_LIMITS['line_bytes']:,} bytes, and a "
                                "value's text and comma take at least 3")
            elif variable.dtype.kind in "OUS" and _longest_text(variable) > CEFLIB_LIMITS["value_bytes"]:
                self._leave_out(name, f"CEFLIB reads text values of at most {CEFLIB_LIMITS['value_bytes']} bytes")
            elif variable.dims[:1] == ("time",):
                self.records.append(name)
            else:
                self.fixed.append(name)
        room = CEFLIB_LIMITS["variables"] - 1  # the time tags are one
        for name in (self.records + self.fixed)[room:]:
            self.records = [n for n in self.records if n != name]
            self.fixed = [n for n in self.fixed if n != name]
            self._leave_out(name, f"CEFLIB reads at most {CEFLIB_LIMITS['variables']} variables a file")

    def _leave_out(self, name: str, reason: str) -> None:
        self.left_out.setdefault(reason, []).append(name)

    def written_name(self, name: str) -> str:
        return self.time_name if name in (self.time, "time") else name


def _longest_text(variable: xr.Variable) -> int:
    """The bytes of a text variable's longest value as a record holds it (all its values are read)."""
    values = variable.values.ravel().tolist()
    return max((len(_quoted("" if v is None else str(v)).encode()) - 2 for v in values), default=0)


def _fits(entries: list[str]) -> bool:
    return all(len(e.encode()) - (2 if e[:1] in ('"', "'") else 0) <= CEFLIB_LIMITS["value_bytes"] for e in entries)


def _attribute_lines(plan: _Plan, name: str, variable: xr.Variable, value_type: str, shape: tuple[int, ...],
                     fill: Any) -> list[str]:
    derived = cf_attrs({k: v for k, v in variable.attrs.items() if k not in ("units", "long_name", "description")},
                       is_time=value_type.startswith("ISO_TIME"))
    lines = [f"  SIZES = {', '.join(map(str, shape)) or '1'}", f"  VALUE_TYPE = {value_type}",
             f"  FILLVAL = {_fill_text(fill, value_type)}"]
    labels = plan.labels.get(name, {})
    attrs = dict(variable.attrs)
    if variable.dims[:1] == ("time",) and name not in (plan.time, "time") and "DEPEND_0" in attrs:
        attrs["DEPEND_0"] = plan.time_name
    offset = 1 if variable.dims[:1] == ("time",) else 0
    for axis, dim in enumerate(variable.dims[offset:], start=1):
        if dim in plan.ds.variables and dim != name and plan.ds[dim].ndim == 1 and name not in plan.bins:
            attrs.setdefault(f"DEPEND_{axis}", dim)  # a dimension named by its coordinate, as DEPEND_i names it
    for key, value in attrs.items():
        if key in RECOMPUTED or key == "FILLVAL" or not _NAME.match(key) or \
                (key in ("units", "long_name", "description") and derived.get(key) == value):
            continue
        if key in labels:
            entries = [_quoted(str(v)) for v in plan.ds[labels[key]].values.tolist()]
        else:
            reference = bool(REFERENCES.match(key)) and isinstance(value, str) and \
                (value in plan.ds.variables or value == plan.time_name)
            items = value if isinstance(value, list | tuple) else attribute_entries(value)
            entries = [_value_text(plan.written_name(v) if reference else v, reference) for v in items]
        if not _fits(entries):
            plan.attributes_left_out.setdefault(TOO_LONG, []).append(f"{name}.{key}")
            continue
        lines.append(f"  {key} = {', '.join(entries) or _quoted('')}")
    return lines


def _fill_of(variable: xr.Variable, value_type: str) -> Any:
    fill = variable.attrs.get("FILLVAL")
    if fill is None or (isinstance(fill, str) and value_type in ("FLOAT", "DOUBLE", "INT", "BYTE")):
        return _FILLS[value_type]
    return fill


def _fill_text(fill: Any, value_type: str) -> str:
    if isinstance(fill, list | tuple):
        return ", ".join(_fill_text(f, value_type) for f in fill)
    if value_type.startswith("ISO_TIME") or value_type == "CHAR":
        return str(fill) if value_type != "CHAR" else _quoted(str(fill))
    return _value_text(fill)


def _header(plan: _Plan, name: str) -> tuple[list[str], dict[str, tuple[str, Any]]]:
    ds = plan.ds
    lines = ["!---- CEF written by heliohub from its archive store ----", f'FILE_NAME = "{name}"',
             'FILE_FORMAT_VERSION = "CEF-2.0"', ""]
    present = {str(k).upper(): str(k) for k in ds.attrs if k not in NORMALISED}
    meta: dict[str, Any] = {}
    for key, value in ds.attrs.items():
        key = str(key)
        if key in NORMALISED:
            cef_name = NORMALISED[key]
            if cef_name and cef_name not in present:
                meta[cef_name] = value
            elif cef_name and isinstance(ds.attrs[present[cef_name]], int | float) and str(value) != str(
                    ds.attrs[present[cef_name]]):
                meta[present[cef_name]] = _Bare(str(value))  # a number the archive wrote with leading zeros
        elif key not in NOT_EXPORTED and key.upper() not in DESCRIBE_THIS_FILE and _NAME.match(key) and \
                attribute_entries(value) not in ([""], ["[]"]) and key not in meta:
            meta[key] = value
    meta["LOGICAL_FILE_ID"] = re.sub(r"\.cef(\.gz)?$", "", name)
    times = ds[plan.time].values if plan.time in ds.variables else np.empty(0, "datetime64[ns]")
    times = times[~np.isnat(times)]
    if times.size:
        first, last = (np.datetime_as_string(t, "ms") for t in (times.min(), times.max()))
        meta["FILE_TIME_SPAN"] = f"{first}Z/{last}Z"
    blocks: dict[str, list[str]] = {}
    for key, value in meta.items():
        if key == "FILE_TIME_SPAN":
            blocks[key] = ["  VALUE_TYPE = ISO_TIME_RANGE", f"  ENTRY = {value}"]
            continue
        entries = [_value_text(entry) for entry in ([value] if isinstance(value, _Bare) else attribute_entries(value))]
        if _fits(entries):
            blocks[key] = [f"  ENTRY = {entry}" for entry in entries]
        else:
            plan.attributes_left_out.setdefault(TOO_LONG, []).append(key)
    ranked = sorted(blocks, key=lambda k: (k.upper() not in ESSENTIAL_META, k.upper() in FITS_LAYOUT))
    kept = set(ranked[:CEFLIB_LIMITS["meta"]])
    if len(kept) < len(blocks):
        plan.attributes_left_out.setdefault(f"CEFLIB reads at most {CEFLIB_LIMITS['meta']} metadata blocks",
                                            []).extend(k for k in ranked if k not in kept)
    for key in (k for k in blocks if k in kept):
        lines.extend([f"START_META = {key}", *blocks[key], f"END_META = {key}"])
    lines.append("")
    columns: dict[str, tuple[str, Any]] = {}
    for variable_name in [plan.time, *plan.records, *plan.fixed]:
        if variable_name not in ds.variables:
            continue
        variable = ds[variable_name].variable
        values = variable.values if variable_name in plan.fixed else variable[:0].values
        value_type = _value_type(variable_name, variable.values if variable_name in plan.fixed else
                                 _sample(variable))
        shape = variable.shape[1:] if variable_name not in plan.fixed else variable.shape
        if value_type == "ISO_TIME_RANGE":
            shape = shape[:-1]
        fill = _fill_of(variable, value_type)
        written = plan.written_name(variable_name)
        lines.append(f"START_VARIABLE = {written}")
        lines.extend(_attribute_lines(plan, variable_name, variable, value_type, shape, fill))
        if variable_name in plan.fixed:
            data = _texts(values, value_type, fill).ravel().tolist()
            lines.append(f"  DATA = {', '.join(data)}")
        else:
            columns[variable_name] = (value_type, fill)
        lines.append(f"END_VARIABLE = {written}")
        lines.append("")
    for what, left_out in (("", plan.left_out), ("attributes ", plan.attributes_left_out)):
        lines.extend(f"! {what}left out ({reason}): {', '.join(names)}" for reason, names in left_out.items())
    lines.append('DATA_UNTIL = "END_OF_DATA"')
    return lines, columns


def _sample(variable: xr.Variable) -> np.ndarray:
    """The values a variable's CEF type is chosen from: all of them for integers wider than CEF's INT (their range
    decides), none for the rest (the dtype decides, and nothing is read before the records are)."""
    wide = variable.dtype.kind in "iu" and np.iinfo(variable.dtype).max > np.iinfo(np.int32).max
    return variable.values if wide else variable[:0].values


def cef_blocks(ds: xr.Dataset, name: str, records_per_block: int = RECORDS_PER_BLOCK) -> Iterator[bytes]:
    """The CEF file ``name`` holding ``ds``, as blocks of bytes (the header, then records a block at a time)."""
    dataset_id = str(ds.attrs.get("dataset_id") or name.split("__")[0])
    plan = _Plan(ds, dataset_id)
    lines, columns = _header(plan, name)
    for what, left_out in (("", plan.left_out), ("attributes ", plan.attributes_left_out)):
        for reason, names in left_out.items():
            message = (f"{dataset_id}: {reason}; {what}left out of {name}: {', '.join(names)} "
                       "(export as CDF or NetCDF to keep them)")
            log.warning(message)
            warnings.warn(message, HeliohubWarning, stacklevel=2)
    yield ("\n".join(lines) + "\n").encode()
    count = ds.sizes.get("time", 0) if columns else 0
    for first in range(0, count, records_per_block):
        block = ds.isel(time=slice(first, first + records_per_block))
        fields = []
        for variable_name, (value_type, fill) in columns.items():
            values = block[variable_name].values
            texts = _texts(values, value_type, fill)
            fields.append(texts.reshape(len(texts), -1) if value_type != "ISO_TIME_RANGE" or texts.ndim > 1
                          else texts.reshape(-1, 1))
        rows = np.concatenate([f.astype(object) for f in fields], axis=1)
        text = ("".join(", ".join(row) + "\n" for row in rows.tolist())).encode()
        _check_lines(text, block, dataset_id)
        yield text
    yield f"!RECORDS= {count}\nEND_OF_DATA\n".encode()


def _check_lines(text: bytes, block: xr.Dataset, dataset_id: str) -> None:
    if len(text) <= CEFLIB_LIMITS["line_bytes"]:
        return
    start = 0
    for index, end in enumerate(_line_ends(text)):
        if end + 1 - start > CEFLIB_LIMITS["line_bytes"]:
            raise ExportError(f"{dataset_id}: the record of {block['time'].values[index]} takes {end + 1 - start:,} "
                              f"bytes of text, past the {CEFLIB_LIMITS['line_bytes']:,} of a line CEFLIB reads; "
                              "export it as CDF or NetCDF")
        start = end + 1


def _line_ends(text: bytes) -> Iterator[int]:
    end = text.find(b"\n")
    while end >= 0:
        yield end
        end = text.find(b"\n", end + 1)


def write_cef(ds: xr.Dataset, path: Path, name: str) -> None:
    """``ds`` as the CEF file ``name`` at ``path``."""
    with open(path, "wb") as out:
        for block in cef_blocks(ds, name):
            out.write(block)
