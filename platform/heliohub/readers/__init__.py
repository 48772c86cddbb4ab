"""Readers for the archives' own formats, each saying whether it can read a given file.

Readers are found through the entry point group ``heliohub.readers`` (heliohub's own CDF, FITS and CEF readers
too, as xarray finds its backends): a package that installs an entry point there adds a format. ``read_file`` asks
each reader in turn, heliohub's first, then the others by name (as SunPy's map and timeseries factories do), and
the first that recognises the file's content reads it; the file name is never trusted.

Whatever the bytes, a read returns a dataset or raises :class:`~heliohub.errors.FileReadError`: a reader's own
failures (a bug of heliohub's, or of the library under it) are one too, and say so.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from importlib.metadata import entry_points
from typing import Any, Protocol

import xarray as xr

from ..errors import FileReadError, HeliohubWarning, UnknownFormatError
from ..raw_files import RawFile, read_raw_file

ENTRY_POINTS = "heliohub.readers"
BUILT_IN = ("cdf", "fits", "cef")  # asked first, in this order (CDF and FITS by magic number, CEF by its keywords)
FILE_SUFFIXES = (".cef", ".cdf", ".fits", ".fts", ".fit")
"""The names of the archives' files (also gzipped): what a folder is searched for. A file named is always tried,
whatever its name, as readers go by content."""


def is_archive_file_name(name: str) -> bool:
    """Whether a file's name is one of the archives' (:data:`FILE_SUFFIXES`, also with ``.gz``)."""
    return name.lower().removesuffix(".gz").endswith(FILE_SUFFIXES)

log = logging.getLogger(__name__)


class Reader(Protocol):
    """What a reader offers: a name, a content check and a read."""

    name: str

    def can_read(self, raw_file: RawFile) -> bool: ...

    def read(self, raw_file: RawFile, *, include_paths: list[str] | None = None) -> xr.Dataset: ...


@functools.cache
def readers() -> tuple[Reader, ...]:
    """Every installed reader, heliohub's first; one that does not load is left out, with a warning naming it."""
    found = sorted(entry_points(group=ENTRY_POINTS),
                   key=lambda e: (BUILT_IN.index(e.name) if e.name in BUILT_IN else len(BUILT_IN), e.name))
    loaded = []
    for entry in found:
        try:
            loaded.append(entry.load()())
        except Exception as error:  # a third party's package: any failure of its import is its own
            warnings.warn(HeliohubWarning(f"the reader {entry.name!r} ({entry.value}, entry point group "
                                          f"{ENTRY_POINTS}) does not load and is not used: {error!r}"), stacklevel=2)
    return tuple(loaded)


def reader_for(raw_file: RawFile) -> Reader:
    """The first reader that recognises ``raw_file``, or UnknownFormatError."""
    for reader in readers():
        if _guarded(reader, "can_read", raw_file):
            return reader
    known = ", ".join(r.name for r in readers())
    raise UnknownFormatError(raw_file.path, f"not a file heliohub can read (it knows {known})",
                             hint="check that the file is complete and of one of these formats")


def _guarded(reader: Reader, method: str, raw_file: RawFile, **kwargs: Any) -> Any:
    """A reader's method, any failure of which is a FileReadError that says whose failure it is."""
    try:
        return getattr(reader, method)(raw_file, **kwargs)
    except (FileReadError, Warning):  # a warning raised as an error (python -W error) is the caller's choice
        raise
    except Exception as error:  # a reader's own failure: reported as such, never as the file's fault
        log.debug("the %s reader failed on %s", reader.name, raw_file.path, exc_info=True)
        raise FileReadError(raw_file.path, f"heliohub's {reader.name} reader failed on it ({type(error).__name__}: "
                            f"{error})", hint="this is a fault of heliohub or of a library it uses, not "
                            "necessarily of the file: please report it with the file") from error


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
                     storage_options: dict[str, Any] | None = None) -> tuple[RawFile, xr.Dataset]:
    """As :func:`read_file`, also returning the file's (decompressed) content, for checksums and provenance."""
    raw_file = read_raw_file(path, **(storage_options or {}))
    return raw_file, read_source_with(reader_for(raw_file), raw_file, include_paths)


def read_source_with(reader: Reader, raw_file: RawFile, include_paths: list[str] | None = None) -> xr.Dataset:
    """``reader.read(raw_file)``, its own failures a FileReadError too."""
    return _guarded(reader, "read", raw_file, include_paths=include_paths)


__all__ = ["ENTRY_POINTS", "Reader", "read_file", "read_source_with", "read_with_source", "reader_for", "readers"]
