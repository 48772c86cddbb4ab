"""Tables kept in the store: a Zarr group of one-dimensional arrays of equal length, one per column.

The provenance of a dataset, its time index and the catalog are such tables (``docs/store-layout.md``). Columns
are chunked in :data:`ROWS_PER_CHUNK` rows, so writing rows from some row on (an append) rewrites only the chunks
from that row's on, and reading one row reads one chunk per column. Columns are int64 or text; text comes back as
Python ``str`` objects. A table is changed inside an Icechunk session and published by its commit, so its columns
never disagree in length for a reader.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from ..errors import StoreDamagedError

log = logging.getLogger(__name__)
ROWS_PER_CHUNK = 1024
_T = TypeVar("_T")
_R = TypeVar("_R")


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="heliohub-table")


def each(function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """``function`` of every item, at once: each zarr call waits some milliseconds on the store (a hand-over to
    zarr's event loop, then Icechunk), so a table's columns are read and written side by side, not in turn."""
    items = list(items)
    if len(items) < 2:
        return [function(item) for item in items]
    return list(_pool().map(function, items))


def _column(values: Iterable[object] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "OUT" or (array.size == 0 and array.dtype.kind == "f"):
        return np.asarray([("" if v is None else str(v)) for v in array.tolist()], dtype=object) if array.size \
            else np.empty(0, dtype=object)
    if array.dtype.kind in "iub":
        return array.astype("int64", copy=False)
    raise TypeError(f"table column {name!r}: {array.dtype} is neither int64 nor text")


def open_table(parent: zarr.Group, path: str) -> zarr.Group | None:
    """The table's group, or None when the store has none there."""
    try:
        node = parent[path]
    except KeyError:
        return None
    if not isinstance(node, zarr.Group):
        raise StoreDamagedError(f"{path} is an array where heliohub keeps a table")
    return node


def length(table: zarr.Group, where: str) -> int:
    """The number of rows (every column's length; a table whose columns disagree is damaged)."""
    lengths = {int(array.shape[0]) for _, array in table.arrays()}
    if len(lengths) > 1:
        raise StoreDamagedError(f"{where}: its columns have different lengths {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def write(parent: zarr.Group, path: str, columns: Mapping[str, Iterable[object] | np.ndarray], at: int = 0) -> None:
    """Write ``columns`` as the rows from row ``at`` on of the table at ``path`` (created when absent), which then
    ends with them: the rows before ``at`` are left as they are, so an append rewrites at most one chunk of what
    each column held."""
    table = parent.require_group(path)
    values = {name: _column(v, name) for name, v in columns.items()}
    count = {len(v) for v in values.values()}
    if len(count) != 1:
        raise ValueError(f"table {path}: columns of different lengths {sorted(count)}")
    (rows,) = count
    existing = dict(table.arrays())

    def one(item: tuple[str, np.ndarray]) -> None:
        name, column = item
        if name in existing:
            array = existing[name]
        else:
            text = column.dtype == object
            array = table.create_array(name, shape=(0,), dtype=str if text else "int64", chunks=(ROWS_PER_CHUNK,),
                                       fill_value="" if text else 0, compressors=ZstdCodec(level=3))
        array.resize((at + rows,))
        if rows:
            array[at:at + rows] = column

    each(one, values.items())


def read(table: zarr.Group, columns: Iterable[str], rows: slice | None = None,
         where: str = "") -> dict[str, np.ndarray]:
    """The ``columns`` (all rows, or ``rows``) of a table, text as ``str`` objects; a missing column is damage."""
    arrays = dict(table.arrays())

    def one(name: str) -> np.ndarray:
        if name not in arrays:
            raise StoreDamagedError(f"{where or table.path}: it has no column {name!r}")
        values = arrays[name][rows if rows is not None else slice(None)]
        return values.astype(object) if values.dtype.kind in "TUS" else np.asarray(values)

    names = list(columns)
    return dict(zip(names, each(one, names), strict=True))


def write_row(table: zarr.Group, index: int, values: Mapping[str, object]) -> None:
    """Replace row ``index`` in place (one chunk of each column rewritten)."""
    arrays = dict(table.arrays())

    def one(item: tuple[str, object]) -> None:
        name, value = item
        array = arrays[name]
        array[index] = ("" if value is None else str(value)) if array.dtype.kind in "TUSO" else int(value)

    each(one, values.items())
