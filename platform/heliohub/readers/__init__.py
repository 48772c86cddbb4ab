"""Readers for the archives' own formats, each saying whether it can read a given file.

``read_file`` asks each registered reader in turn (as SunPy's map and timeseries factories do) and the first
that recognises the file's content reads it; the file name is never trusted.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import xarray as xr

from ..errors import UnknownFormatError
from ..sources import Source, read_source
from .cdf import CdfReader
from .cef import CefReader
from .fits import FitsReader


class Reader(Protocol):
    """What a reader offers: a name, a content check and a read."""

    name: str

    def can_read(self, source: Source) -> bool: ...

    def read(self, source: Source, *, include_paths: list[str] | None = None) -> xr.Dataset: ...


READERS: list[Reader] = [CdfReader(), FitsReader(), CefReader()]


def reader_for(source: Source) -> Reader:
    """The first registered reader that recognises ``source``, or UnknownFormatError."""
    for reader in READERS:
        if reader.can_read(source):
            return reader
    known = ", ".join(r.name for r in READERS)
    raise UnknownFormatError(source.path, f"not a file heliohub can read (it knows {known})",
                             hint="check that the file is complete and of one of these formats")


def read_file(path: str | os.PathLike[str], *, include_paths: list[str] | None = None,
              storage_options: dict[str, Any] | None = None) -> xr.Dataset:
    """Read one archive file (CEF, CDF or FITS; plain or gzipped; a local path or fsspec URL) into memory.

    Parameters
    ----------
    path:
        The file. Gzip is recognised by content and undone transparently.
    include_paths:
        For CEF: folders searched first for ``INCLUDE`` headers, before ``CEFPATH`` and the file's own folder.
    storage_options:
        Passed to fsspec when ``path`` is a URL (for example S3 credentials).

    Returns
    -------
    xarray.Dataset
        In heliohub's convention (see ``docs/conventions.md``): a UTC ``time`` dimension, the archive's variable
        names, fill values as NaN/NaT, units and descriptions as attributes, the file's global metadata.

    Raises
    ------
    heliohub.errors.FileReadError
        On anything wrong with the file, naming the file and, where known, the line and variable.
    """
    return read_with_source(path, include_paths=include_paths, storage_options=storage_options)[1]


def read_with_source(path: str | os.PathLike[str], *, include_paths: list[str] | None = None,
                     storage_options: dict[str, Any] | None = None) -> tuple[Source, xr.Dataset]:
    """As :func:`read_file`, also returning the file's (decompressed) content, for checksums and provenance."""
    source = read_source(path, **(storage_options or {}))
    reader = reader_for(source)
    return source, reader.read(source, include_paths=include_paths)


__all__ = ["READERS", "Reader", "read_file", "read_with_source", "reader_for"]
