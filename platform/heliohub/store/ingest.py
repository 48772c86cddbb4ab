"""Ingest archive files into the archive store: ``heliohub ingest PATH...`` and :func:`ingest`.

Files are read (in parallel on a Dask cluster when one is given, whose workers then write what they read when it
follows the stored records: :mod:`.distributed`), grouped by dataset ID, and each dataset's new files are merged
into its group in one Icechunk commit. Known files (same checksum) change nothing; a newer version
of a delivery (same name but for ``_V..``) replaces the older's records; bad files are set aside with their reason
and the rest still go in. The catalog entries of every dataset touched are then refreshed.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import glob
import hashlib
import itertools
import json
import logging
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import icechunk
import pandas as pd
import xarray as xr
import zarr

from ..dask_clusters import dask_client
from ..errors import ArchiveError, HeliohubError, IngestError, StoreDamagedError
from ..progress import progress_bar
from ..raw_files import read_raw_file
from ..readers import is_archive_file_name, read_source_with, reader_for
from . import catalog, distributed, legacy, provenance
from .layout import VARIABLE_ORDER
from .location import StoreLocation, check_dataset_id
from .lock import write_transaction
from .merge import Incompatible, after_the_end, check_compatible, merge_into, open_for_merge, stream_after, write_new
from .provenance import FileEntry, newer, spans_of
from .versions import tag_release

log = logging.getLogger(__name__)
BATCH_BYTES = 512 << 20
"""How much data (the arrays of the files read, in memory) an ingest holds before it writes what it holds: an
ingest of a whole archive reads and commits it batch by batch, in a few times this much memory whatever its size
(measured in ``benchmarks/bench_store.py``; the chart's ingest job has 4 GiB)."""
_VERSION = re.compile(r"^(?P<key>.+?)[_.-][Vv](?P<version>\d+)$")


BeforeCommit = Callable[[icechunk.Session, str, list[tuple[pd.Timestamp, pd.Timestamp]]], None]
"""What ``ingest(before_commit=...)`` calls: a dataset's writable session, its ID, the spans of its new records."""


@dataclass
class FileResult:
    """What became of one input file."""

    path: str
    status: str
    """``ingested``; ``replaced`` (it replaced an older version of its delivery in the store); ``unchanged``
    (its delivery is stored with the same content); ``superseded`` (a newer version of it came in the same
    ingest); or ``refused``."""
    dataset_id: str | None = None
    reason: str | None = None


@dataclass
class IngestReport:
    """The outcome of an ingest: one result per input file, and the datasets touched."""

    archive: str
    files: list[FileResult] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def refused(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "refused"]

    @property
    def ok(self) -> bool:
        return not self.refused

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for result in self.files:
            out[result.status] += 1
        return dict(out)

    def to_json(self) -> str:
        return json.dumps({"archive": self.archive, "ok": self.ok, "counts": self.counts(),
                           "datasets": self.datasets, "seconds": round(self.seconds, 3),
                           "files": [asdict(f) for f in self.files]}, indent=2)

    def summary(self) -> str:
        counts = self.counts()
        lines = [f"{len(self.files)} file(s) into {len(self.datasets)} dataset(s) of {self.archive} in "
                 f"{self.seconds:.1f} s: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))]
        for result in self.refused:
            lines.append(f"  refused {result.path}: {result.reason}")
        return "\n".join(lines)


@dataclass
class _Loaded:
    path: str
    entry: FileEntry
    dataset_id: str
    dataset: xr.Dataset
    source: distributed.Held | None = None
    """When read on a Dask cluster: where its dataset is held there (``dataset`` then holds only its outline, see
    :mod:`.distributed`)."""


def expand(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[str]]:
    """Files (sorted, unique) from files, folders, globs and URLs, and the folders holding CEF headers.

    A folder gives the archive files under it (by suffix, ``.gz`` too); a named file is always tried. A URL
    ending in ``/`` is a folder and a URL with ``*`` a glob (``s3://bucket/incoming/``, ``s3://b/c/**/*.cef``).
    """
    files: set[str] = set()
    headers: set[str] = set()
    for item in inputs:
        text = os.fspath(item)
        if "://" in text and not text.startswith("file://"):
            files.update(_expand_url(text) if text.endswith("/") or glob.has_magic(text) else [text])
            continue
        text = text.removeprefix("file://")
        matches = sorted(glob.glob(text, recursive=True)) if glob.has_magic(text) else [text]
        if not matches:
            raise IngestError(f"{text}: no file matches this pattern; check the path (quote it so that the shell "
                              "does not expand it)")
        for match in matches:
            if os.path.isdir(match):
                for root, _, names in os.walk(match):
                    for name in names:
                        if is_archive_file_name(name):
                            files.add(os.path.abspath(os.path.join(root, name)))
                        elif name.lower().removesuffix(".gz").endswith(".ceh"):
                            headers.add(os.path.abspath(root))
            else:
                files.add(os.path.abspath(match) if os.path.exists(match) else match)
    return sorted(files), sorted(headers)


def _expand_url(url: str) -> list[str]:
    """The archive files under a folder URL or matching a glob URL (through fsspec: S3 settings from AWS_*)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        found = fs.glob(path) if glob.has_magic(url) else fs.find(path)
    except Exception as error:  # every fsspec backend raises its own errors
        raise IngestError(f"{url}: cannot list it ({error}); check the URL and the AWS_* settings") from None
    names = [fs.unstrip_protocol(p) for p in found if is_archive_file_name(p)]
    if not names:
        raise IngestError(f"{url}: no archive file (.cef, .cdf, .fits, also gzipped) is there; check the URL")
    return names


def _identity(name: str) -> tuple[str, str]:
    """A file's delivery key and version from its name (``..._V02.cdf`` gives ``(..., "02")``)."""
    stem = name
    for suffix in (".gz", ".cef", ".cdf", ".fits", ".fts", ".fit"):
        stem = stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem
    match = _VERSION.match(stem)
    return (match["key"], match["version"]) if match else (stem, "")


@functools.cache
def _checksums(pid: int) -> concurrent.futures.ThreadPoolExecutor:
    """One checksum thread per process (by pid: a forked child has none of its parent's threads)."""
    return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="heliohub-checksum")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()  # hashlib lets go of the GIL on large buffers


@dataclass
class _Parsed:
    """A file read for ingest whose checksum may still be being computed on another core."""

    path: str
    name: str
    dataset_id: str
    dataset: xr.Dataset
    checksum: concurrent.futures.Future[str]
    size: int

    def loaded(self) -> _Loaded | FileResult:
        """The file with its provenance entry, or its refusal when that cannot be made."""
        try:
            key, version = _identity(self.name)
            version = version or str(self.dataset.attrs.get("file_version")
                                     or self.dataset.attrs.get("dataset_version") or "")
            entry = FileEntry(file=self.name, key=key, version=version, checksum=self.checksum.result(),
                              records=int(self.dataset.sizes.get("time", 0)), spans=spans_of(self.dataset),
                              size=self.size)
        except Exception as error:  # heliohub's own failure on this file: reported as such, the others go on
            return FileResult(self.path, "refused", self.dataset_id,
                              f"its provenance could not be made ({type(error).__name__}: {error}); this is a fault "
                              "of heliohub: please report it with the file")
        return _Loaded(self.path, entry, self.dataset_id, self.dataset)


def parse(path: str, include_paths: list[str] | None = None, dataset_id: str | None = None,
          storage_options: dict[str, Any] | None = None) -> _Parsed | FileResult:
    """Read one file for ingest, its checksum computed on another core meanwhile, or say why it is refused."""
    try:
        source = read_raw_file(path, **(storage_options or {}))
        checksum = _checksums(os.getpid()).submit(_sha256, source.data)
        ds = read_source_with(reader_for(source), source, include_paths)
        target = check_dataset_id(dataset_id or str(ds.attrs.get("dataset_id") or ""))
    except HeliohubError as error:
        return FileResult(path, "refused", dataset_id, str(error))
    return _Parsed(path, source.name, target, ds, checksum, len(source.data))


def load(path: str, include_paths: list[str] | None = None, dataset_id: str | None = None,
         storage_options: dict[str, Any] | None = None) -> _Loaded | FileResult:
    """Read one file for ingest, or say why it is refused. Runs on Dask workers too."""
    parsed = parse(path, include_paths, dataset_id, storage_options)
    return parsed.loaded() if isinstance(parsed, _Parsed) else parsed


def ingest(paths: Iterable[str | os.PathLike[str]] | str, archive: str | StoreLocation | None = None, *,
           dataset_id: str | None = None, include_paths: list[str] | None = None,
           storage_options: dict[str, Any] | None = None, client: Any = None,
           progress: bool | None = None, on_commit: Callable[[str], None] | None = None,
           before_commit: BeforeCommit | None = None, batch_bytes: int = BATCH_BYTES,
           release: str | None = None) -> IngestReport:
    """Ingest files, folders, globs or URLs into the archive store (see ``heliohub ingest --help``).

    Parameters
    ----------
    archive:
        The store (a folder or ``s3://bucket/prefix``); ``HELIOHUB_ARCHIVE`` when not given.
    dataset_id:
        Put every file under this ID instead of the file's own.
    include_paths:
        Folders holding CEF headers (besides ``CEFPATH``, the files' folders and header folders found under
        folder inputs).
    storage_options:
        fsspec options for reading input URLs.
    client:
        A ``dask.distributed.Client`` (local cluster or Dask Gateway): files are read in parallel on it, and
        records that come after the stored ones are written by its workers (:mod:`.distributed`).
    batch_bytes:
        Write what has been read once the files' arrays in memory reach this size, and go on (each dataset is
        then committed once per batch): memory stays bounded whatever the number of files.
    progress:
        Show progress bars (default: when standard error is a terminal).
    on_commit:
        Called with each dataset ID once its commit is published.
    before_commit:
        Called with each dataset's writable session, its ID and the time spans its new records fall in, before the
        commit: what it writes into the session is published with the records (``heliohub ingest --quicklooks``
        redraws the pre-generated quicklooks of those spans this way).
    release:
        Once all is written, tag each dataset the ingest touched with this release name (see
        :func:`heliohub.store.versions.tag_release`), so that ``open_dataset(ID, version=release)`` opens it as it is
        now.
    """
    started = time.perf_counter()
    store = StoreLocation.resolve(archive)
    files, found_headers = expand([paths] if isinstance(paths, str | os.PathLike) else paths)
    headers = list(include_paths or []) + found_headers
    report = IngestReport(store.url)
    touched: set[str] = set()
    log.info("reading %d file(s) for %s", len(files), store.url)
    for batch in _batches(_read(files, headers, dataset_id, storage_options, client, progress), batch_bytes):
        by_dataset: dict[str, list[_Loaded]] = defaultdict(list)
        for item in batch:
            if isinstance(item, FileResult):
                report.files.append(item)
            else:
                by_dataset[item.dataset_id].append(item)
        log.info("writing a batch of %d file(s) into %d dataset(s)", len(batch), len(by_dataset))
        report.files.extend(write_batch(store, by_dataset, before_commit, on_commit, progress))
        touched.update(by_dataset)
        del batch, by_dataset, item  # before the next batch is read
    report.datasets = sorted(touched)
    if release is not None and touched:
        tag_release(release, sorted(touched), archive=store)
    report.files.sort(key=lambda f: f.path)
    report.seconds = time.perf_counter() - started
    return report


def _read(files: list[str], headers: list[str], dataset_id: str | None, storage_options: dict[str, Any] | None,
          client: Any, progress: bool | None) -> Iterator[_Parsed | _Loaded | FileResult]:
    """Each file read for ingest, in the order given: here (each checksum still being computed on another core),
    or on the Dask cluster (:func:`_on_cluster`)."""
    if client is None:
        for path in progress_bar(files, progress, "files"):
            yield parse(path, headers, dataset_id, storage_options)
        return
    yield from progress_bar(_on_cluster(files, headers, dataset_id, storage_options, client), progress, "files",
                            total=len(files))


FILES_PER_TASK = 8
"""At most this many files are read by one task on a cluster: each task costs the client and the scheduler a few
milliseconds of CPU, more than a small file's read (``benchmarks/bench_scale.py``, part ``cluster``)."""


def _on_cluster(files: list[str], headers: list[str], dataset_id: str | None,
                storage_options: dict[str, Any] | None, client: Any) -> Iterator[_Loaded | FileResult]:
    """Each file read on the Dask cluster, in the order given, by tasks of a few files each, a few tasks per worker
    thread ahead of the one handed on (so that neither the cluster nor this process holds more than a batch). The
    client gets each file's outline (:mod:`.distributed`); its dataset stays on the cluster."""
    threads = sum(client.nthreads().values()) or 1
    per_task = max(1, min(FILES_PER_TASK, len(files) // (2 * threads)))
    waiting = iter([files[i:i + per_task] for i in range(0, len(files), per_task)])
    running: collections.deque[tuple[Any, Any]] = collections.deque()
    ahead = 1
    for handed in itertools.count():
        if handed % ahead == 0:  # asked again once per window: workers join as a gateway cluster scales up
            ahead = max(4, 2 * sum(client.nthreads().values()))
        for paths in itertools.islice(waiting, max(0, ahead - len(running))):
            loaded = client.submit(_load_all, paths, headers, dataset_id, storage_options, pure=False)
            running.append((client.submit(_outlines, loaded, pure=False),
                             client.submit(_datasets, loaded, pure=False)))
        if not running:
            return
        outlines, held = running.popleft()
        for index, result in enumerate(outlines.result()):
            if isinstance(result, FileResult):
                yield result
            else:
                path, entry, target, shape = result
                yield _Loaded(path, entry, target, distributed.lazy(shape), (held, index))


def _load_all(paths: list[str], *arguments: Any) -> list[_Loaded | FileResult]:
    """On a worker: :func:`load` of each of ``paths``."""
    return [load(path, *arguments) for path in paths]


def _outlines(loaded: list[_Loaded | FileResult]) -> list[tuple[str, FileEntry, str, distributed.Outline] | FileResult]:
    """On a worker: what the client gets of the files read there (their outlines, :func:`.distributed.outline`)."""
    return [item if isinstance(item, FileResult) else (
        item.path, item.entry, item.dataset_id, distributed.outline(item.dataset)) for item in loaded]


def _datasets(loaded: list[_Loaded | FileResult]) -> list[xr.Dataset | None]:
    """On a worker: the datasets of the files read there, kept there for the workers that write them."""
    return [None if isinstance(item, FileResult) else item.dataset for item in loaded]


def _batches(items: Iterator[_Parsed | _Loaded | FileResult],
             batch_bytes: int) -> Iterator[list[_Loaded | FileResult]]:
    """``items`` in batches of about ``batch_bytes`` of data each (a file larger than that is a batch of its own),
    every checksum collected once its batch is read (waiting for each before parsing the next cost 0.07-0.2 s of
    the 0.45 s a year of daily FGM files takes to parse: bench_store.py)."""
    batch: list[_Parsed | _Loaded | FileResult] = []
    held = 0
    for item in items:
        batch.append(item)
        held += 0 if isinstance(item, FileResult) else item.dataset.nbytes
        if held >= batch_bytes:
            yield [i.loaded() if isinstance(i, _Parsed) else i for i in batch]
            batch, held = [], 0
    if batch:
        yield [i.loaded() if isinstance(i, _Parsed) else i for i in batch]


def write_batch(store: StoreLocation, by_dataset: dict[str, list[_Loaded]], before_commit: BeforeCommit | None = None,
                on_commit: Callable[[str], None] | None = None, progress: bool | None = False) -> list[FileResult]:
    """Write a batch of files read, by dataset: the catalog marks the datasets pending (committed on another
    thread while the first dataset is written, and before any of them commits), each dataset is merged in a commit
    of its own, and the catalog's rows are derived from what was committed, in one commit."""
    if not by_dataset:
        return []
    marked = _catalog_thread(os.getpid()).submit(catalog.mark_pending, store, sorted(by_dataset))
    done: list[FileResult] = []
    try:
        for target in progress_bar(sorted(by_dataset), progress, "datasets"):
            if _failed(marked):
                break
            results = _ingest_or_refuse(store, target, by_dataset[target], before_commit, marked)
            done.extend(results)
            if on_commit is not None and any(r.status in ("ingested", "replaced") for r in results):
                on_commit(target)  # a commit was published: nothing is committed when no file goes in
    finally:
        concurrent.futures.wait([marked])  # never left running: what it meets is raised below
    marked.result()  # a mark that failed stops the ingest, as it did when it was made first
    catalog.refresh(store, sorted(by_dataset))
    return done


@functools.cache
def _catalog_thread(pid: int) -> concurrent.futures.ThreadPoolExecutor:
    """The thread that commits the catalog's pending marks (by pid, as :func:`_checksums`)."""
    return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="heliohub-catalog")


def _ingest_or_refuse(store: StoreLocation, dataset_id: str, items: list[_Loaded],
                      before_commit: BeforeCommit | None,
                      marked: concurrent.futures.Future[None] | None = None) -> list[FileResult]:
    """:func:`ingest_dataset`, its files refused (the dataset left as it was) when it fails for any reason but
    the store itself (an ArchiveError names it, and stops the ingest) or the catalog's pending mark (``marked``:
    :func:`write_batch` raises its failure)."""
    try:
        return ingest_dataset(store, dataset_id, items, before_commit, marked)
    except StoreDamagedError as error:  # this dataset's own tables: its files wait, the others go on
        if _failed(marked):
            return []  # nothing of it was committed; write_batch raises the mark's failure
        reason = f"{error}; {dataset_id} is left as it was (see docs/store-layout.md, 'Damaged tables')"
        return [FileResult(item.path, "refused", dataset_id, reason) for item in items]
    except ArchiveError:
        raise
    except Exception as error:  # heliohub's own failure on these files: theirs to report, the others go on
        if _failed(marked):
            return []
        log.warning("writing %s failed; its files are set aside", dataset_id, exc_info=True)
        reason = (f"writing it into {dataset_id} failed ({type(error).__name__}: {error}); {dataset_id} is left as "
                  "it was. This is a fault of heliohub or of a library it uses: please report it with the file")
        return [FileResult(item.path, "refused", dataset_id, reason) for item in items]


def _failed(marked: concurrent.futures.Future[None] | None) -> bool:
    return marked is not None and marked.done() and marked.exception() is not None


def ingest_dataset(store: StoreLocation, dataset_id: str, items: list[_Loaded],
                   before_commit: BeforeCommit | None = None,
                   marked: concurrent.futures.Future[None] | None = None) -> list[FileResult]:
    """Merge the files of one dataset into its group in one commit (retried when another commit won a race), with
    ``before_commit`` called before the commit (see :func:`ingest`), and the commit made only once ``marked`` (the
    catalog's pending mark, :func:`write_batch`) is."""
    items = sorted(items, key=lambda i: i.entry.order)

    def change(session: icechunk.Session) -> tuple[list[FileResult], str]:
        results, touched = _merge(session, dataset_id, items)
        if before_commit is not None and touched:
            before_commit(session, dataset_id, touched)
        if marked is not None:
            marked.result()
        return results, f"ingest {sum(r.status != 'refused' for r in results)} file(s) into {dataset_id}"

    return write_transaction(store, dataset_id, change)


def _open_stored(session: icechunk.Session, dataset_id: str,
                 keys: set[str]) -> tuple[xr.Dataset | None, provenance.KnownFiles]:
    """The stored dataset (lazily) and what is known of its current files for an ingest of deliveries ``keys``; a
    group of heliohub 0.1 is moved to the present layout first, in this session (so in the commit of the records
    that come now)."""
    nothing = provenance.KnownFiles.of([], keys)
    try:
        root = zarr.open_group(session.store, mode="r+")
    except (zarr.errors.GroupNotFoundError, FileNotFoundError):
        return None, nothing
    where = f"dataset {dataset_id}"
    entries = legacy.upgrade_group(root, where)
    known = provenance.KnownFiles.of(entries, keys) if entries is not None else \
        provenance.known_files(root, f"the provenance table of {dataset_id}", keys)
    if known is None:
        return None, nothing
    return open_for_merge(session.store), known


def _merge(session: icechunk.Session, dataset_id: str,
           items: list[_Loaded]) -> tuple[list[FileResult], list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """The results per file, and the time spans whose records changed (new files', and replaced versions')."""
    stored, known = _open_stored(session, dataset_id, {i.entry.key for i in items})
    by_key = dict(known.by_key)
    count = known.count
    results: list[FileResult] = []
    accepted: list[_Loaded] = []
    removals: dict[str, list[tuple[str, str]]] = defaultdict(list)
    reference = stored
    for item in items:
        entry = item.entry
        previous = by_key.get(entry.key)
        if previous is not None and previous.checksum == entry.checksum:  # this delivery as it is stored
            results.append(FileResult(item.path, "unchanged", dataset_id))
            continue
        if previous is not None and not newer(entry, previous):
            results.append(FileResult(item.path, "refused", dataset_id,
                                      f"{dataset_id} already holds version {previous.version or '(none)'} of this "
                                      f"delivery ({previous.file}); only a newer version replaces it"))
            continue
        try:
            if reference is not None:
                check_compatible(reference, item.dataset, dataset_id)
        except Incompatible as error:
            results.append(FileResult(item.path, "refused", dataset_id, f"cannot join {dataset_id}: {error}"))
            continue
        if reference is None:
            reference = item.dataset
        status = "ingested"
        if previous is None:
            count += 1
        else:
            in_batch = next((a for a in accepted if a.entry is previous), None)
            if in_batch is None:
                status = "replaced"
                for dim, span in previous.spans.items():
                    removals[dim].append(span)
            else:
                accepted.remove(in_batch)
                results = [FileResult(r.path, "superseded", dataset_id, f"a newer version ({entry.file}) came "
                                      "in the same ingest") if r.path == in_batch.path else r for r in results]
        by_key[entry.key] = entry
        accepted.append(item)
        results.append(FileResult(item.path, status, dataset_id))
    if not accepted:
        return results, []
    touched = [(pd.Timestamp(a), pd.Timestamp(b)) for span in [*(i.entry.spans.get("time") for i in accepted),
                                                              *removals.get("time", [])] if span for a, b in [span]]
    latest = max(accepted, key=lambda i: provenance.rank(i.entry))
    newest_stored = known.newest(leaving_out={i.entry.key for i in accepted})
    attrs_source = latest.dataset if stored is None or newest_stored is None or \
        provenance.rank(latest.entry) > newest_stored else None
    attrs = dict(attrs_source.attrs if attrs_source is not None else stored.attrs)
    if attrs_source is not None:
        attrs[VARIABLE_ORDER] = [str(name) for name in attrs_source.variables]
    variable_attrs = ({name: dict(v.attrs) for name, v in attrs_source.variables.items()}
                      if attrs_source is not None else None)
    datasets, stream = [i.dataset for i in accepted], stream_after
    if accepted[0].source is not None:  # read on a cluster: appended there, else fetched here
        if stored is not None and after_the_end(stored, datasets, removals):
            stream = distributed.ClusterStream(session, [i.source for i in accepted])
        else:
            datasets = distributed.fetched([i.source for i in accepted])
    if stored is None:  # then the latest file is the attributes' source
        write_new(session.store, datasets, attrs, variable_attrs or {})
    else:
        merge_into(session.store, stored, datasets, dict(removals), attrs, variable_attrs, stream)
    status = {r.path: r.status for r in results}
    provenance.append(zarr.open_group(session.store, mode="r+"), [(i.entry, status[i.path]) for i in accepted],
                      pd.Timestamp.now("UTC"), count, known.index)
    return results, touched


def main_ingest(args: Any, emit: Callable[[str], None] = print, before_commit: BeforeCommit | None = None) -> int:
    """``heliohub ingest``: returns the exit status (1 when any file was refused)."""
    try:
        with dask_client(args.dask, args.gateway_workers, "ingest") as client:
            report = ingest(args.paths, args.archive, dataset_id=args.dataset_id, include_paths=args.include_path,
                            client=client, progress=False if args.json else None, before_commit=before_commit,
                            batch_bytes=args.batch_mb << 20 if args.batch_mb else BATCH_BYTES,
                            release=getattr(args, "release", None),
                            on_commit=lambda dataset_id: print(f"heliohub ingest: committed {dataset_id}",
                                                               file=sys.stderr, flush=True))
    except HeliohubError as error:  # the store, the inputs or the Dask cluster, named in the message
        print(f"heliohub ingest: {error}", file=sys.stderr)
        return 2
    emit(report.to_json() if args.json else report.summary())
    return 0 if report.ok else 1
