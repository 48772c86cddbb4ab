"""``heliohub fetch``: from an archive's public interfaces into the download folder, and on into the store.

Each download (a package for a time window, or one file) is kept in its own folder under
``<download dir>/<source>/<dataset ID>/<key>/``, written as ``.<key>.partial/`` and renamed only once every file
in it has been checked whole, with a manifest (the request, file names, sizes, SHA-256, and the stores it went
into). A re-run skips every download whose folder exists and ingests only files not yet in the store it is given,
so an interrupted fetch is completed by running it again, and nothing half-downloaded is ever ingested.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FetchError, HeliohubError
from ..store.ingest import IngestReport, ingest
from ..store.location import StoreLocation
from .base import ArchiveSource, Item
from .http import Http, HttpError, PackageTooLarge
from .packages import check_whole, replace_folder, unpack
from .registry import archive_source

log = logging.getLogger(__name__)

MANIFEST = ".heliohub-fetch.json"
DOWNLOAD_DIR = "HELIOHUB_DOWNLOAD_DIR"
TimeLike = str | datetime | date | np.datetime64 | pd.Timestamp


@dataclass
class ItemResult:
    """What became of one download."""

    dataset_id: str
    key: str
    status: str
    """``fetched``; ``kept`` (fetched by an earlier run); ``empty`` (the archive has nothing there); ``failed``."""
    files: list[str] = field(default_factory=list)
    reason: str | None = None
    wire_bytes: int = 0
    """Bytes the download took on the wire (for a kept one, what it took when it was fetched)."""


@dataclass
class FetchReport:
    """The outcome of a fetch: each download, and the ingest that followed (when asked for)."""

    source: str
    url: str
    download_dir: str
    datasets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Datasets that matched but were left out, and why (for example: not delivered in the format asked)."""
    items: list[ItemResult] = field(default_factory=list)
    ingest: IngestReport | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if i.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and (self.ingest is None or self.ingest.ok)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.status] = counts.get(item.status, 0) + 1
        return counts

    def to_json(self) -> str:
        ingest_part = json.loads(self.ingest.to_json()) if self.ingest is not None else None
        return json.dumps({"source": self.source, "url": self.url, "download_dir": self.download_dir, "ok": self.ok,
                           "datasets": self.datasets, "notes": self.notes, "counts": self.counts(),
                           "seconds": round(self.seconds, 3),
                           "items": [asdict(i) for i in self.items], "ingest": ingest_part}, indent=2)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts().items())) or "nothing to fetch"
        lines = [f"{len(self.items)} download(s) of {', '.join(self.datasets) or 'no dataset'} from {self.url} in "
                 f"{self.seconds:.1f} s: {counts} (kept in {self.download_dir})"]
        lines += [f"  left out {note}" for note in self.notes]
        lines += [f"  failed {i.dataset_id} {i.key}: {i.reason}" for i in self.failed]
        if self.ingest is not None:
            lines += ["ingest: " + line for line in self.ingest.summary().splitlines()]
        return "\n".join(lines)


def default_download_dir() -> Path:
    """``HELIOHUB_DOWNLOAD_DIR``, else ``$XDG_CACHE_HOME/heliohub/fetch`` (``~/.cache/heliohub/fetch``)."""
    if os.environ.get(DOWNLOAD_DIR):
        return Path(os.environ[DOWNLOAD_DIR]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "heliohub" / "fetch"


def _time(value: TimeLike, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise FetchError(f"{what}={value!r} is not a time (use ISO text such as 2001-06-11T20:00)") from None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def fetch(source: str, dataset_ids: list[str] | str, start: TimeLike, end: TimeLike, *,
          download_dir: str | os.PathLike[str] | None = None, ingest_into: Any = None, url: str | None = None,
          delivery_format: str | None = None, window: str | pd.Timedelta = "1D", timeout: float = 60.0,
          retries: int = 4, backoff: float = 2.0, request_limit: int | None = None,
          progress: bool | None = None) -> FetchReport:
    """Fetch datasets from an ESA archive for a time range, and ingest them into a store when asked.

    Parameters
    ----------
    source:
        ``csa`` (Cluster Science Archive), ``soar`` (Solar Orbiter), ``soho`` (SOHO Science Archive) or
        ``proba2`` (PROBA2 Science Center).
    dataset_ids:
        The archive's dataset IDs; ``*`` and ``?`` are wildcards expanded through the archive's inventory.
    start, end:
        The time range (UTC).
    download_dir:
        Where downloads are kept between runs (default: ``HELIOHUB_DOWNLOAD_DIR`` or ``~/.cache/heliohub/fetch``).
    ingest_into:
        An archive store (folder, ``s3://`` URL or :class:`heliohub.store.location.Archive`): the fetched files are
        ingested into it. None: download only.
    url:
        The archive's base URL (default: the source's setting, e.g. ``HELIOHUB_CSA_URL``, else the public one).
    delivery_format:
        CSA only: ``CEF`` (its default), ``CDF`` or ``CDF_ISTP``.
    window:
        CSA only: the time span of one request (the archive's synchronous limit is 1 GB compressed; a window it
        refuses as too large is asked for in halves).
    timeout, retries, backoff:
        Seconds to wait for an answer; how many times to retry a failed request; seconds before the first retry
        (doubling after).
    request_limit:
        The most bytes the archive delivers in one request (default: the source's, the CSA's 1 GB): windows are
        sized to stay under half of it.
    """
    started = time.perf_counter()
    chosen = archive_source(source, delivery_format)
    if request_limit is not None:
        chosen.request_limit = request_limit
    base = url or os.environ.get(chosen.setting) or chosen.default_url
    http = Http(base, f"--url or {chosen.setting}", timeout=timeout, retries=retries, backoff=backoff)
    first, last = _time(start, "start"), _time(end, "end")
    if first >= last:
        raise FetchError(f"start {first} is not before end {last}")
    # a bad store fails before downloads
    store = StoreLocation.resolve(ingest_into) if ingest_into is not None else None
    root = Path(download_dir).expanduser() if download_dir else default_download_dir()
    report = FetchReport(source, http.base_url, str(root))
    patterns = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids)
    for pattern in patterns:
        offered, notes = chosen.datasets(http, pattern)
        report.datasets += [d for d in offered if d not in report.datasets]
        report.notes += [n for n in notes if n not in report.notes]
    planned = {dataset_id: chosen.items(http, dataset_id, first, last, pd.Timedelta(window))
               for dataset_id in report.datasets}
    report.items = _download_all(chosen, http, planned, root / source, progress)
    if store is not None:
        report.ingest = _ingest(report, store, progress)
    report.seconds = time.perf_counter() - started
    return report


SIZE_MARGIN = 0.5
"""A window is planned to hold at most this share of the archive's request limit (the estimate is an average)."""


def _download_all(source: ArchiveSource, http: Http, planned: dict[str, list[Item]], root: Path,
                  progress: bool | None) -> list[ItemResult]:
    """Every planned download, ``source.parallel`` at a time, under one progress bar. Where the archive limits a
    request's size, each dataset's first window is fetched first: its bytes per record (with the inventory's
    record counts) size the dataset's other windows before they are asked for."""
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(map(len, planned.values())), unit="downloads", file=sys.stderr,
               disable=None if progress is None else not progress)
    found: dict[Item, list[ItemResult]] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, source.parallel)) as pool:
            def run(items: list[Item]) -> None:
                for item, results in zip(items, pool.map(lambda i: _get(source, http, i, root), items),
                                         strict=True):
                    found[item] = results
                    bar.update(1)

            if source.request_limit is None:
                run([item for items in planned.values() for item in items])
            else:
                run([items[0] for items in planned.values() if items])
                rest = {dataset_id: _sized(source, items[1:], _bytes_per_record(items[0], found[items[0]]))
                        for dataset_id, items in planned.items() if items}
                bar.total = len(found) + sum(map(len, rest.values()))
                bar.refresh()
                run([item for items in rest.values() for item in items])
                planned = {dataset_id: planned[dataset_id][:1] + rest[dataset_id] for dataset_id in rest}
    finally:
        bar.close()
    return [result for items in planned.values() for item in items for result in found[item]]


def _bytes_per_record(item: Item, results: list[ItemResult]) -> float | None:
    wire = sum(r.wire_bytes for r in results)
    return wire / item.records if item.records and wire else None


def _sized(source: ArchiveSource, items: list[Item], bytes_per_record: float | None) -> list[Item]:
    """``items``, each whose estimated size passes the margin of the archive's limit cut into enough parts."""
    if bytes_per_record is None:
        return items
    sized = []
    for item in items:
        estimate = (item.records or 0) * bytes_per_record
        parts = math.ceil(estimate / (source.request_limit * SIZE_MARGIN))
        cut = source.split(item, parts) if parts > 1 else None
        if cut:
            log.info("%s %s: about %.0f MB, asked for in %d parts", item.dataset_id, item.key, estimate / 1e6,
                     len(cut))
        sized += cut or [item]
    return sized


def _folder(root: Path, item: Item) -> Path:
    return root / item.dataset_id / item.key


def _manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    scratch = folder / f"{MANIFEST}.tmp"
    scratch.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    scratch.replace(folder / MANIFEST)


def _kept(folder: Path) -> dict[str, Any] | None:
    """The manifest of an earlier run's download, if its files are all still there as it recorded them."""
    manifest = _manifest(folder)
    if manifest is None:
        return None
    for f in manifest["files"]:
        path = folder / f["name"]
        if not path.is_file() or path.stat().st_size != f["bytes"]:
            log.warning("%s: %s is missing or changed since it was fetched; fetching it again", folder, f["name"])
            return None
    return manifest


def _get(source: ArchiveSource, http: Http, item: Item, root: Path) -> list[ItemResult]:
    """Download one item into its folder (unless an earlier run did), checked whole; in parts when too large."""
    folder = _folder(root, item)
    manifest = _kept(folder)
    if manifest is not None:
        return [ItemResult(item.dataset_id, item.key, "kept" if manifest["files"] else "empty",
                           [str(folder / f["name"]) for f in manifest["files"]],
                           wire_bytes=manifest.get("wire_bytes", 0))]
    partial = folder.with_name(f".{item.key}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    what = f"{item.dataset_id} {item.key} from {http.url(item.path)}"
    try:
        names, wire = download_item(source, http, item, partial, what)
    except PackageTooLarge as error:
        shutil.rmtree(partial, ignore_errors=True)
        parts = source.split(item, 2)
        if parts is None:
            return [ItemResult(item.dataset_id, item.key, "failed", reason=str(error))]
        log.info("%s: asking for it in %d parts", error, len(parts))
        return [result for part in parts for result in _get(source, http, part, root)]
    except FetchError as error:
        shutil.rmtree(partial, ignore_errors=True)
        return [ItemResult(item.dataset_id, item.key, "failed", reason=str(error))]
    partial.mkdir(parents=True, exist_ok=True)
    files = [{"name": n, "bytes": (partial / n).stat().st_size,
              "sha256": hashlib.sha256((partial / n).read_bytes()).hexdigest()} for n in names]
    _write_manifest(partial, {"dataset_id": item.dataset_id, "key": item.key, "url": http.url(item.path),
                              "params": item.params, "files": files, "ingested_into": [], "wire_bytes": wire,
                              "fetched": pd.Timestamp.now("UTC").isoformat()})
    replace_folder(partial, folder)
    return [ItemResult(item.dataset_id, item.key, "fetched" if names else "empty", [str(folder / n) for n in names],
                       wire_bytes=wire)]


def download_item(source: ArchiveSource, http: Http, item: Item, partial: Path, what: str) -> tuple[list[str], int]:
    """The names of the checked files the download left in ``partial`` (none: the archive has no data there),
    and the bytes it took on the wire."""
    scratch = partial / ".download"
    try:
        got = http.download(item.path, item.params, scratch)
    except HttpError as error:
        if error.status in source.empty_statuses and not isinstance(error, PackageTooLarge):
            shutil.rmtree(partial, ignore_errors=True)
            return [], 0
        raise
    if got.status == 204 or got.file_bytes == 0:  # "no content": nothing in this window
        scratch.unlink()
        return [], got.wire_bytes
    if item.package:
        files = unpack(scratch, partial, what)
        scratch.unlink()
        return sorted(f.name for f in files), got.wire_bytes
    data = scratch.read_bytes()
    check_whole(data, what)
    if item.size is not None and len(data) != item.size:
        raise FetchError(f"{what}: {len(data)} bytes arrived, the archive's inventory says {item.size}")
    name = Path(item.filename or got.filename or item.key).name
    scratch.rename(partial / name)
    return [name], got.wire_bytes


def _ingest(report: FetchReport, store: StoreLocation, progress: bool | None) -> IngestReport:
    """Ingest the files of every download not yet ingested into ``store``, and note the ones that went in."""
    pending = {}
    for result in report.items:
        if result.status not in ("fetched", "kept"):
            continue
        folder = Path(result.files[0]).parent
        if store.url not in _manifest(folder)["ingested_into"]:
            pending[folder] = result.files
    files = [f for names in pending.values() for f in names]
    outcome = ingest(files, store, progress=progress) if files else IngestReport(store.url)
    refused = {r.path for r in outcome.refused}
    for folder, names in pending.items():
        if not refused & set(names):
            manifest = _manifest(folder)
            manifest["ingested_into"].append(store.url)
            _write_manifest(folder, manifest)
    return outcome


def main_fetch(args: Any, emit: Any = print) -> int:
    """``heliohub fetch``: 0 when everything was fetched (and ingested), 1 when some downloads failed or files
    were refused, 2 when the fetch could not run (the message says why)."""
    missing = [what for what, value in (("SOURCE", args.source), ("DATASET_ID", args.dataset_ids),
                                        ("--start", args.start), ("--end", args.end)) if not value]
    if missing:
        print(f"heliohub fetch: give {', '.join(missing)} (or --check to ask the archives their questions)",
              file=sys.stderr)
        return 2
    try:
        report = fetch(args.source, args.dataset_ids, args.start, args.end, download_dir=args.download_dir,
                       ingest_into=(args.archive or os.environ.get("HELIOHUB_ARCHIVE") or "") if args.ingest else None,
                       url=args.url, delivery_format=args.format, window=args.window, timeout=args.timeout,
                       retries=args.retries, progress=False if args.json else None)
    except HeliohubError as error:
        print(f"heliohub fetch: {error}", file=sys.stderr)
        return 2
    emit(report.to_json() if args.json else report.summary())
    return 0 if report.ok else 1
