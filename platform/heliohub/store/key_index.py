"""A hash table kept in the store: text keys to the last row of a table that holds each, in one Zarr array.

The provenance table (:mod:`.provenance`) gains a row per file and is never rewritten; an ingest needs the current
row of each delivery it brings, which without an index means reading every row's key, a cost that grows with the
history (measured in ``benchmarks/bench_scale.py``, part ``provenance``; docs/store-layout.md). The table here is an
open-addressing hash table with linear probing: slot ``i`` of the array (capacity × 2, int64) holds a key's 64-bit
hash and its row + 1 (0: an empty slot). Keys are only added or pointed at a later row, never removed, so a probe
ends at the key's slot or at an empty one. A lookup reads the chunks its probes reach (one, nearly always); an
update rewrites those. The array's ``rows`` attribute says how many rows of the table it covers: an index that does
not cover the table (missing, written before the table's last rows) is not used, and is built again whole, with
at least three slots per key, once two thirds of the slots are taken (so its cost, spread over the rows added,
stays constant).

Two keys with the same 64-bit hash (about one chance in 10^9 among 175,000 keys) would share a slot: the
caller checks the key of the row it finds, and treats a different one as not found.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from . import tables

log = logging.getLogger(__name__)
CHUNK_SLOTS = 1024
"""Slots per chunk (16 kB): a day appended to a dataset of hourly files updates some 24 slots, each in its chunk."""
ROWS, KEYS = "rows", "keys"


def key_hash(key: str) -> int:
    """The key's 64-bit hash (BLAKE2b: the same in every process, unlike Python's ``hash``)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little", signed=True)


class KeyIndex:
    """An index array, its chunks read as probes reach them (``prefetch`` reads several at once) and kept;
    :meth:`point` changes slots in memory and :meth:`write` stores the chunks changed."""

    def __init__(self, array: zarr.Array) -> None:
        self.array = array
        self.capacity = int(array.shape[0])
        self._chunks: dict[int, np.ndarray] = {}
        self._changed: set[int] = set()
        self.keys = int(array.attrs.get(KEYS, self.capacity))

    @classmethod
    def open(cls, parent: zarr.Group, path: str, rows: int) -> KeyIndex | None:
        """The index, when there is one that covers exactly the ``rows`` rows of its table."""
        try:
            array = parent[path]
        except KeyError:
            return None
        if not isinstance(array, zarr.Array) or array.ndim != 2 or array.shape[1] != 2:
            return None
        index = cls(array)
        return index if index.covers(rows) else None

    def covers(self, rows: int) -> bool:
        """Whether the index covers exactly the first ``rows`` rows of its table (its ``rows`` attribute)."""
        return int(self.array.attrs.get(ROWS, -1)) == rows

    def _chunk(self, index: int) -> np.ndarray:
        block = self._chunks.get(index)
        if block is None:
            block = self._chunks[index] = np.array(self.array[index * CHUNK_SLOTS:(index + 1) * CHUNK_SLOTS])
        return block

    def prefetch(self, hashes: Iterable[int]) -> None:
        """Read at once the chunks where the probes of ``hashes`` start."""
        wanted = sorted({(h & (self.capacity - 1)) // CHUNK_SLOTS for h in hashes} - set(self._chunks))
        for index, block in zip(wanted, tables.each(
                lambda i: np.array(self.array[i * CHUNK_SLOTS:(i + 1) * CHUNK_SLOTS]), wanted), strict=True):
            self._chunks[index] = block

    def _slot(self, value: int) -> tuple[int, int]:
        """The slot of hash ``value`` (its own, or the empty one a new key takes) and the row it holds + 1."""
        slot = value & (self.capacity - 1)
        for _ in range(self.capacity):
            stored, row = self._chunk(slot // CHUNK_SLOTS)[slot % CHUNK_SLOTS]
            if row == 0 or stored == value:
                return slot, int(row)
            slot = (slot + 1) & (self.capacity - 1)
        raise ValueError(f"the key index {self.array.path} has no empty slot")  # never: it is kept a third empty

    def row(self, key: str) -> int | None:
        """The last row of ``key`` (None: the table has none)."""
        row = self._slot(key_hash(key))[1]
        return row - 1 if row else None

    def point(self, key: str, row: int) -> None:
        """Make ``row`` the last row of ``key``."""
        value = key_hash(key)
        slot, held = self._slot(value)
        self.keys += not held
        self._chunk(slot // CHUNK_SLOTS)[slot % CHUNK_SLOTS] = (value, row + 1)
        self._changed.add(slot // CHUNK_SLOTS)

    def write(self, rows: int) -> None:
        """Store the chunks changed; the index now covers ``rows`` rows of its table."""
        def one(index: int) -> None:
            block = self._chunks[index]
            self.array[index * CHUNK_SLOTS:index * CHUNK_SLOTS + len(block)] = block

        tables.each(one, sorted(self._changed))
        self._changed.clear()
        self.array.attrs.update({ROWS: int(rows), KEYS: self.keys})

    def has_room(self, added: int) -> bool:
        """Whether ``added`` more keys leave it under two thirds full (else it is built again, larger)."""
        return 3 * (self.keys + added) < 2 * self.capacity


def build(parent: zarr.Group, path: str, keys: Sequence[str]) -> KeyIndex:
    """Build the index of a table whose row ``i`` has key ``keys[i]``, at least three slots per key, replacing any
    index there."""
    last = {key: row for row, key in enumerate(keys)}
    capacity = CHUNK_SLOTS
    while capacity < 3 * len(last):
        capacity *= 2
    slots = np.zeros((capacity, 2), dtype=np.int64)
    mask = capacity - 1
    for key, row in last.items():
        value = key_hash(key)
        slot = value & mask
        while slots[slot, 1]:
            slot = (slot + 1) & mask
        slots[slot] = (value, row + 1)
    array = parent.create_array(path, shape=slots.shape, chunks=(CHUNK_SLOTS, 2), dtype="int64", fill_value=0,
                                compressors=ZstdCodec(level=1), overwrite=True)
    array[:] = slots
    array.attrs.update({ROWS: len(keys), KEYS: len(last)})
    log.info("built the key index %s: %d keys in %d slots", array.path, len(last), capacity)
    return KeyIndex(array)
