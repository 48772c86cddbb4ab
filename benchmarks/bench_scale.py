"""Archive scale (issue 19): what search, open, describe and a daily append cost as a dataset's history grows.

    .venv/bin/python benchmarks/bench_scale.py        # writes benchmarks/results/scale.json

One dataset of daily files of 24 records (the issue's shape) with 365 and with 7,300 days of history, and a store
of 1,000 dataset IDs (the 7,300-day one and 999 of one file each), on a local folder and on the S3 endpoint (moto,
whose request log gives the bytes each step reads). The values are the real C4 FGM file's, repeated with shifted
times (``fgm_like.daily_arrays``); files are handed to the store's write path as read datasets, so the history is
built in minutes rather than by reading 7,300 files. The same steps on one dataset of 4 s data over five years
of daily files (1,826 files of 21,600 records). Each part prefixed ``0.1:`` runs the same steps with the sources of
heliohub 0.1.0 (the layout of JSON attributes before issue 19; ``git archive`` of its commit) in a process of its
own, in the same run: ``scale.json`` keeps both and their ratios (``0.1-vs-now:PART``).

The part ``cluster`` times an ingest of daily FGM-like CDF files (1 MB, 21,600 records each) appended to a
one-day dataset: in one process, and read on a local Dask cluster of 1 and 2 worker processes (one thread each)
either written by the workers (Icechunk's distributed writes, :mod:`heliohub.store.distributed`) or fetched and
written by the client (as before them), alternated and repeated.

The part ``upgrade-4s`` writes the 4 s history twice on S3 as heliohub did before it split manifests (Icechunk's
defaults: one manifest per array, holding its whole history), lets ``heliohub upgrade`` split the second's, and
opens an hour from each in turn. The part ``preload-4s`` appends days to it and opens an hour with Icechunk's default
manifest preload and without it (heliohub's setting), in turn.

The part ``provenance`` times what an ingest reads of a dataset's provenance to learn which of a day's 24 hourly
files it holds, with a year (8,760) and twenty years (175,200) of hourly files behind them, on a folder and on S3.

Goals (issue 19): warm search <= 20 ms and cold <= 200 ms with 1,000 datasets; an hour opened <= 50 ms warm and
<= 150 ms cold whatever the history; a day appended <= 0.3 s to any history; bytes read by search and open flat
(within 1.2x) from 365 to 7,300 files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fgm_like
import heliohub
from common import DATA, RELEASE_0_1, run_with_release, write_results
from moto_s3 import requests_seen, s3_bucket

try:  # this release's store
    from heliohub.store import access, catalog
    from heliohub.store.ingest import _Loaded, ingest_dataset, write_batch
    from heliohub.store.location import StoreLocation
    from heliohub.store.provenance import FileEntry, spans_of
except ModuleNotFoundError:  # heliohub 0.1.0's, when a part prefixed "0.1:" runs this script with its sources
    from heliohub.archive import Archive as StoreLocation
    from heliohub.ingestion import _Loaded, ingest_dataset
    from heliohub.merge import FileEntry, spans_of

    from heliohub import access, catalog

    def write_batch(location: StoreLocation, by_dataset: dict[str, list[_Loaded]]) -> None:
        """0.1's ingest of a batch: the pending mark, each dataset's commit, the catalog's."""
        catalog.mark_pending(location, sorted(by_dataset))
        for dataset_id, items in sorted(by_dataset.items()):
            ingest_dataset(location, dataset_id, items)
        catalog.refresh(location, sorted(by_dataset))

BIG = "C1_CP_FGM_DAILY"
FOUR_S = "C1_CP_FGM_SPIN"
RECORDS = 24
HISTORIES = (365, 7300)
FOUR_S_DAYS = 1826
OTHERS = 999
REPEAT = 5
if os.environ.get("HELIOHUB_BENCH_SMOKE"):  # a quick run of every step, to check the script itself
    HISTORIES, FOUR_S_DAYS, OTHERS, REPEAT = (5, 20), 6, 3, 2
BATCH_FILES = {BIG: 1000, FOUR_S: 365}
"""Files per commit while a history is built, as ingest batches give them (a year of 4 s data is some 380 MB of
arrays, under the ingest's 512 MiB batches)."""


def day_dataset(day: int, dataset_id: str = BIG) -> xr.Dataset:
    """Day ``day`` (from 2001-01-01) of real FGM values: every 4 s record for ``FOUR_S``, else 24 records an hour
    apart."""
    arrays = fgm_like.daily_arrays(day)
    step = 1 if dataset_id == FOUR_S else len(arrays["time"]) // RECORDS
    count = len(arrays["time"]) // step
    data = {name: (("time", *[f"{name}_dim{i}" for i in range(1, v.ndim)]), v[::step][:count])
            for name, v in arrays.items() if name != "time"}
    ds = xr.Dataset(data, coords={"time": arrays["time"][::step][:count]})
    cadence = "4 s" if step == 1 else "hourly"
    ds.attrs.update({"dataset_id": dataset_id, "mission": "Cluster", "observatory": "Cluster-1",
                     "instrument": "FGM", "title": f"{dataset_id}: magnetic field, {cadence} (benchmark)"})
    ds["B_vec_xyz_gse"].attrs["units"] = "nT"
    return ds


def item(day: int, dataset_id: str = BIG) -> _Loaded:
    ds = day_dataset(day, dataset_id)
    name = f"{dataset_id}__{str(ds.time.values[0])[:10].replace('-', '')}_V01.cdf"
    size = {"size": ds.nbytes} if "size" in FileEntry.__dataclass_fields__ else {}  # 0.1 kept no size
    entry = FileEntry(file=name, key=name[:-8], version="01", checksum=f"{dataset_id}-{day:064d}"[-64:],
                      records=ds.sizes["time"], spans=spans_of(ds), **size)
    return _Loaded(name, entry, dataset_id, ds)


def build(location: StoreLocation, days: int, others: int = 0, dataset_id: str = BIG) -> None:
    step = BATCH_FILES[dataset_id]
    for start in range(0, days, step):
        ingest_dataset(location, dataset_id, [item(d, dataset_id) for d in range(start, min(days, start + step))])
    ids = [dataset_id]
    for other in range(others):
        dataset_id = f"C{other % 4 + 1}_CP_OTHER_{other:04d}"
        ingest_dataset(location, dataset_id, [item(other % 365, dataset_id)])
        ids.append(dataset_id)
    catalog.refresh(location, ids)


def append(location: StoreLocation, day: int, dataset_id: str = BIG) -> float:
    """A daily ingest's store work (its batch's: pending mark, the dataset's commit, the catalog's)."""
    new = item(day, dataset_id)
    started = time.perf_counter()
    write_batch(location, {dataset_id: [new]})
    return time.perf_counter() - started


def commit_floor(location: StoreLocation) -> float:
    """The floor under an append's store work: three Icechunk commits (the pending mark, the dataset, the catalog's
    row), each of one small array's one chunk, nothing of heliohub's."""
    import zarr

    repos = [location.repository(f"FLOOR_{i}", create=True) for i in range(3)]
    for repo in repos:
        session = repo.writable_session("main")
        zarr.create_array(session.store, name="x", shape=(24,), chunks=(24,), dtype="int64")
        session.commit("floor")

    def three() -> None:
        for repo in repos:
            session = repo.writable_session("main")
            zarr.open_array(session.store, path="x", mode="r+")[:] = np.arange(24)
            session.commit("floor")

    return timed(three)


def endpoint_floor(url: str, location: StoreLocation, first_day: int, dataset_id: str = BIG) -> dict[str, object]:
    """The floor the endpoint itself puts under an append: the requests a day's append made (from the endpoint's
    log: every GET, HEAD and PUT, the 404s too) made again over plain HTTP (urllib3, kept-alive connections, each
    request signed beforehand with botocore's SigV4), nothing else of heliohub's, Zarr's or Icechunk's: GETs and
    HEADs of the same objects, PUTs of as many bytes to keys of their own, one after another and 16 at a time; this
    process's and the endpoint's CPU time per append beside them. Medians over REPEAT appends, each replayed right
    after it."""
    import concurrent.futures

    import psutil
    import urllib3
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    signer = S3SigV4Auth(Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]), "s3",
                         os.environ["AWS_REGION"])
    http = urllib3.PoolManager(maxsize=16, retries=False)

    def signed(verb: str, path: str, body: bytes = b"") -> tuple[str, str, dict[str, str], bytes]:
        request = AWSRequest(method=verb, url=endpoint + path, data=body)
        signer.add_auth(request)
        return verb, endpoint + path, dict(request.headers.items()), body

    def send(request: tuple[str, str, dict[str, str], bytes]) -> int:
        verb, address, headers, body = request
        return http.request(verb, address, headers=headers, body=body or None).status

    me = psutil.Process()
    server = next(c for c in me.children() if "moto" in " ".join(c.cmdline()))
    runs: dict[str, list[float]] = {key: [] for key in ("append_s", "requests", "replay_one_by_one_s",
                                                          "replay_16_at_a_time_s", "cpu_s", "endpoint_cpu_s")}
    for repeat in range(REPEAT):
        ours, theirs = sum(me.cpu_times()[:2]), sum(server.cpu_times()[:2])
        with requests_seen(url) as lines:
            runs["append_s"].append(append(location, first_day + repeat, dataset_id))
        runs["cpu_s"].append(sum(me.cpu_times()[:2]) - ours)
        runs["endpoint_cpu_s"].append(sum(server.cpu_times()[:2]) - theirs)
        made = [(m[1], m[2], int(m[3])) for line in lines
                if (m := re.search(r'"(GET|HEAD|PUT) (/[^? ]+)[^"]*" (\d{3})', line))]
        requests = [signed("PUT", f"/{url[5:]}/replayed/{repeat}-{number}",
                           bytes(len(http.request("GET", endpoint + path,
                                                  headers=signed("GET", path)[2]).data)))
                    if verb == "PUT" else signed(verb, path) for number, (verb, path, _) in enumerate(made)]
        runs["requests"].append(len(requests))
        for _ in range(2):  # the second run of each is kept: the first finds the connections to make
            started = time.perf_counter()
            answers = [send(request) for request in requests]
            one_by_one = time.perf_counter() - started
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                list(pool.map(send, requests))
            at_once = time.perf_counter() - started
        if [a // 100 for a in answers] != [status // 100 for _, _, status in made]:
            raise RuntimeError(f"the endpoint answered the replayed requests otherwise: {answers}, not "
                               f"{[status for _, _, status in made]}")
        runs["replay_one_by_one_s"].append(one_by_one)
        runs["replay_16_at_a_time_s"].append(at_once)
    return {f"endpoint_floor_{key}": statistics.median(values) for key, values in runs.items()}


def timed(function, repeat: int = REPEAT, cold: bool = False) -> float:
    values = []
    for _ in range(repeat):
        if cold:
            access.clear_caches()
        started = time.perf_counter()
        function()
        values.append(time.perf_counter() - started)
    return statistics.median(values)


def objects_read(url: str, function) -> dict[str, int]:
    """The objects ``function`` GETs, cold: their sizes (moto logs no response sizes; an upper bound where a GET
    asked for a range), the store's own metadata (refs, snapshots, manifests) apart from the chunks of values,
    and the time to GET those chunks again with s3fs, side by side, nothing else: the floor of a warm read."""
    import s3fs

    access.clear_caches()
    with requests_seen(url) as lines:
        function()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)  # a cached one would still point at an earlier part's server
    paths = [m[1].lstrip("/") for line in lines if (m := re.search(r'"GET (/[^? ]+)[^"]*" 20\d', line))]
    sizes = {path: fs.info(path)["size"] for path in paths}
    chunks = [path for path in paths if "/chunks/" in path]
    out = {"bytes": sum(sizes[p] for p in paths), "metadata_bytes": sum(sizes[p] for p in paths if p not in chunks),
           "chunk_bytes": sum(sizes[p] for p in chunks), "chunks": len(chunks)}
    if chunks:
        out["floor_get_chunks_ms"] = timed(lambda: fs.cat(chunks)) * 1e3
    return out


def hour_opener(location: StoreLocation, days: int, dataset_id: str = BIG):
    """Opening and loading an hour in the middle of a history of ``days``."""
    start = str(np.datetime64("2001-01-01") + np.timedelta64(days // 2, "D")) + "T06:00"

    def open_hour() -> None:
        heliohub.open_dataset(dataset_id, start, start[:-5] + "07:00", archive=location).load()

    return open_hour


def measure(location: StoreLocation, days: int, url: str | None, dataset_id: str = BIG) -> dict[str, object]:
    def search() -> None:
        heliohub.search("fgm", archive=location)

    open_hour = hour_opener(location, days, dataset_id)
    out: dict[str, object] = {
        "search_cold_ms": timed(search, cold=True) * 1e3, "search_warm_ms": timed(search) * 1e3,
        "open_hour_cold_ms": timed(open_hour, cold=True) * 1e3, "open_hour_warm_ms": timed(open_hour) * 1e3,
        "describe_ms": timed(lambda: heliohub.describe(dataset_id, archive=location)) * 1e3,
        "append_day_s": statistics.median(append(location, days + i, dataset_id) for i in range(REPEAT)),
        "floor_three_commits_s": commit_floor(location),
    }
    if url is not None:
        out.update(endpoint_floor(url, location, days + REPEAT, dataset_id))
        out["search_bytes"] = objects_read(url, search)["bytes"]
        out.update({f"open_hour_{key}": value for key, value in objects_read(url, open_hour).items()})
    return _rounded(out)


def _rounded(out: dict[str, object]) -> dict[str, object]:
    return {k: round(v, 1) if isinstance(v, float) and k.endswith("ms") else round(v, 3) if isinstance(v, float)
            else v for k, v in out.items()}


def upgrade_of_unsplit_manifests() -> dict[str, object]:
    """Two copies of the 4 s history written on S3 as before ``location.repository_config`` (Icechunk's defaults:
    one manifest per array holding its whole history, chunks over 512 bytes as objects); ``heliohub upgrade``
    splits the manifests of the second, and an hour is opened from each in turn."""
    from heliohub.store import location as settings
    from heliohub.store.upgrade import upgrade

    with s3_bucket("scale-upgrade") as url:
        before, after = (StoreLocation.resolve(f"{url}/{name}") for name in ("before", "after"))
        kept = settings.MANIFEST_SPLIT_CHUNKS, settings.INLINE_CHUNK_BYTES
        settings.MANIFEST_SPLIT_CHUNKS, settings.INLINE_CHUNK_BYTES = 1 << 30, 512
        try:
            for location in (before, after):
                build(location, FOUR_S_DAYS, dataset_id=FOUR_S)
        finally:
            settings.MANIFEST_SPLIT_CHUNKS, settings.INLINE_CHUNK_BYTES = kept
            access.clear_caches()
        started = time.perf_counter()
        out: dict[str, object] = {"repositories_split": upgrade(after)[1], "upgrade_s": time.perf_counter() - started}
        opens = {"before": hour_opener(before, FOUR_S_DAYS, FOUR_S), "after": hour_opener(after, FOUR_S_DAYS, FOUR_S)}
        times: dict[str, list[float]] = {f"{when}_{how}": [] for when in opens for how in ("cold", "warm")}
        for _ in range(3 * REPEAT):  # alternated, the machine's noise shared
            for when, open_hour in opens.items():
                times[f"{when}_cold"].append(timed(open_hour, repeat=1, cold=True))
                times[f"{when}_warm"].append(timed(open_hour, repeat=1))
        for when, location in (("before", before), ("after", after)):
            repo = location.repository(FOUR_S)
            manifests = repo.lookup_snapshot(repo.lookup_branch("main")).manifests
            out[f"{when}_largest_manifest_refs"] = max(m.num_chunk_refs for m in manifests)
            out[f"{when}_open_hour_cold_ms"] = statistics.median(times[f"{when}_cold"]) * 1e3
            out[f"{when}_open_hour_warm_ms"] = statistics.median(times[f"{when}_warm"]) * 1e3
            out.update({f"{when}_open_hour_{key}": value
                        for key, value in objects_read(url, opens[when]).items() if "floor" not in key})
        return _rounded(out)


def manifest_preload() -> dict[str, object]:
    """The 4 s history on S3 (manifests split along time), its repository made as before heliohub turned Icechunk's
    manifest preload off; opened with Icechunk's default preload and without it in turn: a day appended (and the
    requests it makes), an hour opened cold and warm."""
    import icechunk

    from heliohub.store import location as settings

    ours = settings.repository_config

    def preloading() -> icechunk.RepositoryConfig:
        config = ours()
        config.manifest = icechunk.ManifestConfig(splitting=config.manifest.splitting)  # Icechunk's default preload
        return config

    with s3_bucket("scale-preload") as url:
        location = StoreLocation.resolve(f"{url}/store")
        settings.repository_config = preloading
        try:
            build(location, FOUR_S_DAYS, dataset_id=FOUR_S)
            open_hour = hour_opener(location, FOUR_S_DAYS, FOUR_S)
            figures: dict[str, list[float]] = {}
            day = FOUR_S_DAYS
            for _ in range(3 * REPEAT):  # alternated, the machine's noise shared
                for name, config in (("default", preloading), ("none", ours)):
                    settings.repository_config = config
                    access.clear_caches()  # the repositories opened again with this configuration
                    append(location, day, FOUR_S)
                    with requests_seen(url) as lines:
                        took = append(location, day + 1, FOUR_S)
                    day += 2
                    requests = sum(bool(re.search(r'"(GET|HEAD|PUT|POST|DELETE) ', line)) for line in lines)
                    for key, value in (("append_day_s", took), ("append_requests", requests),
                                       ("open_hour_cold_ms", timed(open_hour, repeat=1, cold=True) * 1e3),
                                       ("open_hour_warm_ms", timed(open_hour, repeat=1) * 1e3)):
                        figures.setdefault(f"preload_{name}_{key}", []).append(value)
        finally:
            settings.repository_config = ours
            access.clear_caches()
    return _rounded({key: statistics.median(values) for key, values in figures.items()})


CLUSTER_DAYS = 6 if os.environ.get("HELIOHUB_BENCH_SMOKE") else 120


def _warm() -> None:
    """On a worker: what reading and writing import."""
    import heliohub.readers.cdf
    import heliohub.store.distributed
    import heliohub.store.ingest  # noqa: F401


def cluster_ingests(scratch: Path) -> dict[str, object]:
    """The ``cluster`` part (see the module's docstring)."""
    from dask.distributed import Client, LocalCluster

    from heliohub.store import ingest as ingest_module

    files = fgm_like.write_daily_cdfs(DATA / "fgm_daily_cdf", CLUSTER_DAYS)
    base = scratch / "one-day"
    assert heliohub.ingest(files[:1], base, progress=False).ok

    def run(label: str, client: object = None, through_client: bool = False) -> float:
        target = scratch / label
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(base, target)
        kept = ingest_module.after_the_end
        if through_client:  # then the files are fetched and streamed in here, as before distributed writes
            ingest_module.after_the_end = lambda *arguments: False
        try:
            cpu, started = time.process_time(), time.perf_counter()
            report = heliohub.ingest(files[1:], target, client=client, progress=False)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            ingest_module.after_the_end = kept
        assert report.ok, report.summary()
        return elapsed, cpu

    times: dict[str, list[float]] = {}

    def record(label: str, measured: tuple[float, float]) -> None:
        times.setdefault(f"{label}_s", []).append(measured[0])
        times.setdefault(f"{label}_client_cpu_s", []).append(measured[1])

    for _ in range(REPEAT if REPEAT < 5 else 3):
        record("one_process", run("here"))
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster, Client(cluster) as client:
                client.run(_warm)  # the workers' imports (2-3 s) are not the ingest's
                record(f"workers_{workers}_written_by_workers", run("workers", client))
                record(f"workers_{workers}_written_by_client", run("client", client, through_client=True))
    out: dict[str, object] = {"files": len(files) - 1, "mb": round(sum(f.stat().st_size for f in files[1:]) / 1e6, 1),
                              "client_cpu": "CPU seconds of the ingesting process (with the local cluster's "
                                            "scheduler, which runs in it), all its threads"}
    out.update({key: round(statistics.median(values), 2) for key, values in times.items()})
    for workers in (1, 2):
        by_workers, by_client = (out[f"workers_{workers}_written_by_{who}_s"] for who in ("workers", "client"))
        out[f"workers_{workers}_vs_one_process"] = round(out["one_process_s"] / by_workers, 2)
        out[f"workers_{workers}_vs_written_by_client"] = round(by_client / by_workers, 2)
    out["two_workers_vs_one"] = round(out["workers_1_written_by_workers_s"] / out["workers_2_written_by_workers_s"], 2)
    return out


HOURLY_FILES = (8760, 175_200)  # hourly files over one year and over twenty
if os.environ.get("HELIOHUB_BENCH_SMOKE"):
    HOURLY_FILES = (48, 480)


def hourly_entries(first: int, stop: int) -> list[tuple[FileEntry, str]]:
    """Provenance rows of hourly files ``first`` to ``stop`` (from 2001-01-01T00), as an ingest adds them."""
    rows = []
    for index in range(first, stop):
        hour = np.datetime64("2001-01-01T00", "h") + np.timedelta64(index, "h")
        name = f"C1_CP_FGM_HOURLY__{str(hour).replace('-', '').replace('T', '_')}0000_V01.cdf"
        rows.append((FileEntry(file=name, key=name[:-8], version="01", checksum=f"{index:064x}", records=900,
                               spans={"time": (str(hour), str(hour + np.timedelta64(1, "h")))}, size=40_000),
                     "ingested"))
    return rows


def provenance_lookups(scratch: Path) -> dict[str, object]:
    """What an ingest reads to learn which files a dataset of hourly files holds (``provenance.known_files``, for
    a day of 24 new files) with a year and twenty years of files behind it, on a folder and on S3: the provenance
    table alone is written (in commits of 20,000 rows), no records."""
    import zarr

    from heliohub.store import provenance

    def measure(location: StoreLocation, files: int) -> float:
        repo = location.repository(f"C1_CP_FGM_HOURLY_{files}", create=True)
        for first in range(0, files, 20_000):
            session = repo.writable_session("main")
            stop = min(files, first + 20_000)
            provenance.append(zarr.open_group(session.store, mode="a"), hourly_entries(first, stop),
                              pd.Timestamp.now("UTC"), stop)
            session.commit("provenance rows")
        keys = {entry.key for entry, _ in hourly_entries(files, files + 24)}

        def lookup() -> None:
            root = zarr.open_group(repo.readonly_session("main").store, mode="r")
            provenance.known_files(root, "the benchmark's table", keys)

        return timed(lookup)

    out: dict[str, object] = {}
    location = StoreLocation.resolve(scratch / "store-hourly")
    for files in HOURLY_FILES:
        out[f"folder_{files}_files_s"] = round(measure(location, files), 3)
    with s3_bucket("provenance-hourly") as url:
        location = StoreLocation.resolve(f"{url}/store")
        for files in HOURLY_FILES:
            out[f"s3_{files}_files_s"] = round(measure(location, files), 3)
    small, large = HOURLY_FILES
    for kind in ("folder", "s3"):
        out[f"{kind}_growth"] = round(out[f"{kind}_{large}_files_s"] / out[f"{kind}_{small}_files_s"], 1)
    return out


STORE_PARTS = [f"{kind}-{days}" for kind in ("folder", "s3") for days in HISTORIES] + [
    f"{kind}-4s-{FOUR_S_DAYS}" for kind in ("folder", "s3")] + ["datasets-1000"]
PARTS = STORE_PARTS + ["upgrade-4s", "preload-4s", "cluster", "provenance"] + [f"0.1:{part}" for part in STORE_PARTS]
"""Every part; ``0.1:PART`` runs PART with heliohub 0.1.0's sources (``common.RELEASE_0_1``) in a process of its
own: the layout of before issue 19, in the same run."""


def run_part(part: str, scratch: Path) -> dict[str, object]:
    if part.startswith("0.1:"):
        output = run_with_release([__file__, "--print", part[4:]])
        return {**json.loads(output.splitlines()[-1]), "code": f"heliohub 0.1.0 ({RELEASE_0_1})"}
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        if part == "cluster":
            return cluster_ingests(scratch)
        if part == "provenance":
            return provenance_lookups(scratch)
        if part == "upgrade-4s":
            return upgrade_of_unsplit_manifests()
        if part == "preload-4s":
            return manifest_preload()
        if part == "datasets-1000":
            location = StoreLocation.resolve(scratch / "store-1000-datasets")
            started = time.perf_counter()
            build(location, HISTORIES[-1], OTHERS)
            return {"build_s": round(time.perf_counter() - started, 1), **measure(location, HISTORIES[-1], None)}
        kind, *four_s, days = part.split("-")
        dataset_id = FOUR_S if four_s else BIG
        if kind == "folder":
            location = StoreLocation.resolve(scratch / f"store-{days}")
            build(location, int(days), dataset_id=dataset_id)
            return measure(location, int(days), None, dataset_id)
        with s3_bucket(f"scale-{days}") as url:
            location = StoreLocation.resolve(f"{url}/store")
            build(location, int(days), dataset_id=dataset_id)
            return measure(location, int(days), url, dataset_id)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(parts: list[str]) -> None:
    """Run ``parts`` (all when none is named: see ``PARTS``), adding each result to scale.json as it comes (a part
    run again replaces its earlier result)."""
    if parts[:1] == ["--print"]:  # one part, its result printed (how a "0.1:" part is run)
        print(json.dumps(run_part(parts[1], DATA / "scale-0.1")))
        return
    path = Path(__file__).resolve().parent / "results" / "scale.json"
    results: dict[str, object] = json.loads(path.read_text()) if path.exists() and parts else {}
    results["records_per_file"] = RECORDS
    for part in parts or PARTS:
        results[part] = {**run_part(part, DATA / "scale"), "measured_at": str(pd.Timestamp.now("UTC"))}
        print(part, results[part], flush=True)
        for prefix in ("", "0.1:"):
            for kind in ("folder", "s3"):
                small, large = (results.get(f"{prefix}{kind}-{days}") for days in (HISTORIES[0], HISTORIES[-1]))
                if isinstance(small, dict) and isinstance(large, dict):
                    results[f"{prefix}{kind}-growth"] = {
                        key: round(large[key] / small[key], 2) for key in small
                        if isinstance(small[key], int | float) and small[key]
                        and isinstance(large.get(key), int | float)}
        for name in STORE_PARTS:
            now, then = results.get(name), results.get(f"0.1:{name}")
            if isinstance(now, dict) and isinstance(then, dict):
                results[f"0.1-vs-now:{name}"] = {key: round(then[key] / now[key], 2) for key in now
                                                 if isinstance(now[key], int | float) and now[key]
                                                 and isinstance(then.get(key), int | float)}
        if not os.environ.get("HELIOHUB_BENCH_SMOKE"):  # a smoke run checks the script: its figures are not kept
            write_results("scale", {k: v for k, v in results.items() if k not in ("benchmark", "date", "machine")})


if __name__ == "__main__":
    main(sys.argv[1:])
