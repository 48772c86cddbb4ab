"""Reader throughput (issues 2 and 17): CEF against pandas' C CSV reader, CDF against a floor, in the same run.

    .venv/bin/python benchmarks/bench_readers.py      # writes benchmarks/results/readers.json

Goals (issue 17): CEF >= 1.0x pandas' throughput on the same bytes; CDF >= 0.8x the floor's throughput on both
file sets. The floor is pycdfpp's arrays and every attribute value put into a plain ``xarray.Dataset`` (no
conventions, no checks): no reader that returns the file's data and metadata as xarray through pycdfpp can be
faster than that. pycdfpp's bare decode is timed beside it (``ceiling_vs_pycdfpp`` is the best ratio to pycdfpp
such a reader could reach). A second floor adds what a time-indexed dataset costs (the record-varying variables on
one ``time`` dimension indexed by the file's time variable): ``time_indexed_floor_vs_floor`` is the best ratio to
the floor that any reader returning a time-indexed dataset through xarray's public constructor can reach. A third
adds the structure check that keeps a damaged file from crashing the process in pycdfpp (``checked_cdf``):
``checked_floor_vs_floor`` is the best ratio to the floor that a reader which is both time-indexed and safe on
any bytes can reach.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pycdfpp
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fgm_like
import heliohub
from common import DATA, median_seconds, write_results
from heliohub.readers.cdf_structure import checked_cdf

CEF_COPIES = 200  # 200 x the 3-day file: ~264 MB, 2.95 million records
CDF_DAYS = 30
_TIMES = (pycdfpp.DataType.CDF_EPOCH, pycdfpp.DataType.CDF_EPOCH16, pycdfpp.DataType.CDF_TIME_TT2000)


def pycdfpp_decode(path: Path) -> None:
    """The baseline: pycdfpp loads the file and decodes every variable (times to datetime64)."""
    cdf = pycdfpp.load(str(path))
    for _, variable in cdf.items():
        pycdfpp.to_datetime64(variable) if variable.type in _TIMES else np.asarray(variable.values)


def pycdfpp_dataset(path: Path) -> xr.Dataset:
    """The floor: what pycdfpp decodes, every attribute included, as an xarray.Dataset with one dimension name
    per variable axis (so nothing is aligned or checked)."""
    cdf = pycdfpp.load(str(path))
    variables = {}
    for name, variable in cdf.items():
        values = pycdfpp.to_datetime64(variable) if variable.type in _TIMES else np.asarray(variable.values)
        variables[name] = xr.Variable([f"{name}_{axis}" for axis in range(values.ndim)], values,
                                      {key: attr.value for key, attr in variable.attributes.items()})
    return xr.Dataset(variables, attrs={key: list(attr) for key, attr in cdf.attributes.items()})


def pycdfpp_time_indexed(path: Path, *, checked: bool = False) -> xr.Dataset:
    """The floor with a time index: the same, but the record-varying variables share a ``time`` dimension indexed
    by the file's first time variable, as any reader returning a time-indexed dataset must build (xarray makes the
    index and checks the sizes). ``checked``: the file's structure is checked first, as heliohub's reader does."""
    cdf = pycdfpp.load(checked_cdf(path.read_bytes()), lazy_load=False) if checked else pycdfpp.load(str(path))
    decoded = {name: (variable, pycdfpp.to_datetime64(variable) if variable.type in _TIMES
                      else np.asarray(variable.values)) for name, variable in cdf.items()}
    time_name = next(name for name, (variable, _) in decoded.items() if variable.type in _TIMES)
    times = decoded[time_name][1]
    variables = {}
    for name, (variable, values) in decoded.items():
        if name == time_name:
            continue
        axes = [f"{name}_{axis}" for axis in range(values.ndim)]
        if values.ndim and values.shape[0] == times.shape[0] and variable.is_nrv is False:
            axes[0] = "time"
        variables[name] = xr.Variable(axes, values, {key: attr.value for key, attr in variable.attributes.items()})
    return xr.Dataset(variables, coords={"time": times},
                      attrs={key: list(attr) for key, attr in cdf.attributes.items()})


def cef() -> dict[str, object]:
    path = DATA / f"C4_CP_FGM_SPIN_x{CEF_COPIES}.cef"
    DATA.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fgm_like.write_cef(path.with_suffix(".part"), CEF_COPIES)
        path.with_suffix(".part").rename(path)
    block = fgm_like.data_block(path)
    headers = [str(p) for p in fgm_like.CEF_HEADERS]
    records = heliohub.read_file(path, include_paths=headers).sizes["time"]
    pandas_s, heliohub_s = median_seconds(
        lambda: pd.read_csv(io.BytesIO(block), header=None, comment="$", engine="c"),
        lambda: heliohub.read_file(path, include_paths=headers))
    size = path.stat().st_size / 1e6
    return {"file_mb": round(size, 1), "records": records,
            "pandas_read_csv_s": round(pandas_s, 3), "heliohub_read_file_s": round(heliohub_s, 3),
            "pandas_mb_per_s": round(size / pandas_s, 1), "heliohub_mb_per_s": round(size / heliohub_s, 1),
            "ratio_vs_pandas": round(pandas_s / heliohub_s, 2), "goal": ">= 1.0",
            "baseline": "pandas.read_csv(C engine, comment='$') on the data section already in memory; "
                        "heliohub reads the file, its header and includes, and parses times"}


def cdf(label: str, paths: list[Path]) -> dict[str, object]:
    size = sum(p.stat().st_size for p in paths) / 1e6
    pycdfpp_s, heliohub_s, floor_s, indexed_s, checked_s = median_seconds(
        lambda: [pycdfpp_decode(p) for p in paths], lambda: [heliohub.read_file(p) for p in paths],
        lambda: [pycdfpp_dataset(p) for p in paths], lambda: [pycdfpp_time_indexed(p) for p in paths],
        lambda: [pycdfpp_time_indexed(p, checked=True) for p in paths])
    return {"files": label, "count": len(paths), "mb": round(size, 2),
            "pycdfpp_s": round(pycdfpp_s, 4), "heliohub_s": round(heliohub_s, 4),
            "pycdfpp_mb_per_s": round(size / pycdfpp_s, 1), "heliohub_mb_per_s": round(size / heliohub_s, 1),
            "ratio_vs_pycdfpp": round(pycdfpp_s / heliohub_s, 2),
            "floor_s": round(floor_s, 4), "ceiling_vs_pycdfpp": round(pycdfpp_s / floor_s, 2),
            "ratio_vs_floor": round(floor_s / heliohub_s, 2), "goal": ">= 0.8 (vs the floor)",
            "time_indexed_floor_s": round(indexed_s, 4),
            "time_indexed_floor_vs_floor": round(floor_s / indexed_s, 2),
            "ratio_vs_time_indexed_floor": round(indexed_s / heliohub_s, 2),
            "checked_floor_s": round(checked_s, 4), "checked_floor_vs_floor": round(floor_s / checked_s, 2),
            "ratio_vs_checked_floor": round(checked_s / heliohub_s, 2),
            "floor": "pycdfpp's arrays and attributes in a plain xarray.Dataset: the fastest any reader returning "
                     "the file's data and metadata as xarray through pycdfpp can be"}


def main() -> None:
    shared_cdfs = sorted(fgm_like.DATA.glob("*/cdf/*.cdf"))
    daily = fgm_like.write_daily_cdfs(DATA / "fgm_daily_cdf", CDF_DAYS)
    write_results("readers", {
        "cef_fgm": cef(),
        "cdf_daily_fgm": cdf(f"{CDF_DAYS} daily FGM-like CDFs of 21 600 records (CDF_EPOCH)", daily),
        "cdf_shared": cdf("every CDF in data/ (80 kB to 370 kB each)", shared_cdfs),
    })


if __name__ == "__main__":
    main()
