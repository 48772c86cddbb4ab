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
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FetchError, HeliohubError
from ..store.ingest import IngestReport, ingest, progress_bar
from ..store.location import StoreLocation
from .base import ArchiveSource, Item
from .csa import Csa
from .http import Http, PackageTooLarge
from .packages import check_whole, replace_folder, unpack
from .proba2 import Proba2
from .soar import Soar
from .soho import Soho

SOURCES: dict[str, type] = {"csa": Csa, "soar": Soar, "soho": Soho, "proba2": Proba2}
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


@dataclass
class FetchReport:
    """The outcome of a fetch: each download, and the ingest that followed (when asked for)."""

    source: str
    url: str
    download_dir: str
    datasets: list[str] = field(default_factory=list)
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
                           "datasets": self.datasets, "counts": self.counts(), "seconds": round(self.seconds, 3),
                           "items": [asdict(i) for i in self.items], "ingest": ingest_part}, indent=2)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts().items())) or "nothing to fetch"
        lines = [f"{len(self.items)} download(s) of {', '.join(self.datasets) or 'no dataset'} from {self.url} in "
                 f"{self.seconds:.1f} s: {counts} (kept in {self.download_dir})"]
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
          delivery_format: str = "CEF", window: str | pd.Timedelta = "1D", timeout: float = 60.0,
          retries: int = 4, backoff: float = 2.0, progress: bool | None = None) -> FetchReport:
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
        CSA only: ``CEF``, ``CDF`` or ``CDF_ISTP``.
    window:
        CSA only: the time span of one request (the archive's synchronous limit is 1 GB compressed; a window it
        refuses as too large is asked for in halves).
    timeout, retries, backoff:
        Seconds to wait for an answer; how many times to retry a failed request; seconds before the first retry
        (doubling after).
    """
    if source not in SOURCES:
        raise FetchError(f"no archive source {source!r}: use one of {', '.join(SOURCES)}")
    started = time.perf_counter()
    archive_source: ArchiveSource = Csa(delivery_format) if source == "csa" else SOURCES[source]()
    base = url or os.environ.get(archive_source.setting) or archive_source.default_url
    http = Http(base, f"--url or {archive_source.setting}", timeout=timeout, retries=retries, backoff=backoff)
    first, last = _time(start, "start"), _time(end, "end")
    if first >= last:
        raise FetchError(f"start {first} is not before end {last}")
    # a bad store fails before downloads
    store = StoreLocation.resolve(ingest_into) if ingest_into is not None else None
    root = Path(download_dir).expanduser() if download_dir else default_download_dir()
    report = FetchReport(source, http.base_url, str(root))
    patterns = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids)
    for pattern in patterns:
        report.datasets += [d for d in archive_source.datasets(http, pattern) if d not in report.datasets]
    items = [item for dataset_id in report.datasets
             for item in archive_source.items(http, dataset_id, first, last, pd.Timedelta(window))]
    for item in progress_bar(items, progress, "downloads"):
        report.items += _get(archive_source, http, item, root / source)
    if store is not None:
        report.ingest = _ingest(report, store, progress)
    report.seconds = time.perf_counter() - started
    return report


def _folder(root: Path, item: Item) -> Path:
    return root / item.dataset_id / item.key


def _manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    scratch = folder / f"{MANIFEST}.tmp"
    scratch.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    scratch.replace(folder / MANIFEST)


def _get(source: ArchiveSource, http: Http, item: Item, root: Path) -> list[ItemResult]:
    """Download one item into its folder (unless an earlier run did), checked whole; halves when too large."""
    folder = _folder(root, item)
    manifest = _manifest(folder)
    if manifest is not None:
        return [ItemResult(item.dataset_id, item.key, "kept" if manifest["files"] else "empty",
                           [str(folder / f["name"]) for f in manifest["files"]])]
    partial = folder.with_name(f".{item.key}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    what = f"{item.dataset_id} {item.key} from {http.url(item.path)}"
    try:
        names = _download(http, item, partial, what)
    except PackageTooLarge as error:
        shutil.rmtree(partial, ignore_errors=True)
        halves = source.halves(item)
        if halves is None:
            return [ItemResult(item.dataset_id, item.key, "failed", reason=str(error))]
        return [result for half in halves for result in _get(source, http, half, root)]
    except FetchError as error:
        shutil.rmtree(partial, ignore_errors=True)
        if item.optional and "HTTP 404" in str(error):
            names = None
        else:
            return [ItemResult(item.dataset_id, item.key, "failed", reason=str(error))]
    if names is None:
        partial.mkdir(parents=True, exist_ok=True)
        names = []
    files = [{"name": n, "bytes": (partial / n).stat().st_size,
              "sha256": hashlib.sha256((partial / n).read_bytes()).hexdigest()} for n in names]
    _write_manifest(partial, {"dataset_id": item.dataset_id, "key": item.key, "url": http.url(item.path),
                              "params": item.params, "files": files, "ingested_into": [],
                              "fetched": pd.Timestamp.now("UTC").isoformat()})
    replace_folder(partial, folder)
    return [ItemResult(item.dataset_id, item.key, "fetched" if names else "empty", [str(folder / n) for n in names])]


def _download(http: Http, item: Item, partial: Path, what: str) -> list[str]:
    """The names of the checked files the download left in ``partial``."""
    scratch = partial / ".download"
    given = http.download(item.path, item.params, scratch)
    if item.package:
        files = unpack(scratch, partial, what)
        scratch.unlink()
        return sorted(f.name for f in files)
    data = scratch.read_bytes()
    if item.size is not None and len(data) != item.size:
        raise FetchError(f"{what}: {len(data)} bytes arrived, the archive's inventory says {item.size}")
    check_whole(data, what)
    name = Path(item.filename or given or item.key).name
    scratch.rename(partial / name)
    return [name]


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
