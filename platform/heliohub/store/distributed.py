"""Writing an ingest's records on the Dask cluster that read its files: Icechunk's distributed writes.

The files of a batch are read on the workers and stay there: the client gets each file's outline (:func:`outline`:
its time axes, its fixed variables and attributes, and the shape and type of the rest) and decides from it, as
without a cluster, what goes in. Records that come after every stored one (every batch of a long ingest but its
first, and a daily ingest) are then written by the workers: the client forks its Icechunk session once per part
of each array (a run of whole chunks along the record axis, :class:`ClusterStream`), each worker writes its
part's chunks from the files it needs (Dask brings a file's arrays to it when another worker read it) and hands
its fork back, and the client merges the forks into its session, writes the time index and the provenance rows,
and commits once. A fork cannot be made of a session that holds changes, and a dataset's first write creates its
arrays: those, files landing among stored records and replaced versions are written by the client, from the
files' arrays fetched from the workers (:func:`fetched`).

What limits this at scale is written in ``docs/store-layout.md`` ("Distributed writes").
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import icechunk
import numpy as np
import xarray as xr
import zarr

from .chunks import set_whole_chunks
from .layout import record_dims
from .merge import along, record_jobs, record_values, stream_after, writable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outline:
    """A file's dataset without the values of its record-varying variables (their time axes kept whole)."""

    skeleton: xr.Dataset
    """The dataset without the record-varying variables that are not time axes."""
    left_out: dict[str, tuple[tuple[str, ...], tuple[int, ...], str, dict[str, Any]]]
    """Each variable left out: its dimensions, shape, dtype and attributes."""
    order: tuple[str, ...]
    coords: frozenset[str]


def outline(ds: xr.Dataset) -> Outline:
    """The outline of a file's dataset (run on the worker that read it)."""
    axes = set(record_dims(ds))
    left_out = {name: (v.dims, v.shape, v.dtype.str, dict(v.attrs)) for name, v in ds.variables.items()
                if v.dims and v.dims[0] in axes and name not in ds.dims}
    return Outline(ds.drop_vars(list(left_out)), left_out, tuple(ds.variables), frozenset(ds.coords))


class HeldOnCluster:
    """Stands in a file's dataset on the client for a variable whose values stay on the cluster: its shape and
    dtype, for what the client decides (xarray takes it as an array on its fastpath); reading it is an error,
    as the client writes such a file only after :func:`fetched`."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape, self.dtype, self.ndim = shape, dtype, len(shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise RuntimeError("the values of a file read on the Dask cluster were asked for before they were "
                           "fetched: this is a fault of heliohub, please report it")

    __getitem__ = __array__


def lazy(outlined: Outline) -> xr.Dataset:
    """The file's dataset on the client: its outline, each variable left out held on the cluster
    (:class:`HeldOnCluster`)."""
    variables = {}
    for name in outlined.order:
        if name in outlined.left_out:
            dims, shape, dtype, attrs = outlined.left_out[name]
            variables[name] = xr.Variable(dims, HeldOnCluster(shape, np.dtype(dtype)), attrs, fastpath=True)
        else:
            variables[name] = outlined.skeleton.variables[name]
    return xr.Dataset({n: v for n, v in variables.items() if n not in outlined.coords},
                      coords={n: v for n, v in variables.items() if n in outlined.coords},
                      attrs=outlined.skeleton.attrs)


Held = tuple[Any, int]
"""Where a file's dataset is held on the cluster: the future of a list of datasets, and its index in the list."""


def fetched(sources: list[Held]) -> list[xr.Dataset]:
    """The datasets held on the cluster at ``sources``, here (gathered at once)."""
    futures = list({future.key: future for future, _ in sources}.values())
    lists = dict(zip((future.key for future in futures), sources[0][0].client.gather(futures), strict=True))
    return [lists[future.key][index] for future, index in sources]


def write_part(fork: icechunk.session.ForkSession, name: str, dim: str, at: int, chunks: range, length: int,
               held: list[tuple[list[xr.Dataset], int]]) -> icechunk.session.ForkSession:
    """On a worker: write the whole chunks ``chunks`` of the array ``name`` from the datasets ``held`` (consecutive
    files, the first at record ``at``; :data:`Held` with their futures resolved by Dask), the array resized to
    ``length`` records, into ``fork``; return the fork."""
    datasets = [listed[index] for listed, index in held]
    array = writable(zarr.open_group(fork.store, mode="r+")[name])
    set_whole_chunks(record_jobs(array, [record_values(d, name, dim, array) for d in datasets], at, chunks, length))
    return fork


def _runs(chunks: range, count: int) -> list[range]:
    """``chunks`` cut into at most ``count`` runs of consecutive chunks of about the same length."""
    count = max(1, min(count, len(chunks)))
    bounds = np.linspace(chunks.start, chunks.stop, count + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


class ClusterStream:
    """Writes records that come after every stored one (:func:`heliohub.store.merge.merge_into`'s ``stream``) on
    the cluster holding the files: ``sources`` say where the datasets given to it are held, in their order."""

    def __init__(self, session: icechunk.Session, sources: list[Held]) -> None:
        self.client = sources[0][0].client
        self.session = session
        self.sources = sources

    def __call__(self, group: zarr.Group, datasets: list[xr.Dataset], dim: str) -> None:
        if self.session.has_uncommitted_changes:  # a group moved from heliohub 0.1 in this session: no fork
            log.info("writing through the client: this session holds changes, and cannot be forked")
            stream_after(group, fetched(self.sources), dim)
            return
        threads = sum(self.client.nthreads().values()) or 1
        lengths = [d.sizes[dim] for d in datasets]
        parts = []
        for name in along(datasets[0], dim):
            array = group[name]
            chunk, at = int(array.chunks[0]), int(array.shape[0])
            offsets = np.cumsum([at, *lengths])
            length = int(offsets[-1])
            for run in _runs(range(at // chunk, -(-length // chunk)), threads):
                start, stop = run.start * chunk, min(length, run.stop * chunk)
                first = max(0, int(np.searchsorted(offsets, start, side="right")) - 1)
                last = int(np.searchsorted(offsets, stop, side="left"))
                parts.append(self.client.submit(write_part, self.session.fork(), name, dim, int(offsets[first]), run,
                                                length, self.sources[first:last], pure=False))
        log.info("%d part(s) of %d file(s) written on %d worker thread(s)", len(parts), len(datasets), threads)
        self.session.merge(*self.client.gather(parts))
