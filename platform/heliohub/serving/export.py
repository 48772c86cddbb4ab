"""``heliohub export`` and ``heliohub.export``: a time range of datasets of the store as files other tools read
(CDF, NetCDF-4, CSV, CEF), named as the CSA names its deliveries (``<ID>__<start>_<end>_V<version>.<ext>``), written
whole or not at all (a ``.part`` file renamed once complete), into a folder or an fsspec URL (the user's bucket).

An export is synchronous and bounded by ``max_bytes`` (the CSA's synchronous limit is 1 GB): a larger one is
refused with the size it would have, before anything is read.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CaveatWarning, ExportError, HeliohubError
from ..store.access import TimeLike, open_dataset, timestamp
from ..store.location import StoreLocation
from .formats import SUFFIXES, WRITERS

log = logging.getLogger(__name__)

MAX_BYTES = 1 << 30


@dataclass(frozen=True)
class Exported:
    """One file an export wrote."""

    dataset_id: str
    path: str
    records: int
    bytes: int


def file_name(dataset_id: str, start: np.datetime64, end: np.datetime64, version: str, answer_format: str) -> str:
    """A delivery's name as the CSA gives it: ``C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf``."""
    first, last = (pd.Timestamp(t).strftime("%Y%m%d_%H%M%S") for t in (start, end))
    return f"{dataset_id}__{first}_{last}_V{version or '00'}{SUFFIXES[answer_format]}"


def export(dataset_ids: list[str] | str, start: TimeLike, end: TimeLike, *, format: str = "cdf",
           out: str | os.PathLike[str] = ".", archive: str | StoreLocation | None = None,
           max_bytes: int = MAX_BYTES, storage_options: dict[str, Any] | None = None) -> list[Exported]:
    """Export ``start`` to ``end`` (inclusive) of each dataset into ``out`` as ``format`` (``cdf``, ``netcdf``,
    ``csv`` or ``cef``); returns what was written. ``out`` is a folder or an fsspec URL (``s3://bucket/prefix``, with
    ``storage_options``); each file appears whole or not at all."""
    if format not in WRITERS:
        raise ExportError(f"format {format!r}: heliohub exports {', '.join(WRITERS)}")
    first, last = timestamp(start, "start"), timestamp(end, "end")
    if first is None or last is None or first > last:
        raise ExportError(f"give a time range, start before end (start={start!r}, end={end!r})")
    store = StoreLocation.resolve(archive)
    ids = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids)
    opened, size = [], 0
    for dataset_id in ids:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CaveatWarning)  # the archive's caveat attributes go into the file
            ds = open_dataset(dataset_id, start, end, archive=store)  # as given: "20:30" means the whole minute
        size += sum(v.nbytes for v in ds.variables.values())
        if size > max_bytes:
            raise ExportError(f"{', '.join(ids)} from {first} to {last} is over {size / 1e6:.0f} MB, more than the "
                              f"{max_bytes / 1e6:.0f} MB an export writes at once; export a shorter range or fewer "
                              "datasets")
        opened.append((dataset_id, ds))
    return [_write(dataset_id, ds, first, last, format, str(out), storage_options or {}) for dataset_id, ds in opened]


def _write(dataset_id: str, ds: Any, first: np.datetime64, last: np.datetime64, answer_format: str, out: str,
           storage_options: dict[str, Any]) -> Exported:
    name = file_name(dataset_id, first, last, version_token(ds.attrs), answer_format)
    ds = ds.load()
    if "://" not in out:
        folder = Path(out).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f".{name}.part"
        WRITERS[answer_format](ds, part, name)
        part.replace(folder / name)
        target = folder / name
        return Exported(dataset_id, str(target), int(ds.sizes.get("time", 0)), target.stat().st_size)
    import fsspec

    with tempfile.TemporaryDirectory(prefix="heliohub-export-") as scratch:
        local = Path(scratch) / name
        WRITERS[answer_format](ds, local, name)
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
        written = export(args.dataset_ids, args.start, args.end, format=args.format, out=args.out,
                         archive=args.archive, max_bytes=int(args.max_mb * 1e6))
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
