"""Building a reader's ``xarray.Dataset`` from variables already made: the one place heliohub calls a private
function of xarray's.

``xr.Dataset(data_vars, coords=coords, attrs=attrs)`` copies every variable, merges the data variables and the
coordinates as it would merge arbitrary inputs (alignment, conflict checks) and casts the index coordinates to
pandas again. A reader's variables are made fresh, of one dimension set, and need none of that: the constructor
was half of the time of reading a daily CDF (``benchmarks/bench_readers.py``). So the dataset is put together
here through ``Dataset._construct_direct`` with the indexes xarray would make (a ``PandasIndex`` for each
one-dimensional variable named as its dimension). Whatever the fast path does not handle itself (sizes in
conflict, a name given twice, a variable named as one of its dimensions and not one-dimensional) goes to the
public constructor, which builds it or raises its own error. xarray is capped below its next
release in pyproject.toml, and ``tests/test_any_file.py`` checks, at the newest and the lowest declared xarray,
that every real file's dataset is identical to what the public constructor builds, indexes and orders included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.indexes import PandasIndex

_NANOSECONDS = np.dtype("datetime64[ns]")


def build_dataset(data_vars: dict[str, xr.Variable], coords: dict[str, xr.Variable],
                  attrs: dict[str, Any]) -> xr.Dataset:
    """What ``xr.Dataset(data_vars, coords=coords, attrs=attrs)`` returns, for fresh variables (which the
    dataset then owns)."""
    if data_vars.keys() & coords.keys():
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)
    variables: dict[str, xr.Variable] = {**data_vars, **coords}
    sizes: dict[str, int] = {}
    indexed = []
    for name, variable in variables.items():
        dims = variable.dims
        for dim, size in zip(dims, variable.shape, strict=True):
            if sizes.setdefault(dim, size) != size:
                return xr.Dataset(data_vars, coords=coords, attrs=attrs)
        if name in dims:
            if len(dims) != 1:
                return xr.Dataset(data_vars, coords=coords, attrs=attrs)
            indexed.append(name)
    indexes = {}
    for name in indexed:
        variable = variables[name]
        if variable.dtype == _NANOSECONDS:
            # the times as they are: PandasIndex.from_variables copies them through pd.Index (fresh memory)
            index = PandasIndex(pd.DatetimeIndex(variable.values, copy=False, name=name), name, variable.dtype)
        else:
            index = PandasIndex.from_variables({name: variable}, options={})
        variables.update(index.create_variables({name: variables[name]}))
        indexes[name] = index
    return xr.Dataset._construct_direct(variables, {*coords, *indexed}, sizes, dict(attrs), indexes)
