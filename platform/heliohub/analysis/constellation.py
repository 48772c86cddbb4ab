"""Several spacecraft's datasets as one dataset with a ``spacecraft`` dimension, on one time base.

The archives deliver a constellation (Cluster's four spacecraft, Double Star's two) as one dataset per spacecraft,
each with its own times and its own variable names (``B_vec_xyz_gse__C1_CP_FGM_SPIN``). Here they become one lazy
``xarray.Dataset``: variables under their common name, values on the time base the user chooses (one spacecraft's
own times, or a regular step), the interpolation said in the attributes.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import HeliohubError, TimeRangeError
from ..missions import aux_position_id, position_of, spacecraft_of
from ..store.access import TimeLike, cached_catalog, not_found, open_dataset, timestamp
from ..store.location import StoreLocation

log = logging.getLogger(__name__)

GAP_STEPS = 5
"""Two records of a spacecraft more than this many of its usual steps apart have a gap between them: nothing is
interpolated across it (NaN)."""
_PER_SPACECRAFT = ("archive_name", "joined_from")
POSITION = "position"
"""The name of the position joined from a Cluster spacecraft's AUX dataset (when its own dataset has none)."""


def constellation_ids(dataset_ids: str | Iterable[str], archive: str | StoreLocation | None = None) -> list[str]:
    """The dataset IDs a pattern (``"C?_CP_FGM_SPIN"``) or a list names, as the store holds them."""
    store = StoreLocation.resolve(archive)
    if isinstance(dataset_ids, str):
        known = sorted(cached_catalog(store)["dataset_id"])
        found = [i for i in known if fnmatch.fnmatchcase(i, dataset_ids)]
        if not found:
            raise not_found(store, dataset_ids)
        return found
    return list(dataset_ids)


def _common_name(name: str, dataset_id: str) -> str:
    return name.replace(f"__{dataset_id}", "")


def _renamed(ds: xr.Dataset, dataset_id: str) -> xr.Dataset:
    names = {n: _common_name(str(n), dataset_id) for n in [*ds.variables, *ds.dims] if f"__{dataset_id}" in str(n)}
    out = ds.rename({k: v for k, v in names.items() if k in ds.variables or k in ds.dims})
    for old, new in names.items():
        if new in out.variables:
            out[new].attrs["archive_name"] = old
    return out


def _regular(first: np.datetime64, last: np.datetime64, step: str | pd.Timedelta) -> np.ndarray:
    return pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq=pd.Timedelta(step)).values


def _gap_mask(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """True where a target time falls between two source records close enough to interpolate between."""
    stamps = source.astype("int64")
    if stamps.size < 2:
        return np.zeros(target.shape, dtype=bool)
    usual = max(float(np.median(np.diff(stamps))), 1.0)
    at = target.astype("int64")
    after = np.clip(np.searchsorted(stamps, at, side="left"), 1, stamps.size - 1)
    inside = (at >= stamps[0]) & (at <= stamps[-1])
    return inside & ((stamps[after] - stamps[after - 1]) <= GAP_STEPS * usual)


def _on(ds: xr.Dataset, times: np.ndarray, method: str) -> xr.Dataset:
    """``ds`` on ``times``: floating-point variables interpolated (``method``), others the nearest record within
    half a usual step; NaN across gaps and outside the records."""
    timed = [n for n, v in ds.data_vars.items() if "time" in v.dims]
    floats = [n for n in timed if ds[n].dtype.kind == "f"]
    others = [n for n in timed if n not in floats]
    source = ds["time"].values
    out = ds.drop_vars(timed).drop_dims([d for d in ("time",) if d in ds.dims], errors="ignore")
    target = xr.DataArray(times, dims="time", name="time")
    keep = xr.DataArray(_gap_mask(source, times), dims="time", coords={"time": times})
    if floats:
        try:
            # in float64 (as scipy computes; a float32 variable's dask chunks would come out float64 while their
            # announced dtype stays float32), then back to the data's own precision below
            moved = ds[floats].astype("float64").interp(time=target, method=method)
        except (ImportError, ModuleNotFoundError) as error:
            raise ImportError("interpolating onto a common time base needs scipy: pip install scipy") from error
        out = out.merge(moved.assign({n: moved[n].where(keep).astype(ds[n].dtype) for n in floats}))
    if others:
        half = pd.Timedelta(int(np.median(np.diff(source.astype("int64"))) // 2) if source.size > 1 else 0)
        out = out.merge(ds[others].reindex(time=times, method="nearest", tolerance=half))
    return out


def open_constellation(dataset_ids: str | Iterable[str], start: TimeLike = None, end: TimeLike = None, *,
                       on: str | None = None, step: str | pd.Timedelta | None = None, method: str = "linear",
                       variables: Iterable[str] | None = None,
                       archive: str | StoreLocation | None = None) -> xr.Dataset:
    """Several spacecraft's datasets (``"C?_CP_FGM_SPIN"``: Cluster's four) as one lazy dataset with a
    ``spacecraft`` dimension, over ``start`` to ``end``.

    Variables take their common name (the ``__C1_CP_FGM_SPIN`` suffix gone; the archive's names are kept in each
    variable's ``archive_names``, one per spacecraft). The time base is one spacecraft's own times (``on="C1"``) or
    a regular ``step`` (``"4s"``) over the interval all spacecraft cover; one of the two must be given.
    Floating-point variables are interpolated (``method``, as ``xarray.Dataset.interp``; needs scipy), others take
    the nearest record within half a step; nothing is interpolated across a data gap (more than five usual steps) or
    outside a spacecraft's records (NaN). A Cluster spacecraft whose dataset has no position gets one from its AUX
    dataset when the store holds it (``C<n>_CP_AUX_POSGSE_1M``), as ``position``; so does one whose position
    ``variables`` (common names, all when omitted) leaves out. ``ds.attrs`` says the time base and the
    interpolation.
    """
    if (on is None) == (step is None):
        raise HeliohubError("open_constellation: give either on= (a spacecraft whose times are the time base, "
                            "e.g. on='C1') or step= (a regular time base, e.g. step='4s')")
    store = StoreLocation.resolve(archive)
    ids = constellation_ids(dataset_ids, store)
    names = [spacecraft_of(i) or i for i in ids]
    if len(set(names)) != len(names):
        raise HeliohubError(f"open_constellation: {', '.join(ids)} are not one dataset per spacecraft")
    opened = {}
    for name, dataset_id in zip(names, ids, strict=True):
        ds = _renamed(open_dataset(dataset_id, start, end, chunks={}, archive=store), dataset_id)
        if variables is not None:
            missing = [v for v in variables if v not in ds.variables]
            if missing:
                raise HeliohubError(f"{dataset_id} has no variable(s) {', '.join(missing)} (common names); it has: "
                                    f"{', '.join(map(str, ds.data_vars))}")
            ds = ds[list(variables)]
        opened[name] = _with_aux_position(ds, dataset_id, store, start, end)
    if on is not None:
        if on not in opened:
            raise HeliohubError(f"open_constellation: on={on!r} is not one of the spacecraft {', '.join(opened)}")
        times = opened[on]["time"].values
        base = f"the times of {on} ({ids[names.index(on)]})"
    else:
        first = max(ds["time"].values[0] for ds in opened.values() if ds.sizes["time"])
        last = min(ds["time"].values[-1] for ds in opened.values() if ds.sizes["time"])
        if any(ds.sizes["time"] == 0 for ds in opened.values()) or last < first:
            raise TimeRangeError(f"{', '.join(ids)} have no interval in common between {start} and {end}")
        times = _regular(first, last, step)
        base = (f"every {pd.Timedelta(step).total_seconds():g} s from {pd.Timestamp(first)} to {pd.Timestamp(last)} "
                "(the interval all spacecraft cover)")
    on_base = [_on(ds, times, method) for ds in opened.values()]
    timed = sorted({str(n) for ds in on_base for n, v in ds.data_vars.items() if "time" in v.dims})
    # only the time series gain the spacecraft dimension; labels and other constants are the first spacecraft's
    joined = xr.concat(on_base, dim=pd.Index(list(opened), name="spacecraft"), data_vars=timed,
                       coords="minimal", compat="override", combine_attrs="drop_conflicts", join="outer")
    joined.attrs = _common_attrs([ds.attrs for ds in on_base])
    for name in joined.variables:
        kept = [ds[name].attrs for ds in on_base if name in ds.variables]
        joined[name].attrs = _common_attrs(kept)
        for key in _PER_SPACECRAFT:  # one per spacecraft: archive_names, joined_froms
            if any(key in a for a in kept):
                joined[name].attrs[f"{key}s"] = [a.get(key, "") for a in kept]
    joined.attrs.update({
        "dataset_ids": ids, "time_base": base,
        "interpolation": f"{method} in time for floating-point variables, the nearest record within half a step "
                         f"for others; NaN across gaps of more than {GAP_STEPS} usual steps and outside each "
                         "spacecraft's records"})
    return joined


def _common_attrs(every: list[dict]) -> dict:
    """The attributes all of ``every`` have, with the same value (a spacecraft's own name or file is left out)."""
    first, *others = every or [{}]
    return {k: v for k, v in first.items() if k not in _PER_SPACECRAFT and all(
        k in o and _same(o[k], v) for o in others)}


def _same(a: object, b: object) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except (TypeError, ValueError):
        return a == b


def _with_aux_position(ds: xr.Dataset, dataset_id: str, store: StoreLocation, start: TimeLike,
                       end: TimeLike) -> xr.Dataset:
    aux = aux_position_id(dataset_id)
    if position_of(ds) is not None or aux is None or aux == dataset_id:
        return ds
    if aux not in set(cached_catalog(store)["dataset_id"]):
        return ds
    first, last = timestamp(start, "start"), timestamp(end, "end")
    pad = np.timedelta64(10, "m")  # the AUX positions are a minute apart: take those around the range too
    try:
        positions = open_dataset(aux, first - pad if first is not None else None,
                                 last + pad if last is not None else None, chunks={}, archive=store)
    except TimeRangeError:
        return ds
    name = position_of(positions)
    if name is None:
        return ds
    position = _on(positions[[name]], ds["time"].values, "linear")[name]
    position.attrs.update(positions[name].attrs, archive_name=name, joined_from=aux)
    return ds.assign({POSITION: position.rename({d: f"{POSITION}_dim1" for d in position.dims if d != "time"})})
