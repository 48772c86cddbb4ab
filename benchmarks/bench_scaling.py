"""How the parts scale (issue 9's deployment guide): the store under concurrent readers, Dask Gateway clusters.

    .venv/bin/python benchmarks/bench_scaling.py      # writes benchmarks/results/scaling.json

* the store: requests and time per one-hour read of 60 days of 4 s FGM-like data on a local S3 endpoint, and
  one-hour reads per second from 1, 2 and 4 reader processes at once (each opens the dataset once, then reads
  random hours);
* Dask Gateway on the one-machine platform (``heliohub up``): time to a new cluster, to 1, 2 and 4 workers, and a
  60-day mean |B| on each, against the same computation in one process without Dask Gateway in the same run.

These machines have 2 cores, so the figures are per-core costs to scale from, not a cluster's capacity.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tests.hub_client import free_ports  # noqa: E402

import fgm_like  # noqa: E402
import heliohub  # noqa: E402
from bench_platform import start_up, stop_up  # noqa: E402
from common import DATA, median_seconds, write_results  # noqa: E402
from moto_s3 import requests_seen, s3_bucket  # noqa: E402

DAYS = 60
DATASET = "C4_CP_FGM_SPIN"
B = f"B_vec_xyz_gse__{DATASET}"
READ_SECONDS = 10

READER = """
import json, sys, time
import numpy as np
import heliohub
archive, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
ds = heliohub.open_dataset("{dataset}", archive=archive)
first, last = ds.time.values[0], ds.time.values[-1]
hours = int((last - first) // np.timedelta64(1, "h")) - 1
rng = np.random.default_rng(seed)
reads, deadline = 0, time.monotonic() + seconds
while time.monotonic() < deadline:
    start = first + np.timedelta64(int(rng.integers(hours)), "h")
    heliohub.open_dataset("{dataset}", start, start + np.timedelta64(3599, "s"), archive=archive)["{b}"].load()
    reads += 1
print(json.dumps({{"reads": reads}}))
"""


def one_hour(archive: str, day: int = 10) -> None:
    start = np.datetime64("2001-01-01T12:00") + np.timedelta64(day, "D")
    heliohub.open_dataset(DATASET, start, start + np.timedelta64(3599, "s"), archive=archive)[B].load()


def concurrent_reads(archive: str, processes: int) -> float:
    """One-hour reads per second from ``processes`` reader processes at once."""
    script = READER.format(dataset=DATASET, b=B)
    children = [subprocess.Popen([sys.executable, "-c", script, archive, str(READ_SECONDS), str(seed)],
                                 stdout=subprocess.PIPE, text=True) for seed in range(processes)]
    reads = sum(json.loads(child.communicate(timeout=300)[0])["reads"] for child in children)
    return reads / READ_SECONDS


def store(files: list[Path]) -> dict[str, object]:
    with s3_bucket("scaling") as bucket:
        archive = f"{bucket}/archive"
        report = heliohub.ingest(files, archive, progress=False)
        assert report.ok, report.summary()
        heliohub.store.access.clear_caches()
        with requests_seen(bucket) as cold:
            one_hour(archive, 10)
        with requests_seen(bucket) as warm:  # another hour, in another chunk, once the process has the dataset open
            one_hour(archive, 20)
        days = iter(range(21, 60))
        (read_s,) = median_seconds(lambda: one_hour(archive, next(days)), repeat=20)
        rates = {str(n): round(concurrent_reads(archive, n), 1) for n in (1, 2, 4)}
        records = heliohub.open_dataset(DATASET, archive=archive).sizes["time"]
    gets = {name: sum(bool(re.search(r"GET /", line)) for line in lines) for name, lines in
            (("cold_process", cold), ("warm_process", warm))}
    return {"records": int(records), "days": DAYS,
            "one_hour_read": {"gets": gets, "warm_median_ms": round(read_s * 1000, 1)},
            "one_hour_reads_per_s": {"by_reader_processes": rates,
                                     "endpoint": "moto S3 on 127.0.0.1 (one process, request-bound)"}}


def mean_b(ds) -> float:
    b = ds[B].astype("float64")
    return float(np.sqrt((b**2).sum(b.dims[1])).mean().compute())


def gateway(folder: Path) -> dict[str, object]:
    from dask_gateway import Gateway

    work = Path(tempfile.mkdtemp(prefix="heliohub-scaling-"))
    work.chmod(0o755)  # the users' accounts pass through to their homes
    data = work / "platform"
    ports = free_ports(6)
    process, _ = start_up(data, ports, (f"--from={folder}", "--UpSettings.demo=False",
                                        "--UpSettings.cluster_max_workers=4"))
    saved = dict(os.environ)
    try:
        state = json.loads((data / "hub" / "state.json").read_text())
        os.environ.update({k: v for k, v in state["user_environment"].items() if k.startswith(("AWS_", "HELIOHUB_"))})
        os.environ.update({k: v for k, v in state["operator_environment"].items()
                           if k.startswith("DASK_GATEWAY__") or k == "JUPYTERHUB_API_TOKEN"})
        import dask

        dask.config.refresh()
        ds = heliohub.open_dataset(DATASET, chunks={})
        expected = mean_b(ds.compute())
        (local_s,) = median_seconds(lambda: mean_b(heliohub.open_dataset(DATASET, chunks={})), repeat=3)
        with Gateway() as client_gateway:
            started = time.perf_counter()
            cluster = client_gateway.new_cluster()
            new_cluster_s = time.perf_counter() - started
            workers = {}
            with cluster.get_client() as client:
                for count in (1, 2, 4):
                    started = time.perf_counter()
                    cluster.scale(count)
                    client.wait_for_workers(count, timeout=300)
                    scale_s = time.perf_counter() - started
                    assert abs(mean_b(heliohub.open_dataset(DATASET, chunks={})) - expected) < 1e-9 * expected
                    (mean_s,) = median_seconds(lambda: mean_b(heliohub.open_dataset(DATASET, chunks={})), repeat=3)
                    workers[str(count)] = {"scale_s": round(scale_s, 2), "mean_b_s": round(mean_s, 3),
                                           "vs_one_process": round(mean_s / local_s, 2)}
            cluster.shutdown()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stop_up(data, process)
    return {"new_cluster_s": round(new_cluster_s, 2), "one_process_mean_b_s": round(local_s, 3),
            "workers": workers, "computation": f"mean |B| over {DAYS} days of 4 s data, chunks as stored"}


def main() -> None:
    folder = DATA / f"fgm_daily_cdf_{DAYS}"
    files = fgm_like.write_daily_cdfs(folder, DAYS)
    write_results("scaling", {"store": store(files), "dask_gateway": gateway(folder)})


if __name__ == "__main__":
    main()
