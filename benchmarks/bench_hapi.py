"""The HAPI server's data throughput and the export's (issue 21): 30 days of 4 s FGM-like data (about 650,000
records) in a folder store, served by `heliohub serve` in a process of its own, read whole over HTTP on 127.0.0.1.

    .venv/bin/python benchmarks/bench_hapi.py         # writes benchmarks/results/hapi.json

Goals: binary HAPI >= 0.5x `open_dataset` + numpy (the same records read from the store into arrays in this
process); CSV HAPI >= 0.8x pandas writing the same values to CSV (the same DataFrame the server would have to
build, written to memory). Both baselines do less than the server does (no HTTP, no time formatting for the
binary one), so a ratio of 1 would mean the server costs nothing.

Exports of the same 30 days are timed per format (CDF, NetCDF-4, CSV, CEF; `heliohub.export` into a local folder),
beside reading them (`open_dataset` + load), which every export does first.

Two floors are timed beside the binary answer: the same bytes served from memory by tornado in the same blocks
(the HTTP transfer alone, nothing read or formatted) and the server's own work without HTTP (the answer's blocks
built in this process).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fgm_like
import heliohub
from common import DATA, median_seconds, write_results

DATASET = "C4_CP_FGM_SPIN"
DAYS = 30
START, STOP = "2001-01-01T00:00:00Z", f"2001-01-{DAYS + 1:02d}T00:00:00Z"


def store() -> Path:
    folder = DATA / "hapi"
    archive = folder / "store"
    if not (archive / DATASET).exists():
        files = fgm_like.write_daily_cdfs(folder / "cdf", DAYS, first_day=0)
        report = heliohub.ingest([str(f) for f in files], str(archive), progress=False)
        assert report.ok, report.summary()
    return archive


FLOOR_SERVER = """
import sys, asyncio
from tornado import web
size, block = int(sys.argv[1]), 8 << 20
body = bytes(size)
class Blocks(web.RequestHandler):
    async def get(self):
        for start in range(0, size, block):
            self.write(body[start:start + block])
            await self.flush()
async def main():
    web.Application([(r"/hapi/data", Blocks)]).listen(int(sys.argv[2]), "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _started(command: list[str], port: int, what: str) -> tuple[subprocess.Popen, str]:
    """A server process, once it answers on ``port``, and its HAPI base URL."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/hapi"
    for _ in range(300):
        try:
            requests.get(f"{url}/capabilities", timeout=2)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{what} did not start")


def serve(archive: Path) -> tuple[subprocess.Popen, str]:
    return _started([sys.executable, "-m", "heliohub.cli", "serve", "--archive", str(archive), "--port", "8950"],
                    8950, "heliohub serve")


def http_floor(size: int) -> tuple[subprocess.Popen, str]:
    return _started([sys.executable, "-c", FLOOR_SERVER, str(size), "8951"], 8951, "the floor server")


def server_work(archive: Path) -> int:
    from heliohub.serving.hapi import HapiService

    answer = HapiService(str(archive)).data({"dataset": DATASET, "start": START, "stop": STOP, "format": "binary"})
    return sum(len(block) for block in answer.blocks)


def hapi_bytes(url: str, answer_format: str) -> int:
    response = requests.get(f"{url}/data", params={"dataset": DATASET, "start": START, "stop": STOP,
                                                  "format": answer_format}, stream=True, timeout=600)
    response.raise_for_status()
    return sum(len(block) for block in response.iter_content(1 << 20))


def arrays(archive: Path) -> dict[str, np.ndarray]:
    ds = heliohub.open_dataset(DATASET, START.rstrip("Z"), STOP.rstrip("Z"), archive=str(archive))
    return {name: ds[name].values for name in ["time", *ds.data_vars] if ds[name].dtype.kind in "fiuM"}


def pandas_csv(values: dict[str, np.ndarray]) -> int:
    columns = {}
    for name, array in values.items():
        if array.dtype.kind == "M":
            columns[name] = np.char.add(np.datetime_as_string(array, unit="ns"), "Z")
            continue
        flat = array.reshape(len(array), -1)
        for k in range(flat.shape[1]):
            columns[f"{name}_{k}"] = flat[:, k].astype(np.float64 if array.dtype.kind == "f" else np.int32)
    out = io.StringIO()
    pd.DataFrame(columns).to_csv(out, header=False, index=False, na_rep="NaN", lineterminator="\n")
    return len(out.getvalue())


def exports(archive: Path) -> dict[str, dict[str, float]]:
    import shutil

    out = DATA / "hapi" / "exports"
    figures = {}
    read = median_seconds(lambda: heliohub.open_dataset(DATASET, START.rstrip("Z"), STOP.rstrip("Z"),
                                                        archive=str(archive)).load(), repeat=3)[0]
    for answer_format in ("cdf", "netcdf", "csv", "cef"):
        shutil.rmtree(out, ignore_errors=True)
        def one(f: str = answer_format) -> list:
            return heliohub.export(DATASET, START.rstrip("Z"), STOP.rstrip("Z"), format=f, out=out,
                                   archive=str(archive))

        seconds = median_seconds(one, repeat=3)[0]
        (written,) = one()
        figures[answer_format] = {"seconds": round(seconds, 3), "megabytes": round(written.bytes / 1e6, 1),
                                  "records_per_second": round(written.records / seconds),
                                  "vs_reading_alone": round(seconds / read, 2)}
    figures["reading_alone_seconds"] = round(read, 3)
    return figures


def main() -> None:
    archive = store()
    process, url = serve(archive)
    try:
        values = arrays(archive)
        records = len(values["time"])
        binary_bytes, csv_bytes = hapi_bytes(url, "binary"), hapi_bytes(url, "csv")
        floor_process, floor_url = http_floor(binary_bytes)
        try:
            binary, numpy_read, transfer, work = median_seconds(
                lambda: hapi_bytes(url, "binary"), lambda: arrays(archive), lambda: hapi_bytes(floor_url, "binary"),
                lambda: server_work(archive), repeat=5)
        finally:
            floor_process.terminate()
            floor_process.wait()
        csv, pandas_write = median_seconds(lambda: hapi_bytes(url, "csv"), lambda: pandas_csv(values), repeat=3)
    finally:
        process.terminate()
        process.wait()
    export_figures = exports(archive)
    write_results("hapi", {
        "records": records, "binary_bytes": binary_bytes, "csv_bytes": csv_bytes,
        "seconds": {"hapi_binary": round(binary, 3), "open_dataset_numpy": round(numpy_read, 3),
                    "floor_http_transfer_of_the_same_bytes": round(transfer, 3),
                    "floor_server_work_without_http": round(work, 3),
                    "hapi_csv": round(csv, 3), "pandas_to_csv": round(pandas_write, 3)},
        "records_per_second": {"hapi_binary": round(records / binary), "hapi_csv": round(records / csv)},
        "ratios": {"binary_vs_open_dataset": round(numpy_read / binary, 2),
                   "http_transfer_floor_vs_open_dataset": round(numpy_read / transfer, 2),
                   "csv_vs_pandas": round(pandas_write / csv, 2)},
        "goals": {"binary_vs_open_dataset": 0.5, "csv_vs_pandas": 0.8},
        "export": export_figures,
        "met": {"binary": numpy_read / binary >= 0.5, "csv": pandas_write / csv >= 0.8},
    })


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
