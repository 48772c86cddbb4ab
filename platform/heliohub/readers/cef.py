"""CEF-2.0 (Cluster Exchange Format): the Cluster Science Archive's ASCII deliveries."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import xarray as xr

from ..errors import FileReadError
from ..raw_files import RawFile
from .assemble import RawVariable, assemble, to_attr
from .cef_header import Header, Value, Variable, parse_header
from .cef_records import fill_text, numpy_dtype, parse_records, parse_times

_CEF_KEYWORD = re.compile(
    rb"^[ \t]*(FILE_FORMAT_VERSION|START_META|START_VARIABLE|INCLUDE|DATA_UNTIL|END_OF_RECORD_MARKER)[ \t]*=",
    re.MULTILINE | re.IGNORECASE,
)
_LABEL_KEYS = re.compile(r"^(LABEL|REPRESENTATION)_(\d+)$")
_DEPEND_KEY = re.compile(r"^DEPEND_(\d+)$")


class CefReader:
    """Reads CEF-2.0 files (plain or gzipped), resolving INCLUDEs through a search path."""

    name = "CEF-2.0"

    def can_read(self, raw_file: RawFile) -> bool:
        """A CEF file is text whose first 64 KiB hold a CEF header keyword at the start of a line."""
        head = raw_file.data[:65536]
        return b"\x00" not in head and _CEF_KEYWORD.search(head) is not None

    def read(self, raw_file: RawFile, *, include_paths: list[str] | None = None) -> xr.Dataset:
        header = parse_header(raw_file.path, raw_file.data, include_paths)
        records = parse_records(header, raw_file.data)
        names = {v.name for v in header.variables}
        raw: list[RawVariable] = []
        for var in header.variables:
            raw.extend(_raw_variables(var, records.get(var.name), names, header.path))
        return assemble(raw, _global_attrs(header), _normalised(header, raw_file))


def _scalar(value: Value, kind: str | None = None) -> Any:
    """A metadata value typed by VALUE_TYPE when given, else: quoted text stays text, bare numbers are numbers."""
    if value.quoted or kind in ("CHAR", "ISO_TIME", "ISO_TIME_RANGE"):
        return value.text
    if kind in ("INT", "BYTE"):
        return int(value.text)
    if kind in ("FLOAT", "DOUBLE"):
        return float(value.text)
    for convert in (int, float):
        try:
            return convert(value.text)
        except ValueError:
            pass
    return value.text


def _attr(values: list[Value], kind: str | None = None) -> Any:
    return to_attr([_scalar(v, kind) for v in values])


def _raw_variables(var: Variable, values: np.ndarray | None, names: set[str], path: str) -> list[RawVariable]:
    kind = var.value_type
    attrs: dict[str, Any] = {}
    extra: list[RawVariable] = []
    labels: list[tuple[int, str]] = []
    depends: dict[int, str] = {}
    deltas: list[str] = []
    for key, items in var.attrs.items():
        if key == "DATA":
            continue
        if key == "FILLVAL":
            attrs[key] = _fill(var, items, path) if kind in ("FLOAT", "DOUBLE", "INT", "BYTE") else items[0].text
            continue
        label = _LABEL_KEYS.match(key)
        if label and len(items) > 1:
            # As the archive does when it writes CDF: a label list becomes a variable <name>_<KEY>.
            label_name = f"{var.name}_{key}"
            extra.append(RawVariable(label_name, np.array([v.text for v in items], dtype=object), False,
                                     {"PARAMETER_TYPE": "Support_Data"}))
            attrs[key] = label_name
            labels.append((int(label.group(2)), label_name))
            continue
        depend = _DEPEND_KEY.match(key)
        if depend and int(depend.group(1)) >= 1:
            depends[int(depend.group(1))] = items[0].text
        if key in ("DELTA_PLUS", "DELTA_MINUS") and len(items) == 1 and items[0].text in names:
            deltas.append(items[0].text)
            attrs[key] = items[0].text
            continue
        attrs[key] = _attr(items)
    fill = attrs.get("FILLVAL") if kind in ("FLOAT", "DOUBLE", "INT", "BYTE") else None
    if values is None:
        values = _constant(var, path)
    return [RawVariable(var.name, values, var.constant is None, attrs, fill=fill,
                        depend_0=attrs.get("DEPEND_0") if isinstance(attrs.get("DEPEND_0"), str) else None,
                        depends=depends, labels=labels, deltas=tuple(deltas)), *extra]


def _fill(var: Variable, items: list[Value], path: str) -> Any:
    """A numeric variable's FILLVAL: one value, or one per component (as CEF allows for any attribute)."""
    if len(items) not in (1, var.n_fields):
        raise FileReadError(path, f"FILLVAL has {len(items)} values; SIZES {' '.join(map(str, var.shape)) or '1'} "
                            f"needs one, or one per component ({var.n_fields})", line=var.line, variable=var.name)
    try:
        return _attr(items, var.value_type)
    except ValueError:
        raise FileReadError(path, f"FILLVAL {', '.join(v.text for v in items)} is not {var.value_type}",
                            line=var.line, variable=var.name) from None


def _constant(var: Variable, path: str) -> np.ndarray:
    """The ``DATA = ...`` values of a variable that does not vary by record, shaped by SIZES."""
    items = var.constant or []
    if len(items) != var.n_fields:
        raise FileReadError(path, f"DATA has {len(items)} values but SIZES needs {var.n_fields}",
                            line=var.line, variable=var.name)
    kind = var.value_type
    texts = np.array([v.text for v in items], dtype=object)
    try:
        if kind == "ISO_TIME":
            values = parse_times(texts, fill_text(var))
        elif kind in ("CHAR", "ISO_TIME_RANGE"):
            values = texts
        elif kind in ("FLOAT", "DOUBLE"):
            values = texts.astype(np.float64).astype(numpy_dtype(kind))
        else:
            values = texts.astype(np.int64)
            limits = np.iinfo(numpy_dtype(kind))
            if values.size and (values.min() < limits.min or values.max() > limits.max):
                raise FileReadError(path, f"DATA has a value out of the range of {kind} ({limits.min} to "
                                    f"{limits.max})", line=var.line, variable=var.name)
            values = values.astype(numpy_dtype(kind))
    except (ValueError, OverflowError) as error:
        raise FileReadError(path, f"DATA does not parse as {kind}: {error}", line=var.line,
                            variable=var.name) from error
    return values.reshape(var.shape)


def _global_attrs(header: Header) -> dict[str, Any]:
    return {name: _attr(entries, header.meta_types.get(name)) for name, entries in header.meta.items()
            if entries}


def _entry_text(header: Header, name: str, joiner: str = " ") -> str | None:
    values = header.meta_value(name)
    if not values:
        return None
    text = joiner.join(v.text.strip() for v in values if v.text.strip())
    return text or None


def _normalised(header: Header, raw_file: RawFile) -> dict[str, Any]:
    return {
        "dataset_id": _entry_text(header, "DATASET_ID"),
        "mission": _entry_text(header, "MISSION"),
        "observatory": _entry_text(header, "OBSERVATORY"),
        "instrument": _entry_text(header, "INSTRUMENT_NAME") or _entry_text(header, "EXPERIMENT"),
        "dataset_version": _entry_text(header, "DATASET_VERSION"),
        "file_version": _entry_text(header, "VERSION_NUMBER"),
        "logical_file_id": _entry_text(header, "LOGICAL_FILE_ID"),
        "title": _entry_text(header, "DATASET_TITLE"),
        "acknowledgement": _entry_text(header, "ACKNOWLEDGEMENT"),
        "source_file": raw_file.name,
        "source_format": "CEF-2.0",
    }
