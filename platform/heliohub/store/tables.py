"""Tables kept in the store: a Zarr group of a few two-dimensional arrays (rows × columns), int64 or text.

The provenance of a dataset, its time index and the catalog are such tables (``docs/store-layout.md``). Each table
groups its columns into arrays by who reads them together (the group's ``columns`` attribute names the columns of
each array), so a search reads the catalog's searched columns without its descriptions, and a table costs a few
arrays, not one per column: each array is a few milliseconds of Icechunk and zarr to create, resize or write.
Arrays are chunked in :data:`ROWS_PER_CHUNK` rows, so writing rows from some row on (an append) rewrites only the
chunks from there on, and reading one row reads one chunk per array. Text comes back as Python ``str`` objects. A
table is changed inside an Icechunk session and published by its commit, so its arrays never disagree in length
for a reader (and a table whose arrays do is reported as damaged).
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from ..errors import StoreDamagedError

log = logging.getLogger(__name__)
ROWS_PER_CHUNK = 1024
COLUMNS = "columns"
"""The group attribute naming each array's columns, in order: ``{"array": ["column", ...], ...}``."""
_T = TypeVar("_T")
_R = TypeVar("_R")


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="heliohub-table")


def each(function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """``function`` of every item, at once: each zarr call waits some milliseconds on the store (a hand-over to
    zarr's event loop, then Icechunk), so a table's arrays are read and written side by side, not in turn."""
    items = list(items)
    if len(items) < 2:
        return [function(item) for item in items]
    return list(_pool().map(function, items))


def open_table(parent: zarr.Group, path: str) -> zarr.Group | None:
    """The table's group, or None when the store has none there."""
    try:
        node = parent[path]
    except KeyError:
        return None
    if not isinstance(node, zarr.Group):
        raise StoreDamagedError(f"{path} is an array where heliohub keeps a table")
    return node


def _layout(table: zarr.Group, where: str) -> dict[str, list[str]]:
    layout = table.attrs.get(COLUMNS)
    if not isinstance(layout, dict) or not all(isinstance(v, list) for v in layout.values()):
        raise StoreDamagedError(f"{where}: its {COLUMNS!r} attribute does not name its columns")
    return layout


def _arrays(table: zarr.Group, where: str) -> dict[str, zarr.Array]:
    """The table's arrays, checked against its layout (one column each, equal lengths)."""
    layout = _layout(table, where)
    arrays = dict(table.arrays())
    for name, columns in layout.items():
        if name not in arrays or arrays[name].ndim != 2 or arrays[name].shape[1] != len(columns):
            raise StoreDamagedError(f"{where}: its array {name!r} is missing or does not hold the columns "
                                    f"{', '.join(columns)}")
    lengths = {int(arrays[name].shape[0]) for name in layout}
    if len(lengths) > 1:
        raise StoreDamagedError(f"{where}: its arrays have different lengths {sorted(lengths)}")
    return {name: arrays[name] for name in layout}


def length(table: zarr.Group, where: str) -> int:
    """The number of rows."""
    arrays = _arrays(table, where)
    return int(next(iter(arrays.values())).shape[0]) if arrays else 0


def _block(values: Sequence[object] | np.ndarray, text: bool) -> np.ndarray:
    if text:
        return np.asarray(["" if v is None else str(v) for v in values], dtype=object)
    return np.asarray(values, dtype=np.int64)


def write(parent: zarr.Group, path: str, columns: Mapping[str, Sequence[object] | np.ndarray], at: int = 0,
          layout: Mapping[str, Sequence[str]] | None = None) -> None:
    """Write ``columns`` (every column of the table) as the rows from row ``at`` on of the table at ``path``,
    which then ends with them: the rows before ``at`` are left as they are, so an append rewrites at most one chunk
    of what each array held. ``layout`` (array name: its columns; an array is text when its name starts with
    ``text``) makes the table when there is none yet."""
    table = open_table(parent, path)
    if table is None:
        if layout is None:
            raise ValueError(f"table {path}: no layout to make it with")
        table = parent.require_group(path)
        table.attrs[COLUMNS] = {name: list(names) for name, names in layout.items()}
    where = f"table {table.path}"
    plan = _layout(table, where)
    rows = {len(v) for v in columns.values()}
    if len(rows) != 1 or set(columns) != {c for names in plan.values() for c in names}:
        raise ValueError(f"{where}: the columns given do not fill its rows")
    (count,) = rows
    existing = dict(table.arrays())

    def one(item: tuple[str, list[str]]) -> None:
        name, names = item
        text = name.startswith("text")
        block = np.stack([_block(columns[c], text) for c in names], axis=1) if count else None
        array = existing.get(name)
        if array is None:
            array = table.create_array(name, shape=(0, len(names)), dtype=str if text else "int64",
                                       chunks=(ROWS_PER_CHUNK, len(names)), fill_value="" if text else 0,
                                       compressors=ZstdCodec(level=3))
        array.resize((at + count, len(names)))
        if count:
            array[at:at + count] = block

    each(one, plan.items())


def read(table: zarr.Group, columns: Iterable[str], rows: slice | None = None,
         where: str = "") -> dict[str, np.ndarray]:
    """The ``columns`` (all rows, or ``rows``) of a table, text as ``str`` objects, reading only the arrays that
    hold them; a column the table lacks is damage."""
    where = where or f"table {table.path}"
    arrays = _arrays(table, where)
    plan = _layout(table, where)
    wanted = list(columns)
    holder = {c: name for name, names in plan.items() for c in names}
    missing = [c for c in wanted if c not in holder]
    if missing:
        raise StoreDamagedError(f"{where}: it has no column(s) {', '.join(missing)}")
    needed = sorted({holder[c] for c in wanted})

    def one(name: str) -> np.ndarray:
        values = arrays[name][rows if rows is not None else slice(None)]
        return values.astype(object) if values.dtype.kind in "TUS" else np.asarray(values)

    blocks = dict(zip(needed, each(one, needed), strict=True))
    return {c: blocks[holder[c]][:, plan[holder[c]].index(c)] for c in wanted}


def write_row(table: zarr.Group, index: int, values: Mapping[str, object]) -> None:
    """Set columns of row ``index`` in place (one chunk of each array holding them rewritten)."""
    where = f"table {table.path}"
    arrays = _arrays(table, where)
    plan = _layout(table, where)
    changes = [(name, [(plan[name].index(c), v) for c, v in values.items() if c in plan[name]]) for name in plan]

    def one(item: tuple[str, list[tuple[int, object]]]) -> None:
        name, cells = item
        text = name.startswith("text")
        if len(cells) == len(plan[name]):
            row = [v for _, v in sorted(cells)]
            arrays[name][index] = _block(row, text)
        else:
            for column, value in cells:
                arrays[name][index, column] = ("" if value is None else str(value)) if text else int(value)

    each(one, [(name, cells) for name, cells in changes if cells])
