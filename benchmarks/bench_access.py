"""Dataset IDs to lazy xarray (issue 4), one year of 4 s FGM-like data in the store on a local S3 endpoint and the
same data as 365 daily CDF files on local disk.

    .venv/bin/python benchmarks/bench_access.py       # writes benchmarks/results/access.json

Goals: mean |B| over the year through open_dataset <= 1/20 of cdflib's time and <= 1.0x pycdfpp's; time to the
first plot of one day from a fresh process <= 2x the same with pycdfpp; open_dataset on a warm process <= 50 ms.

mean |B| is also timed with the store in a local folder, like the CDF files: the S3 endpoint here is moto's
server, a Python process on the same two cores. The first plot has a floor beside it: the pycdfpp script in a
process that also imports xarray, zarr and icechunk, which any helper opening Zarr through xarray and Icechunk
imports, so ``floor_ratio`` is the best such a helper could reach here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cdflib
import numpy as np
import pycdfpp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fgm_like
import heliohub
from common import DATA, median_seconds, write_results
from moto_s3 import s3_bucket

DATASET = "C4_CP_FGM_SPIN"
B = f"B_vec_xyz_gse__{DATASET}"
TIME = f"time_tags__{DATASET}"


def mean_b_heliohub(archive: str) -> float:
    b = heliohub.open_dataset(DATASET, archive=archive, chunks={})[B]
    return float(np.sqrt((b.astype("float64") ** 2).sum(b.dims[1])).mean().compute())


def _mean_of(parts: list[np.ndarray]) -> float:
    return float(np.mean(np.concatenate([np.sqrt((p.astype("float64") ** 2).sum(axis=1)) for p in parts])))


def mean_b_cdflib(files: list[Path]) -> float:
    parts = []
    for path in files:
        cdf = cdflib.CDF(str(path))
        cdflib.cdfepoch.to_datetime(cdf.varget(TIME))  # the times, decoded, as a user needs them
        parts.append(cdf.varget(B))
    return _mean_of(parts)


def mean_b_pycdfpp(files: list[Path]) -> float:
    parts = []
    for path in files:
        cdf = pycdfpp.load(str(path))
        pycdfpp.to_datetime64(cdf[TIME])
        parts.append(np.asarray(cdf[B].values))
    return _mean_of(parts)


FIRST_PLOT_HELIOHUB = """
import matplotlib
matplotlib.use("Agg")
import heliohub
ds = heliohub.open_dataset("{dataset}", "2001-03-01", "2001-03-01T23:59:59")
ds["{b}"].plot.line(x="time")
matplotlib.pyplot.savefig("{out}")
"""

FIRST_PLOT_PYCDFPP = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pycdfpp{imports}
cdf = pycdfpp.load("{path}")
plt.plot(pycdfpp.to_datetime64(cdf["{time}"]), cdf["{b}"].values)
plt.savefig("{out}")
"""


def first_plot(script: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, **env})
    return time.perf_counter() - started


def main() -> None:
    files = fgm_like.write_daily_cdfs(DATA / "fgm_daily_cdf", 365)
    with s3_bucket("access") as bucket:
        archive = f"{bucket}/archive"
        started = time.perf_counter()
        report = heliohub.ingest(files, archive, progress=False)
        assert report.ok, report.summary()
        ingest_s = time.perf_counter() - started
        records = heliohub.describe(DATASET, archive=archive)["records"]
        reference = mean_b_pycdfpp(files)
        assert abs(mean_b_heliohub(archive) - reference) < 1e-6 * reference
        started = time.perf_counter()  # cdflib once: it takes minutes, hundreds of times the others
        assert abs(mean_b_cdflib(files) - reference) < 1e-6 * reference
        cdflib_s = time.perf_counter() - started
        folder = DATA / "access_store"
        shutil.rmtree(folder, ignore_errors=True)
        assert heliohub.ingest(files, folder, progress=False).ok
        mean_b_heliohub(str(folder))
        heliohub_s, pycdfpp_s, folder_s = median_seconds(lambda: mean_b_heliohub(archive),
                                                         lambda: mean_b_pycdfpp(files),
                                                         lambda: mean_b_heliohub(str(folder)))
        env = {"HELIOHUB_ARCHIVE": archive}
        out = DATA / "first_plot.png"
        march = next(p for p in files if "20010301" in p.name)
        baseline = FIRST_PLOT_PYCDFPP.format(path=march, time=TIME, b=B, out=out, imports="")
        floor = FIRST_PLOT_PYCDFPP.format(path=march, time=TIME, b=B, out=out,
                                          imports="\nimport xarray, zarr, icechunk")
        plot_h, plot_p, plot_floor = median_seconds(
            lambda: first_plot(FIRST_PLOT_HELIOHUB.format(dataset=DATASET, b=B, out=out), env),
            lambda: first_plot(baseline, env), lambda: first_plot(floor, env), repeat=5)
        heliohub.open_dataset(DATASET, archive=archive)
        (open_s,) = median_seconds(lambda: heliohub.open_dataset(DATASET, archive=archive), repeat=20)
    write_results("access", {
        "data": {"records": int(records), "files": len(files), "store": "moto S3 on 127.0.0.1",
                 "ingest_s": round(ingest_s, 2)},
        "mean_abs_b_year": {"heliohub_s": round(heliohub_s, 3), "pycdfpp_s": round(pycdfpp_s, 3),
                            "cdflib_s": round(cdflib_s, 3), "vs_cdflib": round(heliohub_s / cdflib_s, 3),
                            "vs_pycdfpp": round(heliohub_s / pycdfpp_s, 2),
                            "heliohub_folder_store_s": round(folder_s, 3),
                            "vs_pycdfpp_folder_store": round(folder_s / pycdfpp_s, 2),
                            "goal": "vs_cdflib <= 0.05 and vs_pycdfpp <= 1.0", "value_nT": round(reference, 4)},
        "first_plot_one_day": {"heliohub_s": round(plot_h, 2), "pycdfpp_s": round(plot_p, 2),
                               "ratio": round(plot_h / plot_p, 2), "goal": "<= 2.0",
                               "floor_s": round(plot_floor, 2), "floor_ratio": round(plot_floor / plot_p, 2),
                               "what": "fresh Python process: imports, open, select a day, plot B, save a PNG"},
        "open_dataset_warm_ms": {"median_ms": round(open_s * 1000, 1), "goal": "<= 50"},
    })


if __name__ == "__main__":
    main()
