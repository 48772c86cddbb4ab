"""``heliohub export`` and ``heliohub.export``: a time range of datasets of the store as files other tools read
(CDF, NetCDF-4, CSV, CEF), named as the CSA names its deliveries (``<ID>__<start>_<end>_V<version>.<ext>``), written
whole or not at all (a ``.part`` file renamed once complete), into a folder or an fsspec URL (the user's bucket).

An export made here is synchronous and bounded by ``max_bytes`` (the CSA's synchronous limit is 1 GB). A larger
one is a job on a Dask cluster (``client=``, or ``--gateway-workers N`` for a new cluster of the user's Dask
Gateway, as the CSA's scheduled downloads): the files (one per dataset, or per day or hour with ``interval``) are
written by the workers, with a progress bar, bounded by ``max_job_bytes`` and ``max_seconds``. Past a limit the
export is refused with the size it would have before anything is read; a job that fails or runs out of time is
stopped and the files it wrote are removed. The platform sets the limits in the users' environment
(``HELIOHUB_EXPORT_MAX_MB``, ``HELIOHUB_EXPORT_JOB_MAX_MB``, ``HELIOHUB_EXPORT_JOB_MAX_SECONDS``); they guard a
user against a runaway request, while what a user's cluster may use is bounded by the gateway's own limits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..dask_clusters import dask_client
from ..errors import CaveatWarning, ExportError, HeliohubError
from ..progress import progress_bar
from ..store.access import TimeLike, open_dataset, timestamp
from ..store.location import StoreLocation
from .formats import SUFFIXES, WRITERS

log = logging.getLogger(__name__)

MAX_BYTES = 1 << 30
MAX_JOB_BYTES = 50 << 30  # the CSA's asynchronous requests stop at 50 GB
MAX_SECONDS = 4 * 3600.0
INTERVALS = {"all": None, "daily": "1D", "hourly": "1h"}
EXPORT_LIMITS = ("HELIOHUB_EXPORT_MAX_MB", "HELIOHUB_EXPORT_JOB_MAX_MB", "HELIOHUB_EXPORT_JOB_MAX_SECONDS")
"""The environment variables that carry the operator's export limits (the platform sets them)."""


@dataclass(frozen=True)
class Exported:
    """One file an export wrote."""

    dataset_id: str
    path: str
    records: int
    bytes: int


@dataclass(frozen=True)
class _Piece:
    """One file of an export: a dataset's records from ``first`` to ``last`` (``last`` excluded unless
    ``inclusive``), named ``name``."""

    dataset_id: str
    first: np.datetime64
    last: np.datetime64
    inclusive: bool
    name: str


def file_name(dataset_id: str, start: np.datetime64, end: np.datetime64, version: str, answer_format: str) -> str:
    """A delivery's name as the CSA gives it: ``C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf``."""
    first, last = (pd.Timestamp(t).strftime("%Y%m%d_%H%M%S") for t in (start, end))
    return f"{dataset_id}__{first}_{last}_V{version or '00'}{SUFFIXES[answer_format]}"


def _limit(name: str, default: float, scale: float) -> float:
    """An operator's limit from the environment (in MB or seconds), else the default."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return float(text) * scale
    except ValueError:
        raise ExportError(f"{name}={text!r} is not a number; the platform's setting is wrong") from None


def export(dataset_ids: list[str] | str, start: TimeLike, end: TimeLike, *, format: str = "cdf",
           out: str | os.PathLike[str] = ".", archive: str | StoreLocation | None = None,
           max_bytes: int | None = None, storage_options: dict[str, Any] | None = None, client: Any = None,
           interval: str = "all", max_job_bytes: int | None = None, max_seconds: float | None = None,
           progress: bool | None = None) -> list[Exported]:
    """Export ``start`` to ``end`` (inclusive) of each dataset into ``out`` as ``format`` (``cdf``, ``netcdf``,
    ``csv`` or ``cef``); returns what was written. ``out`` is a folder or an fsspec URL (``s3://bucket/prefix``,
    with ``storage_options``); each file appears whole or not at all.

    With ``client`` (a ``dask.distributed.Client``, e.g. of the user's Dask Gateway cluster) the export is a job:
    its files (one per dataset, or per ``interval`` ``"daily"`` or ``"hourly"``) are written by the workers, which
    must reach ``out`` (a bucket, or a folder they share), up to ``max_job_bytes`` and ``max_seconds``."""
    if format not in WRITERS:
        raise ExportError(f"format {format!r}: heliohub exports {', '.join(WRITERS)}")
    if interval not in INTERVALS:
        raise ExportError(f"interval {interval!r}: use {', '.join(INTERVALS)}")
    first, last = timestamp(start, "start"), timestamp(end, "end")
    if first is None or last is None or first > last:
        raise ExportError(f"give a time range, start before end (start={start!r}, end={end!r})")
    if client is None:
        limit = max_bytes if max_bytes is not None else int(_limit("HELIOHUB_EXPORT_MAX_MB", MAX_BYTES, 1e6))
        advice = "export a shorter range or fewer datasets, or export as a job on a Dask cluster (client=)"
    else:
        limit = max_job_bytes if max_job_bytes is not None else int(_limit("HELIOHUB_EXPORT_JOB_MAX_MB",
                                                                           MAX_JOB_BYTES, 1e6))
        advice = "export a shorter range or fewer datasets"
    store = StoreLocation.resolve(archive)
    ids = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids)
    opened, size = [], 0
    for dataset_id in ids:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CaveatWarning)  # the archive's caveat attributes go into the file
            ds = open_dataset(dataset_id, start, end, archive=store)  # as given: "20:30" means the whole minute
        size += sum(v.nbytes for v in ds.variables.values())
        if size > limit:
            raise ExportError(f"{', '.join(ids)} from {first} to {last} is over {size / 1e6:.0f} MB, more than the "
                              f"{limit / 1e6:.0f} MB an export {'job ' if client is not None else ''}writes at once; "
                              f"{advice}")
        opened.append((dataset_id, ds))
    pieces = [piece for dataset_id, ds in opened for piece in _pieces(dataset_id, ds, first, last, interval, format)]
    if client is None:
        by_id = dict(opened)
        files = [_write(piece.dataset_id, _cut(by_id[piece.dataset_id], piece), piece.name, format, str(out),
                        storage_options or {}) for piece in progress_bar(pieces, progress, "files")]
        return [written for written in files if written is not None]  # nothing stops a direct export
    seconds = max_seconds if max_seconds is not None else _limit("HELIOHUB_EXPORT_JOB_MAX_SECONDS", MAX_SECONDS, 1)
    return _job(pieces, store, format, str(out), storage_options or {}, client, seconds, progress)


def _cut(ds: Any, piece: _Piece) -> Any:
    """The records of ``ds`` a piece holds."""
    times = ds["time"].values
    keep = (times >= piece.first) & ((times <= piece.last) if piece.inclusive else (times < piece.last))
    return ds if keep.all() else ds.isel(time=np.flatnonzero(keep))


def _pieces(dataset_id: str, ds: Any, first: np.datetime64, last: np.datetime64, interval: str,
            answer_format: str) -> list[_Piece]:
    """The files of one dataset: one for the range, or one per day or hour that holds records."""
    version = version_token(ds.attrs)
    step = INTERVALS[interval]
    times = ds["time"].values
    if step is None:  # the records as opened ("20:30" holds the whole minute): named by the range asked for
        through = max(last, times.max()) if times.size else last
        return [_Piece(dataset_id, first, through, True, file_name(dataset_id, first, last, version, answer_format))]
    starts = np.unique(pd.DatetimeIndex(times).floor(step).to_numpy()) if times.size else []
    out = []
    for begin in starts:
        a, b = max(begin, first), min(begin + pd.Timedelta(step).to_timedelta64(), last)
        inclusive = b == last
        out.append(_Piece(dataset_id, a, b, inclusive, file_name(dataset_id, a, b, version, answer_format)))
    return out


def _write_piece(piece: _Piece, store: StoreLocation, answer_format: str, out: str,
                 storage_options: dict[str, Any], stop_event: str) -> Exported | None:
    """One file of a job, on a worker: its records read from the store and written to ``out``, unless the job
    was stopped (then nothing is left: a file that appeared as the job stopped is removed by its writer)."""
    from dask.distributed import Event

    stop = Event(stop_event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaveatWarning)
        ds = open_dataset(piece.dataset_id, piece.first, piece.last, archive=store)
    written = _write(piece.dataset_id, _cut(ds, piece), piece.name, answer_format, out, storage_options, stop.is_set)
    if written is not None and stop.is_set():
        _remove([written.path], storage_options)
        return None
    return written


def _job(pieces: list[_Piece], store: StoreLocation, answer_format: str, out: str,
         storage_options: dict[str, Any], client: Any, seconds: float, progress: bool | None) -> list[Exported]:
    """The pieces written by the cluster's workers, with a progress bar; on a failure or past ``seconds`` the job
    is stopped (the pieces not begun are cancelled, those running check the job's stop event before and after
    they publish their file) and what was written is removed."""
    from dask.distributed import Event, as_completed

    job = f"heliohub-export-{uuid.uuid4().hex}"
    stop = Event(job, client=client)
    futures = [client.submit(_write_piece, piece, store, answer_format, out, storage_options, job, pure=False,
                             key=f"{job}-{index}") for index, piece in enumerate(pieces)]
    written: list[Exported] = []
    deadline = time.monotonic() + seconds

    def stopped(reason: str) -> ExportError:
        stop.set()
        client.cancel(futures)
        # every piece's file, not only those whose results came back: a piece may have finished unreported
        _remove([_target(out, p.name) for p in pieces], storage_options)
        log.info("export job %s stopped (%s); removed the %d files it had written", job, reason, len(written))
        return ExportError(f"{reason}; {len(written)} of {len(pieces)} files had been written and were removed")

    try:
        for future in progress_bar(as_completed(futures, timeout=seconds), progress, "files", total=len(futures)):
            try:
                result = future.result()
            except HeliohubError as error:
                raise stopped(f"the export job stopped: {error}") from None
            if result is not None:
                written.append(result)
            if time.monotonic() > deadline:
                raise TimeoutError
    except TimeoutError:
        raise stopped(f"the export job ran past {seconds:g} s, the longest an export job may run "
                      "(HELIOHUB_EXPORT_JOB_MAX_SECONDS): export a shorter range, or on more workers") from None
    except KeyboardInterrupt:
        stopped("interrupted")
        raise
    except ExportError:
        raise
    except Exception as error:  # the cluster went away, a worker died: the job stops all the same
        raise stopped(f"the export job stopped: {type(error).__name__}: {error}") from error
    order = {piece.name: index for index, piece in enumerate(pieces)}
    return sorted(written, key=lambda e: order[Path(e.path).name])


def _target(out: str, name: str) -> str:
    """Where the file ``name`` goes in ``out`` (a folder or an fsspec URL)."""
    return f"{out.rstrip('/')}/{name}" if "://" in out else str(Path(out).expanduser() / name)


def _remove(paths: list[str], storage_options: dict[str, Any]) -> None:
    """Remove files of an export, those that exist (each whole: removing it leaves nothing of it)."""
    import fsspec

    for target in paths:
        filesystem, _, (path,) = fsspec.get_fs_token_paths(target, storage_options=storage_options)
        with contextlib.suppress(FileNotFoundError):
            filesystem.rm_file(path)


def _write(dataset_id: str, ds: Any, name: str, answer_format: str, out: str, storage_options: dict[str, Any],
           stopped: Callable[[], bool] | None = None) -> Exported | None:
    """``ds`` written as the file ``name`` in ``out``, whole or not at all; not published (None) if ``stopped()``
    says so once the file is made."""
    ds = ds.load()
    if "://" not in out:
        folder = Path(out).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f".{name}.part"
        try:
            WRITERS[answer_format](ds, part, name)
        except BaseException:  # a file the format cannot hold (ExportError) is not left half-written
            part.unlink(missing_ok=True)
            raise
        if stopped is not None and stopped():
            part.unlink()
            return None
        part.replace(folder / name)
        target = folder / name
        return Exported(dataset_id, str(target), int(ds.sizes.get("time", 0)), target.stat().st_size)
    import fsspec

    with tempfile.TemporaryDirectory(prefix="heliohub-export-") as scratch:
        local = Path(scratch) / name
        WRITERS[answer_format](ds, local, name)
        if stopped is not None and stopped():
            return None
        filesystem, _, (root,) = fsspec.get_fs_token_paths(out, storage_options=storage_options)
        target = f"{root.rstrip('/')}/{name}"
        filesystem.put_file(str(local), target)  # an object store's PUT: the object appears whole or not at all
        return Exported(dataset_id, f"{out.rstrip('/')}/{name}", int(ds.sizes.get("time", 0)), local.stat().st_size)


def version_token(attrs: dict[str, Any]) -> str:
    """The dataset's version as a file name carries it (a short token; a merged dataset's account of its
    segments' versions is not one)."""
    for key in ("file_version", "VERSION_NUMBER", "dataset_version"):
        value = str(attrs.get(key) or "")
        if re.fullmatch(r"[A-Za-z0-9.]{1,12}", value):
            return value
    return "00"


def main_export(args: Any, emit: Any = print) -> int:
    """``heliohub export``: 0 when every file was written, 2 when the export could not run (said why)."""
    try:
        with dask_client(args.dask, args.gateway_workers, "export") as client:
            written = export(args.dataset_ids, args.start, args.end, format=args.format, out=args.out,
                             archive=args.archive, client=client, interval=args.interval,
                             progress=False if args.json else None,
                             max_bytes=int(args.max_mb * 1e6) if args.max_mb is not None else None)
    except HeliohubError as error:
        print(f"heliohub export: {error}", file=sys.stderr)
        return 2
    if args.json:
        import json

        emit(json.dumps([asdict(e) for e in written], indent=2))
    else:
        for entry in written:
            emit(f"{entry.path}: {entry.records} records, {entry.bytes} bytes")
    return 0
