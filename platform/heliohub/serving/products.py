"""CSA-style product requests over the store: the Cluster Science Archive's synchronous data request
(``data?RETRIEVAL_TYPE=PRODUCT&DATASET_ID=...&START_DATE=...&END_DATE=...&DELIVERY_FORMAT=...
&DELIVERY_INTERVAL=...&NON_BROWSER``), answered as the CSA answers it: a ``.tar.gz`` package holding one folder per
dataset, ``CSA_Download_<stamp>/<DATASET_ID>/<files>``, the files named by their span
(``<ID>__<start>_<end>_V<version>.cdf``). A script or client written for the CSA can be pointed at the platform.

Delivery formats: ``CDF`` and ``CDF_ISTP`` (both ISTP-attributed CDF here, :mod:`heliohub.serving.formats`).
``CEF`` is refused with a message saying so: heliohub has no CEF writer yet. ``DELIVERY_INTERVAL`` is ``ALL`` (one
file per dataset), ``DAILY`` or ``HOURLY`` (a file per day or hour that holds records). A request larger than the
operator's limit (the CSA's is 1 GB) is refused with HTTP 413 and the advice to reduce it, as the CSA advises.
"""

from __future__ import annotations

import io
import itertools
import tarfile
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CaveatWarning, DatasetNotFoundError, HeliohubError, TimeRangeError
from ..store.access import open_dataset
from ..store.location import StoreLocation
from .export import file_name, version_token
from .formats import WRITERS

PARAMETERS = {"RETRIEVAL_TYPE", "DATASET_ID", "START_DATE", "END_DATE", "DELIVERY_FORMAT", "DELIVERY_INTERVAL",
              "NON_BROWSER", "REF_DOC"}
FORMATS = {"CDF": "cdf", "CDF_ISTP": "cdf"}
INTERVALS = {"ALL": None, "DAILY": "1D", "HOURLY": "1h"}


class ProductRefused(HeliohubError):
    """A product request the server refuses: its HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Package:
    """An answered product request: the ``.tar.gz`` and the files it holds."""

    data: bytes
    files: list[str]


def _time(text: str | None, name: str) -> pd.Timestamp:
    if not text:
        raise ProductRefused(400, f"{name} is required (ISO time, e.g. 2001-06-11T20:00:00Z)")
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ProductRefused(400, f"{name}={text!r} is not a time (use ISO, e.g. 2001-06-11T20:00:00Z)") from None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def product(query: dict[str, str], archive: StoreLocation, max_bytes: int) -> Package:
    """The package answering a CSA product request, or ProductRefused with the status and the reason."""
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise ProductRefused(400, f"unknown parameter(s) {', '.join(unknown)}; a product request takes "
                                  f"{', '.join(sorted(PARAMETERS))}")
    if query.get("RETRIEVAL_TYPE", "").upper() != "PRODUCT":
        raise ProductRefused(400, "RETRIEVAL_TYPE=PRODUCT is the only retrieval this server answers")
    delivery = query.get("DELIVERY_FORMAT", "CDF").upper()
    if delivery == "CEF":
        raise ProductRefused(400, "DELIVERY_FORMAT=CEF is not offered by this server yet: ask for CDF or CDF_ISTP")
    if delivery not in FORMATS:
        raise ProductRefused(400, f"DELIVERY_FORMAT={delivery!r}: use CDF or CDF_ISTP")
    interval = query.get("DELIVERY_INTERVAL", "ALL").upper()
    if interval not in INTERVALS:
        raise ProductRefused(400, f"DELIVERY_INTERVAL={interval!r}: use {', '.join(INTERVALS)}")
    start, end = _time(query.get("START_DATE"), "START_DATE"), _time(query.get("END_DATE"), "END_DATE")
    if start >= end:
        raise ProductRefused(400, f"START_DATE {start} is not before END_DATE {end}")
    ids = [i.strip() for i in query.get("DATASET_ID", "").split(",") if i.strip()]
    if not ids:
        raise ProductRefused(400, "DATASET_ID is required (one ID, or several separated by commas)")
    opened = []
    for dataset_id in ids:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CaveatWarning)
                ds = open_dataset(dataset_id, start.to_datetime64(), end.to_datetime64(), archive=archive)
        except DatasetNotFoundError as error:
            raise ProductRefused(404, str(error)) from None
        except TimeRangeError:  # no records in the range: the package has no file of it, as the CSA's
            continue
        times = ds["time"].values
        ds = ds.isel(time=np.flatnonzero(times < end.to_datetime64()))  # END_DATE exclusive, as the CSA cuts
        opened.append((dataset_id, ds))
    size = sum(v.nbytes for _, ds in opened for v in ds.variables.values())
    if size > max_bytes:
        raise ProductRefused(413, f"the request is {size / 1e6:.0f} MB, more than the {max_bytes / 1e6:.0f} MB this "
                                  "server delivers at once: reduce your request (a shorter range or fewer datasets)")
    top = f"CSA_Download_{time.strftime('%Y%m%d_%H%M%S', time.gmtime())}"
    buffer, files = io.BytesIO(), []
    with tempfile.TemporaryDirectory(prefix="heliohub-product-") as scratch, \
            tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for dataset_id, ds in opened:
            for first, last in _pieces(start, end, INTERVALS[interval]):
                part = ds.isel(time=np.flatnonzero((ds["time"].values >= first.to_datetime64())
                                                   & (ds["time"].values < last.to_datetime64())))
                if part.sizes.get("time", 0) == 0:
                    continue
                name = file_name(dataset_id, first.to_datetime64(), last.to_datetime64(),
                                 version_token(part.attrs), "cdf")
                path = Path(scratch) / name
                WRITERS[FORMATS[delivery]](part.load(), path)
                tar.add(path, arcname=f"{top}/{dataset_id}/{name}")
                files.append(f"{dataset_id}/{name}")
    return Package(buffer.getvalue(), files)


def _pieces(start: pd.Timestamp, end: pd.Timestamp, step: str | None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if step is None:
        return [(start, end)]
    edges = [start, *pd.date_range(start.floor(step) + pd.Timedelta(step), end, freq=step, inclusive="left"), end]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]
