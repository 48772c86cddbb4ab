"""Reading a whole archive store back, to compare stores and to compare a store with the files it came from; the
requests a block makes of the S3 endpoint."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from heliohub.store import catalog, provenance, tables, time_index
from heliohub.store.layout import VARIABLE_ORDER, record_dims
from heliohub.store.location import BRANCH, StoreLocation

ROOT = Path(__file__).resolve().parents[1]


def open_stored(archive: str | StoreLocation, dataset_id: str) -> xr.Dataset:
    """A dataset as the store holds it, loaded, with what heliohub keeps beside it in its ``encoding``: the current
    files (``files``: provenance entries) and the time index of each axis as :func:`time_index.time_chunk_index`
    gives it (``index``)."""
    store = StoreLocation.resolve(archive)
    session = store.repository(dataset_id).readonly_session(branch=BRANCH)
    ds = xr.open_zarr(session.store, consolidated=False, chunks=None,
                      decode_timedelta=xr.coders.CFTimedeltaCoder(decode_via_units=False)).load()
    root = zarr.open_group(session.store, mode="r")
    ds.encoding["files"] = provenance.current(root, dataset_id)
    ds.encoding["index"] = {dim: stored_index(root, dim) for dim in record_dims(ds)}
    return ds


def stored_index(root: zarr.Group, dim: str) -> dict[str, object] | None:
    """The time index of ``dim`` as stored, in the form of :func:`time_index.time_chunk_index` (None: none)."""
    group = tables.open_table(root, time_index.index_path(dim))
    if group is None:
        return None
    chunks = tables.read(group["chunks"], ("first", "last", "gaps"))
    gaps = tables.read(group["gaps"], ("before", "after"))
    pairs = np.column_stack([gaps["before"], gaps["after"]]).tolist()
    offsets = np.cumsum([0, *chunks["gaps"]])
    per_chunk = [pairs[offsets[i]:offsets[i + 1]] for i in range(len(chunks["first"]))]
    entry = {"chunk": group.attrs["chunk"], "records": group.attrs["records"], "first": chunks["first"].tolist(),
             "last": chunks["last"].tolist(), "gaps": per_chunk}
    return {**entry, "coverage": time_index.read_coverage(root, dim)}


def contents(archive: str | StoreLocation) -> dict[str, object]:
    """Everything a reader of the store can see: the catalog (without storage sizes, which depend on history)
    and every dataset's values and attributes."""
    store = StoreLocation.resolve(archive)
    entries = catalog.read_catalog(store)
    datasets = {dataset_id: open_stored(store, dataset_id) for dataset_id in sorted(entries)}
    for entry in entries.values():
        entry.pop("stored_bytes", None)
        entry.pop("last_ingest", None)
    return {"catalog": json.loads(json.dumps(entries, sort_keys=True)), "datasets": datasets}


def assert_same_contents(a: dict[str, object], b: dict[str, object]) -> None:
    assert a["catalog"] == b["catalog"]
    assert sorted(a["datasets"]) == sorted(b["datasets"])
    for dataset_id, ds in a["datasets"].items():
        xr.testing.assert_identical(ds, b["datasets"][dataset_id])


def without_provenance(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without the attributes heliohub keeps in a stored group for itself."""
    kept = {k: v for k, v in ds.attrs.items() if k != VARIABLE_ORDER}
    return ds.drop_attrs(deep=False).assign_attrs(kept)


def assert_time_index(stored: xr.Dataset) -> None:
    """The group's index of its time chunks (written from the values being stored, :func:`open_stored`) says what
    its time axes hold as read back."""
    for dim in record_dims(stored):
        expected = time_index.time_chunk_index(stored[dim].values, stored[dim].encoding["chunks"][0])
        assert stored.encoding["index"][dim] == expected, dim


def run_ingest(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    """``heliohub ingest ARGS`` in a child process with this interpreter."""
    command = [sys.executable, "-m", "heliohub.cli", "ingest", *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=ROOT, timeout=600, **kwargs)


@contextlib.contextmanager
def requests_seen():
    """Every request line the S3 endpoint logs while the block runs."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("werkzeug")
    handler, level, propagate = Collect(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def chunk_gets(lines: list[str]) -> int:
    return sum(bool(re.search(r"GET \S*/chunks/", line)) for line in lines)
