"""Quicklooks (issue 6): time to a one-year quicklook PNG against plotting the same data with plain matplotlib.

    .venv/bin/python benchmarks/bench_plots.py        # writes benchmarks/results/plots.json

One year of 4 s FGM-like data (built from the real file with shifted times) is in the store on a local S3 endpoint.
Both sides run in a fresh Python process, imports included: heliohub reads the store, reduces on the server side
and renders with holoviews' matplotlib backend; the baseline loads the same curves from .npy files (numpy, the
fastest way to have them) and draws every point with matplotlib into the same panels. Goal: <= 1x.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fgm_like
import heliohub
from common import DATA, median_seconds, write_results
from moto_s3 import s3_bucket

DATASET = "C4_CP_FGM_SPIN"
YEAR = ("2001-01-01", "2002-01-01")

HELIOHUB = """
import heliohub
heliohub.save_quicklook("{dataset}", "{start}", "{end}", "{out}")
"""

BASELINE = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
panels = {panels!r}
time = np.load("{folder}/time.npy")
fig, axes = plt.subplots(len(panels), 1, figsize=(12, 2.6 * len(panels)))
for ax, (names, label) in zip(np.atleast_1d(axes), panels):
    for name in names:
        ax.plot(time, np.load(f"{folder}/{{name}}.npy"), linewidth=0.8)
    ax.set_ylabel(label)
fig.savefig("{out}", dpi=100, bbox_inches="tight")
"""


def run(script: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, **env})
    return time.perf_counter() - started


def main() -> None:
    from heliohub.plots.panels import panels_for

    files = fgm_like.write_daily_cdfs(DATA / "fgm_daily_cdf", 365)
    folder = DATA / "plot_arrays"
    folder.mkdir(parents=True, exist_ok=True)
    with s3_bucket("plots") as bucket:
        archive = f"{bucket}/archive"
        report = heliohub.ingest(files, archive, progress=False)
        assert report.ok, report.summary()
        ds = heliohub.open_dataset(DATASET, *YEAR, archive=archive)
        records = ds.sizes["time"]
        # the baseline draws what the quicklook draws: its panels' curves, every point (magnitudes included)
        panels, points = [], 0
        np.save(folder / "time.npy", ds.time.values)
        for panel in panels_for(DATASET, ds):
            names = []
            values = np.concatenate([ds[v].values.reshape(records, -1).astype("float64") for v in panel.variables], 1)
            if panel.magnitude:
                values = np.concatenate([values, np.sqrt((values**2).sum(1, keepdims=True))], 1)
            for column in range(values.shape[1]):
                name = f"{len(panels)}_{column}"
                np.save(folder / f"{name}.npy", values[:, column])
                names.append(name)
                points += records
            panels.append((names, f"{panel.label} ({panel.units})"))
        env = {"HELIOHUB_ARCHIVE": archive}
        ours, baseline = median_seconds(
            lambda: run(HELIOHUB.format(dataset=DATASET, start=YEAR[0], end=YEAR[1], out=DATA / "quicklook.png"), env),
            lambda: run(BASELINE.format(panels=panels, folder=folder, out=DATA / "baseline.png"), env), repeat=3)
    write_results("plots", {
        "data": {"dataset": DATASET, "records": int(records), "panels": len(panels), "curves": sum(len(n) for n, _ in
                 panels), "points_drawn_by_baseline": int(points), "store": "moto S3 on 127.0.0.1"},
        "one_year_quicklook_png": {"heliohub_s": round(ours, 2), "matplotlib_s": round(baseline, 2),
                                   "ratio": round(ours / baseline, 2), "goal": "<= 1.0",
                                   "what": "fresh process each: heliohub reads the store, reduces (min/max per "
                                           "pixel column) and renders; matplotlib loads .npy arrays and draws "
                                           "every point"}})


if __name__ == "__main__":
    main()
