"""CDF: the Cluster Science Archive's CDF deliveries and ISTP CDFs (Solar Orbiter, Ulysses, ...).

Decoding is pycdfpp's (compressed files, row and column majority, CDF_EPOCH, CDF_EPOCH16 and TT2000 with leap
seconds); this module maps what it decodes onto heliohub's convention.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np
import pycdfpp
import xarray as xr

from ..errors import DAMAGED_FILE_HINT, FileReadError, ReaderWarning
from ..raw_files import RawFile
from .assemble import RawVariable, assemble, fill_values, to_attr
from .cdf_structure import V2_MAGICS, V3_MAGIC, CdfStructureError, checked_cdf

_MAGIC = (V3_MAGIC, *V2_MAGICS)
_TIME_TYPES = {pycdfpp.DataType.CDF_EPOCH, pycdfpp.DataType.CDF_EPOCH16, pycdfpp.DataType.CDF_TIME_TT2000}
_TIME_SCALARS = (pycdfpp.tt2000_t, pycdfpp.epoch, pycdfpp.epoch16)
_LABEL_KEY = re.compile(r"^(?:LABL_PTR|LABEL|REPRESENTATION)_(\d+)$")
_DEPEND_KEY = re.compile(r"^DEPEND_(\d+)$")


class CdfReader:
    """Reads CDF files (versions 2.5 to 3.x, compressed or not) through pycdfpp."""

    name = "CDF"

    def can_read(self, raw_file: RawFile) -> bool:
        """A CDF starts with one of the format's magic numbers."""
        return raw_file.data[:4] in _MAGIC

    def read(self, raw_file: RawFile, *, include_paths: list[str] | None = None) -> xr.Dataset:
        try:
            data = checked_cdf(raw_file.data)
        except CdfStructureError as error:
            raise FileReadError(raw_file.path, f"corrupt or truncated CDF: {error}", hint=DAMAGED_FILE_HINT) from None
        # decoded whole here: lazily loaded values keep the file's bytes alive as long as any array of the
        # dataset (twice the memory: 828 MB held for a year of 1 MB daily FGM files, 448 MB so), and are no
        # faster to read
        try:
            cdf = pycdfpp.load(data, lazy_load=False)
        except (RuntimeError, ValueError) as error:  # what pycdfpp raises on what it cannot decode
            raise FileReadError(raw_file.path, f"pycdfpp cannot decode it ({error})", hint=DAMAGED_FILE_HINT) from error
        del data  # a GZIP-compressed file's decompressed bytes: freed before the values are decoded
        if cdf is None:
            raise FileReadError(raw_file.path, "pycdfpp cannot decode it", hint=DAMAGED_FILE_HINT)
        variable = None
        try:
            names = {name for name, _ in cdf.items()}
            raw = []
            for variable, content in cdf.items():
                raw.append(_raw_variable(variable, content, names, raw_file.path))
            variable = None
            global_attrs = {name: _attribute_value(list(attr)) for name, attr in cdf.attributes.items()}
        # pycdfpp decodes values and attributes as they are asked for: damaged ones raise here, damaged names and
        # text as UnicodeDecodeError (a ValueError)
        except (RuntimeError, ValueError) as error:
            raise FileReadError(raw_file.path, f"pycdfpp cannot decode its values ({error})", variable=variable,
                                hint=DAMAGED_FILE_HINT) from error
        return assemble(raw, global_attrs, _normalised(global_attrs, raw_file))


def _attribute_value(value: Any) -> Any:
    """An attribute value as :func:`~.assemble.to_attr` gives it, most (text, numbers) without its conversions."""
    kind = type(value)
    if kind is str or kind is int:
        return value
    if kind is list:
        items = [v if type(v) is str or type(v) is int else _attribute_value(v) for v in value]
        return items[0] if len(items) == 1 else items
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if isinstance(value, _TIME_SCALARS):
        return str(value)  # ISO text of the literal value: to_datetime64 would turn fill values into NaT
    return to_attr(value)


def _values(variable: pycdfpp.Variable) -> np.ndarray:
    kind = variable.type
    if kind in _TIME_TYPES:
        return pycdfpp.to_datetime64(variable).astype("datetime64[ns]", copy=False)
    if kind in (pycdfpp.DataType.CDF_CHAR, pycdfpp.DataType.CDF_UCHAR):
        # decoded here: pycdfpp's values_encoded costs twice its bytes, and bad UTF-8 raises the same ValueError
        values = np.asarray(variable.values)
        text = np.empty(values.shape, dtype=object)
        text.ravel()[:] = [item.decode().rstrip("\x00 ") for item in values.ravel().tolist()]
        return text
    return np.asarray(variable.values)


def _raw_variable(name: str, variable: pycdfpp.Variable, names: set[str], path: str) -> RawVariable:
    attrs = {key: _attribute_value(attr.value) for key, attr in variable.attributes.items()}
    values = _values(variable)
    record_varying = not variable.is_nrv
    if not record_varying:
        record_shape = values.shape[1:]
        values = _absent(variable, record_shape) if values.shape[0] == 0 else values[0]
    fill = attrs.get("FILLVAL")
    if fill is not None and values.dtype.kind == "f" and fill_values(fill, values.shape[1:] if record_varying
                                                                      else values.shape, values.dtype) is None:
        warnings.warn(ReaderWarning(f"{path}, variable {name}: FILLVAL {fill!r} is neither one value nor one per "
                                    "component; its fill values are not masked"), stacklevel=2)
        fill = None
    depends: dict[int, str] = {}
    labels: list[tuple[int, str]] = []
    for key, value in attrs.items():
        if not isinstance(value, str) or value not in names:
            continue
        if match := _DEPEND_KEY.match(key):
            if int(match.group(1)) >= 1:
                depends[int(match.group(1))] = value
        elif match := _LABEL_KEY.match(key):
            labels.append((int(match.group(1)), value))
    deltas = tuple(v for k, v in attrs.items()
                   if k in ("DELTA_PLUS", "DELTA_MINUS", "DELTA_PLUS_VAR", "DELTA_MINUS_VAR")
                   and isinstance(v, str) and v in names)
    depend_0 = attrs.get("DEPEND_0") if isinstance(attrs.get("DEPEND_0"), str) else None
    return RawVariable(name, values, record_varying, attrs, fill=None if values.dtype.kind == "M" else fill,
                       depend_0=depend_0, depends=depends, labels=labels, deltas=tuple(dict.fromkeys(deltas)))


def _absent(variable: pycdfpp.Variable, shape: tuple[int, ...]) -> np.ndarray:
    """A non-record-varying variable with no record written (a master CDF): what CDF reads back is pad."""
    kind = variable.type
    if kind in (pycdfpp.DataType.CDF_CHAR, pycdfpp.DataType.CDF_UCHAR):
        return np.full(shape, "", dtype=object)
    if kind in _TIME_TYPES:
        return np.full(shape, np.datetime64("NaT", "ns"))
    dtype = np.asarray(variable.values).dtype
    if dtype.kind == "f":
        return np.full(shape, np.nan, dtype=dtype)
    return np.zeros(shape, dtype=dtype)


def _first(upper: dict[str, Any], *names: str) -> str | None:
    """The first of the global attributes ``names`` (upper case; ``upper`` is keyed so) that has text."""
    for name in names:
        value = upper.get(name)
        if isinstance(value, list):
            value = " ".join(str(v).strip() for v in value if str(v).strip())
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _long(value: str | None) -> str | None:
    """ISTP writes 'SHORT>Long name': keep the long name."""
    return value.split(">", 1)[-1].strip() if value else None


def _short(value: str | None) -> str | None:
    return value.split(">", 1)[0].strip() if value else None


def _normalised(attrs: dict[str, Any], raw_file: RawFile) -> dict[str, Any]:
    upper = {key.upper(): value for key, value in attrs.items()}
    source_name = _long(_first(upper, "SOURCE_NAME"))
    return {
        "dataset_id": _first(upper, "DATASET_ID", "LOGICAL_SOURCE"),
        "mission": _first(upper, "MISSION", "MISSION_GROUP") or source_name,
        "observatory": _first(upper, "OBSERVATORY") or source_name,
        "instrument": _first(upper, "INSTRUMENT_NAME", "EXPERIMENT") or _short(_first(upper, "DESCRIPTOR")),
        "dataset_version": _first(upper, "DATASET_VERSION", "DATA_VERSION"),
        "file_version": _first(upper, "VERSION_NUMBER", "DATA_VERSION"),
        "logical_file_id": _first(upper, "LOGICAL_FILE_ID"),
        "title": _first(upper, "DATASET_TITLE", "LOGICAL_SOURCE_DESCRIPTION"),
        "acknowledgement": _first(upper, "ACKNOWLEDGEMENT"),
        "source_file": raw_file.name,
        "source_format": "CDF",
    }
