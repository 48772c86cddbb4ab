"""How a dataset is laid out in Zarr: chunking along time, the time coordinate, compression.

The choices and the measurements behind them are in ``docs/store-layout.md`` (``benchmarks/bench_store.py``
re-measures them). In short:

* data variables are chunked along their record axis to about ``CHUNK_BYTES`` of raw values per chunk (whole
  extent along the other axes; one frame per chunk for images), so a one-year scan reads few, large objects and a
  one-hour read fetches one chunk;
* record coordinates (``time`` and other time axes) are stored in chunks of ``TIME_CHUNK_RECORDS`` values (a
  year of 4 s data in 16 chunks); byte shuffling compresses a regular cadence to a few kB. Each axis's
  :mod:`~heliohub.store.time_index` keeps each chunk's first and last time and its gaps, so opening a range reads
  only the time chunks it overlaps, and an append only those it changes, not the whole axis (20 years of 4 s data
  hold 1.3 GB of times);
* numbers are compressed with Blosc (lz4, byte shuffle: 6-19x faster to write than zstd, 1.5-2.3x faster to
  read, as small on measured fields), text with zstd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr
from xarray.core import indexing
from zarr.codecs import BloscCodec, BloscShuffle, ZstdCodec

CHUNK_BYTES = 4 << 20
TIME_CHUNK_RECORDS = 1 << 19
TIME_UNITS = "nanoseconds since 1970-01-01"
CALENDAR = "proleptic_gregorian"
_NAT = np.iinfo(np.int64).min
META = "heliohub"
"""The subgroup of a dataset's group where heliohub keeps its tables: the files it came from
(:mod:`~heliohub.store.provenance`) and the index of each time axis (:mod:`~heliohub.store.time_index`). xarray
opens only the arrays of the group itself, so users never see them."""
VARIABLE_ORDER = "heliohub_variables"
"""The group attribute listing the variables in their source file's order: Icechunk lists a group's arrays in no
fixed order, and a dataset should open with its variables as the archive file has them, every time."""


def record_dims(ds: xr.Dataset) -> list[str]:
    """The dataset's record axes: dimensions whose coordinate is a time (``time`` first)."""
    dims = [d for d in ds.dims if d in ds.coords and ds.variables[d].dtype.kind == "M" and ds.variables[d].ndim == 1]
    return sorted(dims, key=lambda d: (d != "time", d))


def time_bounds(times: np.ndarray) -> tuple[np.datetime64, np.datetime64] | None:
    """The first and last of ``times`` (datetime64), NaT left out; None when there is no time. Taken as int64
    minimum and maximum (NaT is int64's minimum): numpy's datetime64 min and max are ten times slower."""
    stamps = times.view("int64")
    if stamps.size and stamps.min() == _NAT:
        stamps = stamps[stamps != _NAT]
    if not stamps.size:
        return None
    unit = np.datetime_data(times.dtype)[0]
    return np.datetime64(int(stamps.min()), unit), np.datetime64(int(stamps.max()), unit)


def _compressor(dtype: np.dtype) -> Any:
    if dtype.kind in "OUST":
        return ZstdCodec(level=3)
    typesize = max(1, dtype.itemsize)
    return BloscCodec(cname="lz4", clevel=9, shuffle=BloscShuffle.shuffle, typesize=typesize)


def encode_times(ds: xr.Dataset) -> xr.Dataset:
    """Times as int64 nanoseconds since 1970 with their CF attributes, as xarray would write them (NaT is the
    int64 minimum, which xarray reads back as NaT), without xarray's unit inference (a pass over every value)."""
    replaced = {}
    for name, variable in ds.variables.items():
        if variable.dtype.kind == "M":
            values = np.asarray(variable.values).astype("datetime64[ns]", copy=False).view("int64")
            replaced[name] = xr.Variable(variable.dims, values,
                                         {**variable.attrs, "units": TIME_UNITS, "calendar": CALENDAR},
                                         fastpath=True)  # plain int64: xarray's checks would import dask.array
    if not replaced:
        return ds
    return ds.assign_coords({n: v for n, v in replaced.items() if n in ds.coords}).assign(
        {n: v for n, v in replaced.items() if n not in ds.coords})


class _Converted(xr.backends.BackendArray):
    """A stored variable's values passed through a conversion as they are read, only what is indexed."""

    def __init__(self, variable: xr.Variable, dtype: np.dtype, convert: Callable[[np.ndarray], np.ndarray]) -> None:
        self.variable, self.convert = variable, convert
        self.shape, self.dtype = variable.shape, dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        return self.convert(np.asarray(self.variable[key].values))


def lazily_converted(variable: xr.Variable, dtype: Any, convert: Callable[[np.ndarray], np.ndarray],
                     attrs: dict[str, Any], encoding: dict[str, Any]) -> xr.Variable:
    """``variable`` (opened lazily, not as dask) as values of ``dtype`` that ``convert`` makes of its own as they
    are read, with ``attrs`` and ``encoding``: xarray's backend array protocol, as its guide to backends uses it."""
    data = indexing.LazilyIndexedArray(_Converted(variable, np.dtype(dtype), convert))
    return xr.Variable(variable.dims, data, attrs, encoding)


def encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """The Zarr encoding of every variable of ``ds``."""
    axes = set(record_dims(ds))
    out: dict[str, dict[str, Any]] = {}
    for name, variable in ds.variables.items():
        dtype = variable.dtype
        enc: dict[str, Any] = {"compressors": [_compressor(dtype if dtype.kind != "M" else np.dtype("int64"))]}
        if variable.ndim:
            first = variable.dims[0]
            if first in axes and name == first:
                chunks = [TIME_CHUNK_RECORDS]
            elif first in axes:
                per_record = max(1, int(np.prod(variable.shape[1:], dtype=np.int64)) * max(1, dtype.itemsize))
                chunks = [max(1, CHUNK_BYTES // per_record)]
            else:
                chunks = [max(1, variable.shape[0])]
            enc["chunks"] = tuple(chunks + [max(1, n) for n in variable.shape[1:]])
        out[str(name)] = enc
    return out
