"""Getting the bytes of an archive file: local paths and fsspec URLs, gzip undone transparently."""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass

import fsspec

from .errors import FileReadError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class RawFile:
    """An archive file's name and decompressed content."""

    path: str
    """The path or URL as the caller gave it (used in every error message)."""
    data: bytes
    """The whole file, decompressed if it was gzipped."""
    compressed: bool

    @property
    def name(self) -> str:
        """The file name without folders and without a ``.gz`` suffix."""
        base = self.path.rstrip("/").rsplit("/", 1)[-1]
        base = base.rsplit(os.sep, 1)[-1]
        return base[:-3] if base.lower().endswith(".gz") else base


def read_raw_file(path: str | os.PathLike[str], **storage_options: object) -> RawFile:
    """Read a local file or fsspec URL whole, decompressing gzip (detected by its magic bytes, not its name)."""
    text_path = os.fspath(path)
    try:
        if "://" in text_path or storage_options:
            with fsspec.open(text_path, "rb", **storage_options) as handle:
                raw = handle.read()
        else:  # a local path: fsspec's resolution costs more than reading a small file
            with open(text_path, "rb") as handle:
                raw = handle.read()
    except FileNotFoundError as error:
        raise FileReadError(text_path, "no such file", hint="check the path or URL") from error
    except IsADirectoryError as error:
        raise FileReadError(text_path, "is a folder, not a file") from error
    except OSError as error:
        raise FileReadError(text_path, f"cannot be opened: {error}") from error
    if not raw.startswith(GZIP_MAGIC):
        return RawFile(text_path, raw, compressed=False)
    try:
        data = gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise FileReadError(
            text_path, f"corrupt or truncated gzip data ({error})", hint="download the file again"
        ) from error
    return RawFile(text_path, data, compressed=True)


def parent_of(path: str) -> str:
    """The folder holding ``path`` (a local path or a URL), for searching headers beside a file."""
    if "://" in path:
        return path.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))
