"""Encoding and storing whole chunks of arrays, the write path's hot loop: the one place heliohub uses zarr's
internals (the chunk spec, the codec pipeline, the chunk key).

``array[a:b] = values`` does this and more: it indexes every chunk of the selection, reads the chunks it fills in
part and merges each chunk into a new fill-valued array before encoding. ``benchmarks/bench_store.py`` measured
that at twice the CPU of the encoding itself on a year of FGM data, so this module encodes whole chunks through
the array's own codec pipeline instead. zarr is capped below its next minor version in pyproject.toml, and
``tests/test_store.py::test_whole_chunks_are_stored_as_zarr_stores_them`` checks that what is stored here is
byte for byte what ``zarr.Array`` stores.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.codec_pipeline import fill_value_or_default
from zarr.core.sync import sync


def set_whole_chunks(chunks: list[tuple[zarr.Array, int, list[np.ndarray]]]) -> None:
    """Encode and store whole chunks, each given as (array, index along the first axis, its values in one or more
    consecutive parts), for arrays held in one chunk along their other axes, with each array's own codecs. The
    last chunk of an array may be given short: it is padded with the fill value, as Zarr pads it.

    ``array[a:b] = values`` does this and more: it indexes every chunk of the selection, reads the chunks it
    fills in part and merges each chunk into a new fill-valued array before encoding, which cost twice the CPU
    of the encoding itself on a year of FGM data. Here the parts are copied into reused buffers and several
    chunks are copied and encoded at once, in threads that let go of the GIL, at most two per core.
    """
    if not chunks:
        return
    prototype = default_buffer_prototype()
    limit = asyncio.Semaphore(2 * (os.cpu_count() or 1))
    free: dict[tuple[Any, ...], list[np.ndarray]] = defaultdict(list)

    def assemble(spec: Any, parts: list[np.ndarray], buffer: np.ndarray) -> np.ndarray:
        if len(parts) == 1 and parts[0].shape == spec.shape and parts[0].dtype == buffer.dtype \
                and parts[0].flags.c_contiguous:
            return parts[0]
        filled = np.concatenate(parts, out=buffer[:sum(len(p) for p in parts)])
        if len(filled) < len(buffer):
            buffer[len(filled):] = fill_value_or_default(spec)
        return buffer

    async def one(array: zarr.Array, index: int, parts: list[np.ndarray]) -> None:
        inner = array.async_array
        coords = (index, *[0] * (array.ndim - 1))
        async with limit:
            spec = inner.metadata.get_chunk_spec(coords, inner.config, prototype)
            key = (spec.shape, array.dtype)
            buffer = free[key].pop() if free[key] else np.empty(spec.shape, dtype=array.dtype)
            block = await asyncio.to_thread(assemble, spec, parts, buffer)
            [encoded] = await inner.codec_pipeline.encode([(prototype.nd_buffer.from_numpy_array(block), spec)])
            await (inner.store_path / inner.metadata.encode_chunk_key(coords)).set(encoded)
            if inner.codec_pipeline.bytes_bytes_codecs:  # else the stored bytes may be a view of the buffer
                free[key].append(buffer)

    async def every() -> None:
        await asyncio.gather(*(one(*chunk) for chunk in chunks))

    sync(every())
