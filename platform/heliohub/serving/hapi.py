"""The archive store as a HAPI 3.1 server sees it (https://github.com/hapi-server/data-specification, version 3.1.0):
the JSON of ``capabilities``, ``about``, ``catalog`` and ``info``, and the ``data`` stream in CSV or binary, read
from the store block by block so that memory stays flat whatever the range. No web framework here:
:mod:`heliohub.serving.server` puts this on HTTP.

How a stored dataset becomes a HAPI dataset:

* the primary time parameter is ``Time``, the store's ``time`` axis, written to the nanosecond
  (``YYYY-MM-DDTHH:MM:SS.fffffffffZ``, length 30) so that times are exactly the stored ones;
* each variable along ``time`` is a parameter under its stored name: floating point as ``double`` (fill ``NaN``:
  the readers store fill values as NaN), integers that fit in four bytes as ``integer`` (fill from the variable's
  ``FILLVAL``), wider integers as ``double``, times as ``isotime``; other dimensions give ``size``, and a dimension
  with a numeric coordinate of its own gives ``bins`` centres (spectrograms);
* text variables (their length is not known without reading them all) and variables along another time axis are
  not served; ``x_heliohub_not_served`` in ``info`` names them.

An empty ``parameters=`` is taken as all parameters, as hapiclient sends it for "all".
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DatasetNotFoundError, HeliohubError
from ..store.access import open_dataset, search
from ..store.location import StoreLocation

log = logging.getLogger(__name__)

HAPI_VERSION = "3.1"
TIME_LENGTH = 30
BLOCK_BYTES = 8 << 20
"""A data stream is read and written in blocks of about this many bytes of binary records."""

STATUS = {
    1200: "OK", 1201: "OK - no data for time range", 1400: "Bad request - user input error",
    1401: "Bad request - unknown API parameter name", 1402: "Bad request - error in start time",
    1403: "Bad request - error in stop time", 1404: "Bad request - start time equal to or after stop time",
    1405: "Bad request - time outside valid range", 1406: "Bad request - unknown dataset id",
    1407: "Bad request - unknown dataset parameter", 1408: "Bad request - too much time or data requested",
    1409: "Bad request - unsupported output format", 1410: "Bad request - unsupported include value",
    1411: "Bad request - out-of-order or duplicate parameters", 1500: "Internal server error",
}
"""HAPI 3.1 section 4.2, with 1411 from section 8.3."""

_ENDPOINT_PARAMETERS = {
    "info": {"dataset", "id", "parameters"},
    "data": {"dataset", "id", "start", "stop", "time.min", "time.max", "parameters", "include", "format"},
}
_HAPI_TIME = re.compile(r"^\d{4}(-\d{2}(-\d{2})?|-\d{3})?(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?Z?$")


class HapiError(Exception):
    """A request the server answers with a HAPI error status (``code``), and why."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{STATUS[code]}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def http_status(self) -> int:
        return 404 if self.code in (1406, 1407) else 500 if self.code >= 1500 else 400


def status(code: int = 1200, detail: str | None = None) -> dict[str, Any]:
    """A HAPI response's ``HAPI`` and ``status`` members."""
    return {"HAPI": HAPI_VERSION, "status": {"code": code, "message": f"{STATUS[code]}: {detail}" if detail
                                             else STATUS[code]}}


@dataclass(frozen=True)
class Parameter:
    """One HAPI parameter and the stored variable it serves."""

    name: str
    variable: str | None
    """None for the primary time."""
    kind: str
    """``isotime``, ``double`` or ``integer``."""
    size: tuple[int, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def binary(self) -> tuple[Any, ...]:
        """This parameter's field in a binary record (numpy dtype spec)."""
        if self.kind == "isotime":
            return (self.name, f"S{TIME_LENGTH}", self.size) if self.size else (self.name, f"S{TIME_LENGTH}")
        code = "<f8" if self.kind == "double" else "<i4"
        return (self.name, code, self.size) if self.size else (self.name, code)

    @property
    def width(self) -> int:
        """Bytes per record in the binary format."""
        return np.dtype([self.binary]).itemsize

    def json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.kind, **({"length": TIME_LENGTH} if self.kind == "isotime" else {}),
                **({"size": list(self.size)} if self.size else {}), **self.metadata}


@dataclass(frozen=True)
class Described:
    """A dataset as HAPI describes it."""

    dataset_id: str
    start: np.datetime64
    stop: np.datetime64
    parameters: tuple[Parameter, ...]
    not_served: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class Limits:
    """What an operator lets one synchronous request take."""

    max_bytes: int = 1 << 30
    """The largest data stream, counted as binary records (the CSA's synchronous limit is 1 GB)."""


@dataclass
class DataAnswer:
    """A data request, checked: its header, format, record count, and the stream of its body."""

    header: dict[str, Any]
    format: str
    records: int
    include_header: bool
    blocks: Iterator[bytes]

    @property
    def code(self) -> int:
        return self.header["status"]["code"]


def hapi_time(value: np.datetime64 | pd.Timestamp) -> str:
    """A time as this server writes it (restricted ISO 8601, nanoseconds, trailing Z)."""
    return np.datetime_as_string(np.datetime64(value, "ns"), unit="ns") + "Z"


def parse_time(text: str, code: int) -> np.datetime64:
    """A HAPI request time (year-month-day or year-day-of-year, truncated or not, Z optional) as UTC."""
    if not _HAPI_TIME.match(text or ""):
        raise HapiError(code, f"{text!r} is not a HAPI time (use e.g. 2001-06-11T20:00:00Z or 2001-162T20:00Z)")
    body = text.rstrip("Z")
    day_of_year = re.match(r"^(\d{4})-(\d{3})(.*)$", body)
    try:
        if day_of_year:  # yyyy-ddd[Thh...]: the same instant as yyyy-mm-dd[Thh...]
            day = pd.Timestamp(day_of_year[1]) + pd.Timedelta(days=int(day_of_year[2]) - 1)
            if day.year != int(day_of_year[1]) or int(day_of_year[2]) < 1:
                raise ValueError(f"day {day_of_year[2]} is not in {day_of_year[1]}")
            body = f"{day:%Y-%m-%d}{day_of_year[3]}"
        stamp = pd.Timestamp(body)
    except (ValueError, OverflowError) as error:
        raise HapiError(code, f"{text!r} is not a valid time ({error})") from None
    return (stamp.tz_localize(None) if stamp.tzinfo else stamp).to_datetime64().astype("datetime64[ns]")


class HapiService:
    """The HAPI endpoints over one archive store."""

    def __init__(self, archive: str | StoreLocation | None = None, limits: Limits | None = None,
                 about: dict[str, str] | None = None) -> None:
        self.store = StoreLocation.resolve(archive)
        self.limits = limits or Limits()
        self._about = {"id": "heliohub", "title": "heliohub archive store",
                       "contact": "the operator of this heliohub platform",
                       "description": "ESA heliophysics archives (Cluster, SOHO, PROBA2, Ulysses, Solar Orbiter) "
                       "from a heliohub archive store", **(about or {})}

    # -- metadata ------------------------------------------------------------------------------------------------
    def capabilities(self) -> dict[str, Any]:
        return {**status(), "outputFormats": ["csv", "binary"]}

    def about(self) -> dict[str, Any]:
        return {**status(), **self._about}

    def _catalog(self) -> pd.DataFrame:
        """The store's catalog rows of datasets with records (HAPI describes a dataset by its first and last)."""
        frame = search(archive=self.store)
        return frame[(frame["records"].fillna(0) > 0) & frame["start"].notna() & frame["end"].notna()]

    def catalog(self) -> dict[str, Any]:
        frame = self._catalog()
        return {**status(), "catalog": [{"id": row.dataset_id, **({"title": row.title} if row.title else {})}
                                        for row in frame.itertuples()]}

    def describe(self, dataset_id: str) -> Described:
        frame = self._catalog()
        rows = frame[frame["dataset_id"] == dataset_id]
        if rows.empty:
            raise HapiError(1406, f"no dataset {dataset_id!r} with records in this archive (the catalog lists "
                                  "those it has)")
        row = rows.iloc[0]
        return _described(self.store, dataset_id, row["start"], row["end"], int(row["records"] or 0))

    def info(self, query: dict[str, str]) -> dict[str, Any]:
        _check_names(query, "info")
        described = self.describe(_dataset(query))
        return _header(described, _chosen(described, query.get("parameters")))

    # -- data ----------------------------------------------------------------------------------------------------
    def data(self, query: dict[str, str]) -> DataAnswer:
        _check_names(query, "data")
        described = self.describe(_dataset(query))
        start_text = query.get("start", query.get("time.min"))
        stop_text = query.get("stop", query.get("time.max"))
        if start_text is None:
            raise HapiError(1402, "start is required")
        if stop_text is None:
            raise HapiError(1403, "stop is required")
        start, stop = parse_time(start_text, 1402), parse_time(stop_text, 1403)
        if start >= stop:
            raise HapiError(1404, f"start {start_text} is not before stop {stop_text}")
        chosen = _chosen(described, query.get("parameters"))
        answer_format = query.get("format", "csv")
        if answer_format not in ("csv", "binary"):
            raise HapiError(1409, f"format {answer_format!r}: this server writes csv and binary")
        include = query.get("include")
        if include not in (None, "header"):
            raise HapiError(1410, f"include={include!r}: the only value is header")
        if stop <= described.start or start > described.stop:
            raise HapiError(1405, f"{described.dataset_id} has data from {hapi_time(described.start)} to "
                            f"{hapi_time(described.stop)}")
        variables = [p.variable for p in chosen if p.variable is not None]
        ds = open_dataset(described.dataset_id, start, stop, variables=variables or None, archive=self.store)
        times = ds["time"].values
        first, last = int(np.searchsorted(times, start, "left")), int(np.searchsorted(times, stop, "left"))
        records = max(0, last - first)
        width = sum(p.width for p in chosen)
        if records * width > self.limits.max_bytes:
            raise HapiError(1408, f"{records} records of {width} bytes is {records * width / 1e6:.0f} MB, more than "
                            f"this server's limit of {self.limits.max_bytes / 1e6:.0f} MB per request; ask for a "
                            "shorter range or fewer parameters")
        header = {**_header(described, chosen, 1201 if records == 0 else 1200), "format": answer_format}
        block = max(1, BLOCK_BYTES // max(width, 1))
        blocks = _blocks(ds, chosen, first, last, block, answer_format)
        return DataAnswer(header, answer_format, records, include == "header", blocks)


def _check_names(query: dict[str, str], endpoint: str) -> None:
    unknown = sorted(set(query) - _ENDPOINT_PARAMETERS[endpoint])
    if unknown:
        raise HapiError(1401, f"{endpoint} takes {', '.join(sorted(_ENDPOINT_PARAMETERS[endpoint]))}, not "
                        f"{', '.join(unknown)}")


def _dataset(query: dict[str, str]) -> str:
    dataset_id = query.get("dataset", query.get("id"))
    if not dataset_id:
        raise HapiError(1400, "dataset is required")
    return dataset_id


def _chosen(described: Described, requested: str | None) -> list[Parameter]:
    """The parameters asked for (all when not given or empty), in the dataset's order, time first."""
    everything = list(described.parameters)
    if not requested:
        return everything
    names = requested.split(",")
    known = {p.name: i for i, p in enumerate(everything)}
    missing = [n for n in names if n not in known]
    if missing:
        raise HapiError(1407, f"{described.dataset_id} has no parameter {', '.join(missing)}")
    order = [known[n] for n in names]
    if order != sorted(set(order)):
        raise HapiError(1411, f"parameters must be in the dataset's order without repeats ({requested})")
    return [everything[0]] + [everything[i] for i in order if i != 0]


def _header(described: Described, chosen: list[Parameter], code: int = 1200) -> dict[str, Any]:
    header = {**status(code), "startDate": hapi_time(described.start), "stopDate": hapi_time(described.stop),
              "timeStampLocation": "center", "parameters": [p.json() for p in chosen], **described.attrs}
    if described.not_served:
        header["x_heliohub_not_served"] = list(described.not_served)
    return header


@functools.lru_cache(maxsize=256)
def _described_cached(store: StoreLocation, dataset_id: str, start: str, end: str, records: int) -> Described:
    return _describe_variables(store, dataset_id, np.datetime64(start, "ns"), np.datetime64(end, "ns"))


def _described(store: StoreLocation, dataset_id: str, start: Any, end: Any, records: int) -> Described:
    """A dataset's HAPI description, from its metadata and one record (cached while the catalog row is the same)."""
    if pd.isna(start) or pd.isna(end):
        raise HapiError(1406, f"{dataset_id} holds no records to serve")
    return _described_cached(store, dataset_id, str(np.datetime64(start, "ns")), str(np.datetime64(end, "ns")),
                             records)


def _describe_variables(store: StoreLocation, dataset_id: str, start: np.datetime64,
                        end: np.datetime64) -> Described:
    try:  # the catalog keeps times to the microsecond: its first microsecond holds the first record
        ds = open_dataset(dataset_id, start, start + np.timedelta64(1, "us"), archive=store)
    except DatasetNotFoundError as error:
        raise HapiError(1406, str(error)) from None
    except HeliohubError as error:
        raise HapiError(1500, f"{dataset_id} cannot be opened: {error}") from None
    parameters = [Parameter("Time", None, "isotime", metadata={"units": "UTC", "fill": None})]
    not_served = []
    for name, variable in ds.data_vars.items():
        parameter = _parameter(ds, str(name), variable)
        if parameter is None:
            not_served.append(str(name))
        else:
            parameters.append(parameter)
    title = ds.attrs.get("title") or ds.attrs.get("TITLE")
    attrs = {"description": str(title)} if title else {}
    if ds.attrs.get("acknowledgement"):
        attrs["x_acknowledgement"] = str(ds.attrs["acknowledgement"])
    # stopDate is exclusive: past the last record, which lies within the catalog's last microsecond
    return Described(dataset_id, start, end + np.timedelta64(1, "us"), tuple(parameters), tuple(not_served), attrs)


def _parameter(ds: xr.Dataset, name: str, variable: xr.DataArray) -> Parameter | None:
    if not variable.dims or variable.dims[0] != "time":
        return None
    extra = variable.dims[1:]
    if any(np.issubdtype(ds[d].dtype, np.datetime64) for d in extra if d in ds.variables):
        return None  # along another time axis
    dtype = variable.dtype
    attrs = variable.attrs
    if np.issubdtype(dtype, np.datetime64):
        kind, fill = "isotime", "0000-00-00T00:00:00.000000000Z"
    elif np.issubdtype(dtype, np.floating):
        kind, fill = "double", "NaN"
    elif np.issubdtype(dtype, np.bool_) or (np.issubdtype(dtype, np.integer) and np.dtype(dtype).itemsize <= 2) \
            or dtype in (np.int32,):
        kind, fill = "integer", _integer_fill(attrs, 2 ** 31)
    elif np.issubdtype(dtype, np.integer):
        kind, fill = "double", _integer_fill(attrs, 2 ** 53)
    else:
        return None  # text
    metadata: dict[str, Any] = {"units": "UTC" if kind == "isotime" else _units(attrs), "fill": fill}
    description = attrs.get("long_name") or attrs.get("CATDESC") or attrs.get("FIELDNAM")
    if description:
        metadata["description"] = str(description)
    if attrs.get("COORDINATE_SYSTEM"):
        metadata["coordinateSystemName"] = str(attrs["COORDINATE_SYSTEM"]).split(">")[0].strip()
    bins = _bins(ds, extra)
    if bins:
        metadata["bins"] = bins
    return Parameter(name, name, kind, tuple(int(ds.sizes[d]) for d in extra), metadata)


def _units(attrs: dict[str, Any]) -> str | None:
    """A variable's units as HAPI takes them: text, or None (HAPI forbids an empty string)."""
    units = attrs.get("units") or attrs.get("UNITS")
    return (str(units).strip() or None) if units is not None else None


def _integer_fill(attrs: dict[str, Any], bound: int) -> str | None:
    for key in ("FILLVAL", "_FillValue"):
        value = attrs.get(key)
        if value is not None and np.ndim(value) == 0:
            try:
                number = int(value)
            except (TypeError, ValueError):
                continue
            if -bound <= number < bound:
                return str(number)
    return None


def _bins(ds: xr.Dataset, dims: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """Bin centres for each extra dimension, when every one has a numeric coordinate of its own without NaN."""
    bins = []
    for dim in dims:
        coordinate = ds.variables.get(dim)
        if coordinate is None or coordinate.dims != (dim,) or not np.issubdtype(coordinate.dtype, np.number):
            return None
        values = np.asarray(coordinate.values, dtype=np.float64)
        if not np.isfinite(values).all():
            return None
        bins.append({"name": dim, "centers": values.tolist(), "units": _units(coordinate.attrs) or "dimensionless"})
    return bins or None


def time_bytes(values: np.ndarray, fill: bytes = b"0000-00-00T00:00:00.000000000Z") -> np.ndarray:
    """Times as this server writes them (``YYYY-MM-DDTHH:MM:SS.fffffffffZ``, bytes of length 30), NaT as ``fill``.

    numpy's ``datetime_as_string`` takes most of a binary answer's time at a million records; here the digits are
    computed as arrays (the date once per distinct day), about ten times faster, to the same text."""
    ns = np.asarray(values, dtype="datetime64[ns]").astype(np.int64)
    missing = ns == np.iinfo(np.int64).min
    ns = np.where(missing, 0, ns)
    day_ns = 86_400_000_000_000
    days = ns // day_ns
    seconds, fraction = np.divmod(ns - days * day_ns, 1_000_000_000)
    seconds, fraction = seconds.astype(np.int32), fraction.astype(np.int32)
    columns = np.empty((TIME_LENGTH, len(ns)), dtype=np.uint8)  # one row per character: contiguous writes
    if len(ns):
        first = int(days.min())
        span = np.arange(first, int(days.max()) + 1).astype("datetime64[D]")
        dates = np.frombuffer(np.datetime_as_string(span).astype("S10").tobytes(), dtype=np.uint8).reshape(-1, 10)
        index = days - first
        for position in range(10):
            columns[position] = dates[:, position][index]
    for position, character in ((10, "T"), (13, ":"), (16, ":"), (19, "."), (29, "Z")):
        columns[position] = ord(character)
    for position, pair in ((11, seconds // 3600), (14, seconds // 60 % 60), (17, seconds % 60),
                           (20, fraction // 10_000_000), (22, fraction // 100_000 % 100), (24, fraction // 1000 % 100),
                           (26, fraction // 10 % 100)):
        columns[position] = pair // 10 + 48
        columns[position + 1] = pair % 10 + 48
    columns[28] = fraction % 10 + 48
    out = np.ascontiguousarray(columns.T)
    text = out.view(f"S{TIME_LENGTH}").ravel()
    text[missing] = fill
    return text


def _columns(parameter: Parameter, values: np.ndarray) -> np.ndarray:
    """One parameter's values for a block of records, as the stream writes them (records x unrolled elements)."""
    values = values.reshape(len(values), -1) if parameter.size else values.reshape(len(values), 1)
    if parameter.kind == "isotime":
        return time_bytes(values.ravel(), parameter.metadata["fill"].encode() if parameter.metadata["fill"]
                          else b"").reshape(values.shape)
    if parameter.kind == "double":
        return values.astype(np.float64)
    return values.astype(np.int32)


class _Cursor:
    """Reads one variable's records by the stored chunk along ``time``, keeping the last chunk read: blocks that
    do not line up with the chunks decode each chunk once, and memory holds one chunk per variable."""

    def __init__(self, variable: xr.DataArray) -> None:
        self.variable = variable
        chunks = variable.encoding.get("preferred_chunks", {}).get("time") or variable.encoding.get("chunks", [0])[0]
        self.chunk = int(chunks) if chunks else len(variable)
        self.span, self.values = (0, 0), variable.values[:0]

    def records(self, begin: int, end: int) -> np.ndarray:
        parts = []
        while begin < end:
            if not self.span[0] <= begin < self.span[1]:
                start = begin // self.chunk * self.chunk
                stop = min(start + self.chunk, len(self.variable))
                self.span, self.values = (start, stop), self.variable[start:stop].values
            stop = min(end, self.span[1])
            parts.append(self.values[begin - self.span[0]:stop - self.span[0]])
            begin = stop
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _blocks(ds: xr.Dataset, chosen: list[Parameter], first: int, last: int, block: int,
            answer_format: str) -> Iterator[bytes]:
    """The records ``first`` to ``last`` of ``ds`` in the answer's format, read ``block`` records at a time."""
    record = np.dtype([p.binary for p in chosen])
    cursors = [_Cursor(ds["time"] if p.variable is None else ds[p.variable]) for p in chosen]
    for begin in range(first, last, block):
        end = min(begin + block, last)
        columns = [_columns(p, c.records(begin, end)) for p, c in zip(chosen, cursors, strict=True)]
        if answer_format == "binary":
            out = np.empty(end - begin, dtype=record)
            for parameter, values in zip(chosen, columns, strict=True):
                out[parameter.name] = values.reshape(out[parameter.name].shape)
            yield out.tobytes()
            continue
        frame = pd.DataFrame({f"{p.name}_{k}": (c[:, k].astype(str) if c.dtype.kind == "S" else c[:, k])
                              for p, c in zip(chosen, columns, strict=True) for k in range(c.shape[1])})
        yield frame.to_csv(header=False, index=False, na_rep="NaN", lineterminator="\n").encode()


def header_lines(header: dict[str, Any]) -> bytes:
    """A header as it precedes a CSV or binary stream (``include=header``): JSON, each line behind ``#``."""
    return "".join(f"#{line}\n" for line in json.dumps(header, indent=1).splitlines()).encode()
