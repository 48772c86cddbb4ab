"""CSA-style product requests over the store: the Cluster Science Archive's synchronous data request
(``data?RETRIEVAL_TYPE=PRODUCT&DATASET_ID=...&START_DATE=...&END_DATE=...&DELIVERY_FORMAT=...
&DELIVERY_INTERVAL=...&NON_BROWSER``), answered as the CSA answers it: a ``.tgz`` package holding one folder per
dataset, ``CSA_Download_<stamp>/<DATASET_ID>/<files>``, the files named by their span
(``<ID>__<start>_<end>_V<version>.cdf``). A script or client written for the CSA can be pointed at the platform.

As the CSA's: parameter names and values are case-insensitive; ``DATASET_ID`` may be repeated, hold several IDs
separated by commas, and hold wildcards (``C?_CP_FGM_SPIN``, ``C1_CP_*``). Delivery formats: ``CDF`` and
``CDF_ISTP`` (both ISTP-attributed CDF here, :mod:`heliohub.serving.formats`) and ``CEF``
(:mod:`heliohub.serving.cef_writer`). ``DELIVERY_INTERVAL`` is ``ALL`` (one file per dataset), ``DAILY`` or
``HOURLY`` (a file per day or hour that holds records). ``RETRIEVAL_ACCESS=STREAMED`` answers one dataset as one
CEF file, gzipped with ``GZIP=1``, as the CSA's streamed requests do. A request larger than the operator's limit
(the CSA's is 1 GB) is refused with HTTP 413 and the advice to reduce it, as the CSA advises.

Answers are streamed: the package is written a file at a time, a streamed CEF file a block of records at a time,
so the server holds one file (or one block) of an answer, not the whole of it.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
import tarfile
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import CaveatWarning, DatasetNotFoundError, HeliohubError, TimeRangeError
from ..store.access import open_dataset, search
from ..store.location import StoreLocation
from .cef_writer import cef_blocks
from .export import file_name, version_token
from .formats import WRITERS

log = logging.getLogger(__name__)

PARAMETERS = {"RETRIEVAL_TYPE", "RETRIEVAL_ACCESS", "DATASET_ID", "START_DATE", "END_DATE", "DELIVERY_FORMAT",
              "DELIVERY_INTERVAL", "NON_BROWSER", "REF_DOC", "GZIP"}
FORMATS = {"CDF": "cdf", "CDF_ISTP": "cdf", "CEF": "cef"}
INTERVALS = {"ALL": None, "DAILY": "1D", "HOURLY": "1h"}


class ProductRefused(HeliohubError):
    """A product request the server refuses: its HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Answer:
    """An answered product request: what it is, the files it holds, and its bytes, made as they are read."""

    content_type: str
    file_name: str
    files: list[str]
    blocks: Iterator[bytes]


def _time(text: str | None, name: str) -> pd.Timestamp:
    if not text:
        raise ProductRefused(400, f"{name} is required (ISO time, e.g. 2001-06-11T20:00:00Z)")
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ProductRefused(400, f"{name}={text!r} is not a time (use ISO, e.g. 2001-06-11T20:00:00Z)") from None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def _parameters(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """The request's parameters by upper-case name (the last of a repeated one) and its dataset IDs (all)."""
    query: dict[str, str] = {}
    ids: list[str] = []
    for key, value in pairs:
        key = key.upper()
        if key == "DATASET_ID":
            ids.extend(i.strip() for i in value.split(",") if i.strip())
        else:
            query[key] = value
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise ProductRefused(400, f"unknown parameter(s) {', '.join(unknown)}; a product request takes "
                                  f"{', '.join(sorted(PARAMETERS))}")
    if not ids:
        raise ProductRefused(400, "DATASET_ID is required (one ID, or several separated by commas or repeated)")
    return query, ids


def _matching(ids: list[str], archive: StoreLocation) -> list[str]:
    """The IDs asked for, wildcards matched against the store's datasets (in the store's order)."""
    if not any(c in i for i in ids for c in "*?["):
        return list(dict.fromkeys(ids))
    known = list(search(archive=archive)["dataset_id"])
    out: list[str] = []
    for pattern in ids:
        matched = fnmatch.filter(known, pattern) if any(c in pattern for c in "*?[") else [pattern]
        if not matched:
            raise ProductRefused(404, f"DATASET_ID={pattern!r} matches no dataset of this archive")
        out.extend(matched)
    return list(dict.fromkeys(out))


def product(pairs: list[tuple[str, str]], archive: StoreLocation, max_bytes: int) -> Answer:
    """The answer to a CSA product request (its query's name and value pairs, in order), or ProductRefused with
    the status and the reason. Every check is made here; the answer's bytes are made as they are read."""
    query, ids = _parameters(pairs)
    if query.get("RETRIEVAL_TYPE", "").upper() != "PRODUCT":
        raise ProductRefused(400, "RETRIEVAL_TYPE=PRODUCT is the only retrieval this server answers")
    streamed = query.get("RETRIEVAL_ACCESS", "").upper() == "STREAMED"
    delivery = query.get("DELIVERY_FORMAT", "CEF" if streamed else "CDF").upper()
    if delivery not in FORMATS:
        raise ProductRefused(400, f"DELIVERY_FORMAT={delivery!r}: use CEF, CDF or CDF_ISTP")
    interval = query.get("DELIVERY_INTERVAL", "ALL").upper()
    if interval not in INTERVALS:
        raise ProductRefused(400, f"DELIVERY_INTERVAL={interval!r}: use {', '.join(INTERVALS)}")
    start, end = _time(query.get("START_DATE"), "START_DATE"), _time(query.get("END_DATE"), "END_DATE")
    if start >= end:
        raise ProductRefused(400, f"START_DATE {start} is not before END_DATE {end}")
    if streamed and (delivery != "CEF" or len(ids) != 1 or any(c in ids[0] for c in "*?[")):
        raise ProductRefused(400, "RETRIEVAL_ACCESS=STREAMED delivers one dataset (no wildcards) as CEF")
    opened = []
    for dataset_id in _matching(ids, archive):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CaveatWarning)
                ds = open_dataset(dataset_id, start.to_datetime64(), end.to_datetime64(), archive=archive)
        except DatasetNotFoundError as error:
            raise ProductRefused(404, str(error)) from None
        except TimeRangeError:  # no records in the range: the package has no file of it, as the CSA's
            continue
        times = ds["time"].values
        opened.append((dataset_id, ds.isel(time=np.flatnonzero(times < end.to_datetime64()))))  # END_DATE excluded
    size = sum(v.nbytes for _, ds in opened for v in ds.variables.values())
    if size > max_bytes:
        raise ProductRefused(413, f"the request is {size / 1e6:.0f} MB, more than the {max_bytes / 1e6:.0f} MB this "
                                  "server delivers at once: reduce your request (a shorter range or fewer datasets)")
    if streamed:
        return _streamed(ids[0], opened, archive, start, end, query.get("GZIP", "0") == "1")
    pieces = [(dataset_id, part, file_name(dataset_id, first.to_datetime64(), last.to_datetime64(),
                                           version_token(part.attrs), FORMATS[delivery]))
              for dataset_id, ds in opened for first, last in _pieces(start, end, INTERVALS[interval])
              for part in [_within(ds, first, last)] if part.sizes.get("time", 0)]
    top = f"CSA_Download_{time.strftime('%Y%m%d_%H%M%S', time.gmtime())}"
    return Answer("application/x-gzip", f"{top}.tgz", [f"{i}/{name}" for i, _, name in pieces],
                  _package(pieces, top, FORMATS[delivery]))


def _within(ds: xr.Dataset, first: pd.Timestamp, last: pd.Timestamp) -> xr.Dataset:
    times = ds["time"].values
    return ds.isel(time=np.flatnonzero((times >= first.to_datetime64()) & (times < last.to_datetime64())))


def _streamed(dataset_id: str, opened: list[tuple[str, xr.Dataset]], archive: StoreLocation, start: pd.Timestamp,
              end: pd.Timestamp, gzip: bool) -> Answer:
    if opened:
        (_, ds), = opened
    else:  # nothing in the range: a file that says what the dataset is, with no records
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CaveatWarning)
            ds = open_dataset(dataset_id, archive=archive).isel(time=slice(0, 0))
    name = file_name(dataset_id, start.to_datetime64(), end.to_datetime64(), version_token(ds.attrs), "cef")
    blocks = cef_blocks(ds, name)
    if gzip:
        name += ".gz"
        blocks = _gzipped(blocks)
    return Answer("application/gzip" if gzip else "text/plain; charset=utf-8", name, [f"{dataset_id}/{name}"],
                  blocks)


def _gzipped(blocks: Iterator[bytes]) -> Iterator[bytes]:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
    for block in blocks:
        yield packer.compress(block)
    yield packer.flush()


class _Drain:
    """A write-only file that keeps what is written until it is taken: the tar stream's output, a file at a time."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _package(pieces: list[tuple[str, xr.Dataset, str]], top: str, answer_format: str) -> Iterator[bytes]:
    """The package's bytes, one file at a time (each written to a scratch file, added, and removed)."""
    drain = _Drain()
    with tempfile.TemporaryDirectory(prefix="heliohub-product-") as scratch:
        with tarfile.open(fileobj=drain, mode="w|gz") as tar:  # type: ignore[call-overload]
            for dataset_id, part, name in pieces:
                path = Path(scratch) / name
                WRITERS[answer_format](part.load(), path, name)
                tar.add(path, arcname=f"{top}/{dataset_id}/{name}")
                path.unlink()
                yield drain.take()
        yield drain.take()


def _pieces(start: pd.Timestamp, end: pd.Timestamp, step: str | None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if step is None:
        return [(start, end)]
    edges = [start, *pd.date_range(start.floor(step) + pd.Timedelta(step), end, freq=step, inclusive="left"), end]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]
